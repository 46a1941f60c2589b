//! [`Caller`]: who is calling a tool, taken as a tool's argument like rmcp's own extractors.

use rmcp::{
    ErrorData,
    handler::server::common::{AsRequestContext, FromContextPart},
};

use crate::context::{Principal, RequestFacts};

/// Who is calling, for a tool (or prompt) that takes it as an argument (`caller: Caller`): the
/// authenticated principal (`None` when auth is off) and the request's id. A tool needs nothing
/// else of the platform to know its caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Option<Principal>,
    /// The request's `x-request-id`, for a tool that quotes it (to a downstream, in a result).
    pub request_id: String,
}

impl Caller {
    /// The principal's subject, or `None` when anonymous.
    pub fn subject(&self) -> Option<&str> {
        self.principal.as_ref().map(|p| p.subject.as_str())
    }
}

impl<C: AsRequestContext> FromContextPart<C> for Caller {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        let facts = super::request_facts(context.as_request_context()).ok_or_else(|| {
            // Only reachable by serving the handler outside the platform's stack.
            ErrorData::internal_error("the caller is known inside the platform's stack", None)
        })?;
        Ok(Self::of(facts))
    }
}

impl Caller {
    fn of(facts: &RequestFacts) -> Self {
        Self {
            principal: facts.principal().cloned(),
            request_id: facts.request_id().to_owned(),
        }
    }
}

//! The conformance server's state and what its fixture modules share. Each fixture module adds
//! its tools or prompts to [`Conformance`] with its own router; `handler` serves them.

use rmcp::{
    RoleServer,
    handler::server::router::{prompt::PromptRouter, tool::ToolRouter},
    model::ProtocolVersion,
    service::RequestContext,
};

use crate::seal::StateSeal;

/// A 2x2 teal PNG.
pub const PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAD0lEQVR42mNgaGgAIQgFABoOBAFCl+Z5AAAAAElFTkSuQmCC";

pub struct Conformance {
    pub(crate) tools: ToolRouter<Self>,
    pub(crate) prompts: PromptRouter<Self>,
    pub(crate) seal: StateSeal,
}

impl Conformance {
    pub fn new() -> Self {
        Self {
            tools: Self::content_tools() + Self::input_required_tools() + Self::task_tools(),
            prompts: Self::prompts(),
            seal: StateSeal::random(),
        }
    }
}

/// Whether the request speaks 2026-07-28 or later.
pub fn modern(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28)
}

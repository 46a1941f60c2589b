//! The outermost layer: the request's id and its facts. `x-request-id` is the caller's when it is
//! sane (1..=128 visible ASCII characters), otherwise a fresh UUID v4; it is echoed on the
//! response. The layer makes the request's [`RequestFacts`] and its `tracing` span, which every
//! future of the request runs in. Hand-written: tower-http's three request-id layers do the id
//! but not the facts, at more cost (see the README's performance section).

use std::{convert::Infallible, future::Future, sync::Arc, time::Instant};

use axum::{
    extract::Request as AxumRequest,
    http::{HeaderName, HeaderValue, Request},
    response::Response,
};
use tracing::Instrument as _;

use super::{Around, Handled};
use crate::context::{self, RequestFacts};
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const MAX_LEN: usize = 128;

fn is_sane(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// The request's id: the caller's first `x-request-id` when sane; otherwise a new one, which
/// replaces the caller's values on the request (so a tool reading the header sees it too).
pub fn take_or_make<B>(req: &mut Request<B>) -> HeaderValue {
    if let Some(id) = req.headers().get(&X_REQUEST_ID).filter(|id| is_sane(id)) {
        return id.clone();
    }
    let mut text = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
    let id = HeaderValue::from_str(text).expect("a UUID is a valid header value");
    req.headers_mut().insert(X_REQUEST_ID.clone(), id.clone());
    id
}

/// Gives every request its id, facts and span (an [`Around`] layer).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestId;

impl Around for RequestId {
    fn around<F>(
        self: &Arc<Self>,
        mut req: AxumRequest,
        next: impl FnOnce(AxumRequest) -> F,
    ) -> Handled
    where
        F: Future<Output = Result<Response, Infallible>> + Send + 'static,
    {
        let received = Instant::now();
        let request_id = take_or_make(&mut req);
        let span = context::request_span(request_id.to_str().unwrap_or_default());
        req.extensions_mut().insert(RequestFacts::new(
            request_id.clone(),
            received,
            span.clone(),
        ));
        let handled = span.in_scope(|| next(req));
        Box::pin(
            async move {
                let mut response = handled.await?;
                response
                    .headers_mut()
                    .entry(&X_REQUEST_ID)
                    .or_insert(request_id);
                Ok(response)
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse as _;
    use tower::{Layer as _, ServiceExt as _, service_fn};

    use super::*;

    #[tokio::test]
    async fn the_layer_gives_the_request_its_facts_and_echoes_the_id() {
        let inner = service_fn(|req: AxumRequest| async move {
            let facts = RequestFacts::of(req.extensions()).expect("facts");
            Ok::<_, Infallible>(facts.request_id().to_owned().into_response())
        });
        let service = super::super::AroundLayer::new(RequestId).layer(inner);
        let request = AxumRequest::post("/mcp")
            .header(&X_REQUEST_ID, "caller-7")
            .body(axum::body::Body::empty())
            .unwrap();
        let answer = service.oneshot(request).await.unwrap();
        assert_eq!(answer.headers()[&X_REQUEST_ID], "caller-7");
        let seen = axum::body::to_bytes(answer.into_body(), 64).await.unwrap();
        assert_eq!(&seen[..], b"caller-7");
    }

    #[test]
    fn sane_ids_are_visible_ascii_up_to_128() {
        assert!(is_sane(&HeaderValue::from_static("abc-123_XYZ.:/")));
        assert!(is_sane(&HeaderValue::from_str(&"a".repeat(128)).unwrap()));
        assert!(!is_sane(&HeaderValue::from_str(&"a".repeat(129)).unwrap()));
        assert!(!is_sane(&HeaderValue::from_static("")));
        assert!(!is_sane(&HeaderValue::from_static("has space")));
        assert!(!is_sane(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()));
    }

    #[test]
    fn an_insane_id_is_replaced_on_the_request() {
        let mut req = Request::builder()
            .header(&X_REQUEST_ID, "has space")
            .header(&X_REQUEST_ID, "sane-but-second")
            .body(())
            .unwrap();
        let id = take_or_make(&mut req);
        assert!(
            uuid::Uuid::parse_str(id.to_str().unwrap()).is_ok(),
            "{id:?}"
        );
        let on_request: Vec<_> = req.headers().get_all(&X_REQUEST_ID).iter().collect();
        assert_eq!(on_request, [&id]);

        let mut req = Request::builder()
            .header(&X_REQUEST_ID, "caller-1")
            .body(())
            .unwrap();
        assert_eq!(take_or_make(&mut req), "caller-1");
    }
}

//! `x-request-id`: the caller's id is kept when it is sane (1..=128 visible ASCII characters),
//! otherwise a fresh UUID is used (tower-http's request-id layers set and echo it; this module
//! says what is sane and how to make one).

use axum::http::{HeaderName, HeaderValue, Request};
use tower_http::request_id::{MakeRequestId, RequestId};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const MAX_LEN: usize = 128;

fn is_sane(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// Drops a caller's id that is not sane, so that one is made in its place.
pub fn drop_insane<B>(mut req: Request<B>) -> Request<B> {
    if req
        .headers()
        .get(&X_REQUEST_ID)
        .is_some_and(|v| !is_sane(v))
    {
        req.headers_mut().remove(&X_REQUEST_ID);
    }
    req
}

/// Makes a UUID v4 request id.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeUuid;

impl MakeRequestId for MakeUuid {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id = HeaderValue::try_from(uuid::Uuid::new_v4().to_string())
            .expect("a UUID is a valid header value");
        Some(RequestId::new(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_visible_ascii_up_to_128() {
        assert!(is_sane(&HeaderValue::from_static("abc-123_XYZ.:/")));
        assert!(is_sane(&HeaderValue::from_str(&"a".repeat(128)).unwrap()));
        assert!(!is_sane(&HeaderValue::from_str(&"a".repeat(129)).unwrap()));
        assert!(!is_sane(&HeaderValue::from_static("")));
        assert!(!is_sane(&HeaderValue::from_static("has space")));
        assert!(!is_sane(&HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()));
    }
}

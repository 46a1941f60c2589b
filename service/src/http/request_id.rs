//! `x-request-id`: the caller's id is kept when it is sane (1..=128 visible ASCII characters),
//! otherwise a fresh UUID is used; either way it is echoed on the response (see
//! [`super::observe`]) and recorded on the request's span and log lines.

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const MAX_LEN: usize = 128;

/// The request id of the current request, in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    pub fn as_str(&self) -> &str {
        // Only ever built from visible ASCII, so this cannot fail.
        self.0.to_str().unwrap_or_default()
    }

    /// The id of `req`, when the request went through [`assign`].
    pub fn of(req: &Request) -> Option<&str> {
        req.extensions().get::<RequestId>().map(RequestId::as_str)
    }
}

fn is_sane(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// Keeps or replaces the request's id and records it in the request; returns it.
pub fn assign(req: &mut Request) -> HeaderValue {
    let id = match req.headers().get(&X_REQUEST_ID) {
        Some(v) if is_sane(v) => v.clone(),
        _ => {
            let generated = HeaderValue::try_from(uuid::Uuid::new_v4().to_string())
                .expect("a UUID is a valid header value");
            req.headers_mut()
                .insert(X_REQUEST_ID.clone(), generated.clone());
            generated
        }
    };
    req.extensions_mut().insert(RequestId(id.clone()));
    id
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

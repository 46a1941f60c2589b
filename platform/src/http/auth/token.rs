//! Reading the bearer token: the `Authorization` header, the JWT's claims, and error texts that
//! never echo the token.

use axum::http::{HeaderMap, header};
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde_json::Value;

/// Asymmetric algorithms only: keys published in a JWKS cannot be shared secrets, and `none`
/// is never accepted.
pub(super) const ALLOWED_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
/// Clock skew tolerated on `exp` and `nbf`.
pub(super) const LEEWAY_SECS: u64 = 30;
/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    NoToken,
    InvalidToken(String),
    InsufficientScope(Vec<String>),
}

#[derive(Deserialize)]
pub(super) struct Claims {
    pub(super) sub: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Value>,
    #[serde(default)]
    pub(super) client_id: Option<String>,
    #[serde(default)]
    pub(super) azp: Option<String>,
}

impl Claims {
    pub(super) fn scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = self
            .scope
            .iter()
            .flat_map(|s| s.split_whitespace())
            .map(str::to_owned)
            .collect();
        match &self.scp {
            Some(Value::String(s)) => scopes.extend(s.split_whitespace().map(str::to_owned)),
            Some(Value::Array(items)) => {
                scopes.extend(items.iter().filter_map(Value::as_str).map(str::to_owned))
            }
            _ => {}
        }
        scopes
    }
}

pub(super) fn bearer_token(headers: &HeaderMap) -> Result<&str, Refusal> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Refusal::NoToken);
    };
    let value = value
        .to_str()
        .map_err(|_| Refusal::InvalidToken("Authorization header is not ASCII".into()))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(Refusal::InvalidToken(
            "Authorization must use the Bearer scheme".into(),
        )),
    }
}

/// Error text for the client, without echoing the token.
pub(super) fn describe(err: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind::*;
    match err.kind() {
        ExpiredSignature => "token expired".into(),
        ImmatureSignature => "token not valid yet (nbf)".into(),
        InvalidIssuer => "wrong issuer".into(),
        InvalidAudience => "token not issued for this resource (aud)".into(),
        InvalidSignature => "bad signature".into(),
        InvalidAlgorithm => "algorithm does not match the key".into(),
        MissingRequiredClaim(claim) => format!("missing claim {claim}"),
        other => format!("{other:?}"),
    }
}

/// Visible ASCII and spaces, no quote or backslash: a client reads the challenge as ASCII.
pub(super) fn quote_safe(text: &str) -> String {
    text.chars()
        .filter(|c| (c.is_ascii_graphic() || *c == ' ') && *c != '"' && *c != '\\')
        .collect()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde_json::json;

    use super::*;

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let claims: Claims =
            serde_json::from_value(json!({"sub": "a", "scope": "mcp:read mcp:call", "scp": ["x"]}))
                .unwrap();
        assert_eq!(claims.scopes(), ["mcp:read", "mcp:call", "x"]);
    }

    #[test]
    fn challenge_text_is_visible_ascii() {
        assert_eq!(
            quote_safe("unknown key \"a\\bé\u{7f}\n\""),
            "unknown key ab"
        );
    }

    #[test]
    fn bearer_scheme_is_required() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), Err(Refusal::NoToken));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(matches!(
            bearer_token(&headers),
            Err(Refusal::InvalidToken(_))
        ));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc.def.ghi"),
        );
        assert_eq!(bearer_token(&headers), Ok("abc.def.ghi"));
    }
}

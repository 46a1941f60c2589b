//! OAuth 2.1 resource server (MCP authorization): Protected Resource Metadata (RFC 9728), bearer
//! JWT validation against the issuer's JWKS (signature, `iss`, `aud` = this resource, `exp`/`nbf`),
//! scope checks, and the `WWW-Authenticate` challenges clients use to find the authorization
//! server. The caller's identity ([`Principal`]) goes into the request for tools and logs; the
//! token itself goes nowhere.

use std::{
    collections::HashMap,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use opentelemetry::{KeyValue, trace::TraceContextExt as _};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Mutex, RwLock};

use super::request_id::RequestId;
use crate::{
    config::{AuthMode, AuthSettings},
    jsonrpc::{JsonRpcError, code},
    telemetry::{RequestTrace, semconv},
};

/// Asymmetric algorithms only: keys published in a JWKS cannot be shared secrets, and `none`
/// is never accepted.
const ALLOWED_ALGORITHMS: &[Algorithm] = &[
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
const LEEWAY_SECS: u64 = 30;
/// Cached JWKS is refreshed after this long...
const JWKS_TTL: Duration = Duration::from_secs(600);
/// ...or on an unknown `kid`, but not more often than this.
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(10);
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// Who is calling, as the token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`.
    pub subject: String,
    pub scopes: Vec<String>,
    /// `client_id` or `azp`, when present.
    pub client_id: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Value>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    azp: Option<String>,
}

impl Claims {
    fn scopes(&self) -> Vec<String> {
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

enum Keys {
    Static(HashMap<String, DecodingKey>),
    Remote {
        url: String,
        client: reqwest::Client,
        cache: RwLock<Cache>,
        refreshing: Mutex<()>,
    },
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
}

pub struct Authenticator {
    resource: String,
    issuer: String,
    required_scopes: Vec<String>,
    metadata_url: String,
    keys: Keys,
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    NoToken,
    InvalidToken(String),
    InsufficientScope(Vec<String>),
}

impl Authenticator {
    /// `None` when auth is off. Reads a JWKS file now (a bad file stops start-up); a JWKS URL is
    /// fetched now if reachable, else on the first request.
    pub async fn from_settings(settings: &AuthSettings) -> Result<Option<Arc<Self>>, String> {
        if settings.mode == AuthMode::None {
            return Ok(None);
        }
        // Presence and shape were checked with the configuration.
        let resource = settings.resource.clone().unwrap_or_default();
        let issuer = settings.issuer.clone().unwrap_or_default();
        let metadata_url = metadata_url(&resource)?;
        let keys = match (&settings.jwks_file, &settings.jwks_url) {
            (Some(path), _) => Keys::Static(read_jwks_file(path)?),
            (None, Some(url)) => Keys::Remote {
                url: url.clone(),
                client: crate::http_client_builder()
                    .timeout(JWKS_FETCH_TIMEOUT)
                    .build()
                    .map_err(|e| format!("JWKS client: {e}"))?,
                cache: RwLock::default(),
                refreshing: Mutex::new(()),
            },
            (None, None) => return Err("auth.jwks_url or auth.jwks_file is required".into()),
        };
        let auth = Arc::new(Self {
            resource,
            issuer,
            required_scopes: settings.required_scopes.clone(),
            metadata_url,
            keys,
        });
        if let Keys::Remote { .. } = auth.keys
            && let Err(err) = auth.refresh(true).await
        {
            tracing::warn!(error = %err, "JWKS not fetched at start-up; will retry on the first request");
        }
        Ok(Some(auth))
    }

    /// The Protected Resource Metadata document (RFC 9728).
    pub fn metadata(&self) -> Value {
        json!({
            "resource": self.resource,
            "authorization_servers": [self.issuer],
            "scopes_supported": self.required_scopes,
            "bearer_methods_supported": ["header"],
        })
    }

    /// The path of the path-inserted metadata URL (`/.well-known/oauth-protected-resource/mcp`).
    pub fn metadata_path(&self) -> String {
        let path = self.metadata_url.splitn(4, '/').nth(3).unwrap_or_default();
        format!("/{path}")
    }

    async fn authenticate(self: &Arc<Self>, headers: &HeaderMap) -> Result<Principal, Refusal> {
        let token = bearer_token(headers)?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Refusal::InvalidToken(format!("malformed token: {e}")))?;
        if !ALLOWED_ALGORITHMS.contains(&header.alg) {
            return Err(Refusal::InvalidToken(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| Refusal::InvalidToken("token has no key id (kid)".into()))?;
        let key = self
            .key(&kid)
            .await
            .ok_or_else(|| Refusal::InvalidToken(format!("unknown signing key {kid:?}")))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.resource]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| Refusal::InvalidToken(describe(&e)))?
            .claims;
        let scopes = claims.scopes();
        let missing: Vec<String> = self
            .required_scopes
            .iter()
            .filter(|s| !scopes.contains(s))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(Refusal::InsufficientScope(missing));
        }
        Ok(Principal {
            subject: claims.sub,
            scopes,
            client_id: claims.client_id.or(claims.azp),
        })
    }

    async fn key(self: &Arc<Self>, kid: &str) -> Option<DecodingKey> {
        let cache = match &self.keys {
            Keys::Static(keys) => return keys.get(kid).cloned(),
            Keys::Remote { cache, .. } => cache,
        };
        {
            let cache = cache.read().await;
            if let Some(key) = cache.keys.get(kid) {
                // A known key serves at once, even when stale: a slow or unreachable identity
                // provider must not hold requests. The refresh runs beside them (a key the
                // provider has withdrawn stops working once a refresh succeeds).
                let stale = cache.fetched.is_none_or(|t| t.elapsed() >= JWKS_TTL);
                let tried = cache
                    .attempted
                    .is_some_and(|t| t.elapsed() < JWKS_MIN_REFRESH);
                if stale && !tried {
                    let auth = self.clone();
                    tokio::spawn(async move { auth.refresh_unless_running(false).await });
                }
                return Some(key.clone());
            }
        }
        // An unknown key may be new: this request waits for the refresh.
        self.refresh_unless_running(true).await;
        cache.read().await.keys.get(kid).cloned()
    }

    /// One refresh at a time: when one is running, the caller waits for it and uses its result
    /// (`wait`), or leaves it to finish alone.
    async fn refresh_unless_running(&self, wait: bool) {
        let Keys::Remote { refreshing, .. } = &self.keys else {
            return;
        };
        let _one = match refreshing.try_lock() {
            Ok(guard) => guard,
            Err(_) if wait => refreshing.lock().await,
            Err(_) => return,
        };
        if let Err(err) = self.refresh(false).await {
            tracing::warn!(error = %err, "JWKS refresh failed");
        }
    }

    async fn refresh(&self, force: bool) -> Result<(), String> {
        let Keys::Remote {
            url, client, cache, ..
        } = &self.keys
        else {
            return Ok(());
        };
        // Refreshes asked for by requests (unknown kid, stale keys) are rate-limited.
        if !force {
            if cache
                .read()
                .await
                .attempted
                .is_some_and(|t| t.elapsed() < JWKS_MIN_REFRESH)
            {
                return Ok(());
            }
            cache.write().await.attempted = Some(Instant::now());
        }
        let set: JwkSet = async {
            let response = client.get(url).send().await?.error_for_status()?;
            response.json().await
        }
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
        let keys = decoding_keys(&set)?;
        tracing::info!(keys = keys.len(), "JWKS refreshed");
        let mut cache = cache.write().await;
        cache.keys = keys;
        cache.fetched = Some(Instant::now());
        Ok(())
    }

    fn challenge(&self, refusal: &Refusal) -> (StatusCode, String, String) {
        let mut parts = Vec::new();
        let message;
        let status = match refusal {
            Refusal::NoToken => {
                message = "authentication required: send Authorization: Bearer <token>".to_owned();
                StatusCode::UNAUTHORIZED
            }
            Refusal::InvalidToken(reason) => {
                parts.push("error=\"invalid_token\"".to_owned());
                parts.push(format!("error_description=\"{}\"", quote_safe(reason)));
                message = format!("invalid token: {reason}");
                StatusCode::UNAUTHORIZED
            }
            Refusal::InsufficientScope(missing) => {
                parts.push("error=\"insufficient_scope\"".to_owned());
                parts.push(format!(
                    "error_description=\"missing scope: {}\"",
                    missing.join(" ")
                ));
                message = format!(
                    "insufficient scope: this call needs {}",
                    self.required_scopes.join(" ")
                );
                StatusCode::FORBIDDEN
            }
        };
        parts.push(format!("resource_metadata=\"{}\"", self.metadata_url));
        if !self.required_scopes.is_empty() {
            parts.push(format!("scope=\"{}\"", self.required_scopes.join(" ")));
        }
        (status, format!("Bearer {}", parts.join(", ")), message)
    }
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, Refusal> {
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
fn describe(err: &jsonwebtoken::errors::Error) -> String {
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

fn quote_safe(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

/// `https://host/mcp` -> `https://host/.well-known/oauth-protected-resource/mcp` (RFC 9728 §3.1).
fn metadata_url(resource: &str) -> Result<String, String> {
    let uri: http::Uri = resource
        .parse()
        .map_err(|e| format!("auth.resource {resource:?}: {e}"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(format!(
            "auth.resource {resource:?} must be an absolute URL"
        ));
    };
    let path = uri.path().trim_end_matches('/');
    Ok(format!("{scheme}://{authority}{METADATA_PATH}{path}"))
}

fn read_jwks_file(path: &Path) -> Result<HashMap<String, DecodingKey>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("auth.jwks_file {}: {e}", path.display()))?;
    let set: JwkSet = serde_json::from_str(&text)
        .map_err(|e| format!("auth.jwks_file {}: {e}", path.display()))?;
    decoding_keys(&set)
}

fn decoding_keys(set: &JwkSet) -> Result<HashMap<String, DecodingKey>, String> {
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = &jwk.common.key_id else {
            continue;
        };
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => {
                keys.insert(kid.clone(), key);
            }
            Err(err) => tracing::warn!(kid, error = %err, "unusable key in JWKS"),
        }
    }
    if keys.is_empty() {
        return Err("the JWKS holds no usable key with a kid".into());
    }
    Ok(keys)
}

pub async fn middleware(
    State(auth): State<Arc<Authenticator>>,
    mut req: Request,
    next: Next,
) -> Response {
    match auth.authenticate(req.headers()).await {
        Ok(principal) => {
            tracing::Span::current().record(semconv::ENDUSER_ID, principal.subject.as_str());
            if let Some(RequestTrace(trace)) = req.extensions().get::<RequestTrace>() {
                trace.span().set_attribute(KeyValue::new(
                    semconv::ENDUSER_ID,
                    principal.subject.clone(),
                ));
            }
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(refusal) => {
            let (status, challenge, message) = auth.challenge(&refusal);
            tracing::info!(status = status.as_u16(), reason = %message, "refused unauthenticated request");
            let request_id = req.extensions().get::<RequestId>().map(RequestId::as_str);
            let mut response = JsonRpcError::new(status, code::INVALID_REQUEST, message)
                .with_request_id(request_id)
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
            response
        }
    }
}

pub async fn metadata(State(auth): State<Arc<Authenticator>>) -> impl IntoResponse {
    Json(auth.metadata())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A known key keeps working while its refresh hangs: requests never wait on a stale cache.
    #[tokio::test]
    async fn a_stale_known_key_serves_while_the_provider_hangs() {
        // Accepts connections and never answers.
        let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", hung.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((conn, _)) = hung.accept().await {
                open.push(conn);
            }
        });
        let long_ago = Instant::now().checked_sub(JWKS_TTL * 2);
        let auth = Arc::new(Authenticator {
            resource: "https://mcp.example.com/mcp".into(),
            issuer: "https://idp.example.com".into(),
            required_scopes: Vec::new(),
            metadata_url: String::new(),
            keys: Keys::Remote {
                url,
                client: crate::http_client_builder()
                    .timeout(JWKS_FETCH_TIMEOUT)
                    .build()
                    .unwrap(),
                cache: RwLock::new(Cache {
                    keys: HashMap::from([("k1".to_owned(), DecodingKey::from_secret(b"k1"))]),
                    fetched: long_ago,
                    attempted: None,
                }),
                refreshing: Mutex::new(()),
            },
        });
        // Well under the fetch timeout (which a waiting request would sit out).
        let served = tokio::time::timeout(JWKS_FETCH_TIMEOUT / 5, auth.key("k1")).await;
        assert!(
            matches!(served, Ok(Some(_))),
            "a stale key waited for the refresh"
        );
        held.abort();
    }

    #[test]
    fn metadata_url_inserts_the_well_known_path() {
        assert_eq!(
            metadata_url("https://mcp.example.com/mcp").unwrap(),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource"
        );
        assert!(metadata_url("/mcp").is_err());
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let claims: Claims =
            serde_json::from_value(json!({"sub": "a", "scope": "mcp:read mcp:call", "scp": ["x"]}))
                .unwrap();
        assert_eq!(claims.scopes(), ["mcp:read", "mcp:call", "x"]);
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

//! OAuth 2.1 resource server (MCP authorization): Protected Resource Metadata (RFC 9728), bearer
//! JWT validation against the issuer's JWKS (signature, `iss`, `aud` = this resource, `exp`/`nbf`),
//! scope checks, and the `WWW-Authenticate` challenges clients use to find the authorization
//! server. The caller's identity ([`Principal`]) goes into the request context for tools and logs; the
//! token itself goes nowhere.

mod keys;
mod token;

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use jsonwebtoken::Validation;
use serde_json::{Value, json};
use tokio::sync::{Mutex, RwLock};
use tower::{Layer, Service};

use self::{
    keys::{JWKS_FETCH_TIMEOUT, Keys, read_jwks_file},
    token::{ALLOWED_ALGORITHMS, Claims, LEEWAY_SECS, Refusal, bearer_token, describe, quote_safe},
};
use crate::{
    config::{AuthMode, AuthSettings},
    context::{Principal, RequestFacts},
    jsonrpc::{JsonRpcError, code},
    telemetry::semconv,
};

pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

pub struct Authenticator {
    resource: String,
    issuer: String,
    required_scopes: Vec<String>,
    metadata_url: String,
    keys: Keys,
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

impl Authenticator {
    /// Admits a request with a valid bearer token (its principal goes into the request's
    /// context), or answers 401/403 with the challenge.
    pub async fn admit(
        self: &Arc<Self>,
        headers: &HeaderMap,
        context: Option<&RequestFacts>,
    ) -> Result<(), Response> {
        match self.authenticate(headers).await {
            Ok(principal) => {
                // Log lines inside the request carry the caller: JSON ones and the server span
                // read it from the context, the pretty format from the request's span.
                tracing::Span::current().record(semconv::ENDUSER_ID, principal.subject.as_str());
                if let Some(context) = context {
                    context.set_principal(principal);
                }
                Ok(())
            }
            Err(refusal) => {
                let (status, challenge, message) = self.challenge(&refusal);
                tracing::info!(status = status.as_u16(), reason = %message, "refused unauthenticated request");
                let mut response = JsonRpcError::new(status, code::INVALID_REQUEST, message)
                    .for_request(context)
                    .into_response();
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, value);
                }
                Err(response)
            }
        }
    }
}

/// Admits only authenticated requests ([`Authenticate`]).
#[derive(Clone)]
pub struct AuthLayer(pub Arc<Authenticator>);

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            auth: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    auth: Arc<Authenticator>,
}

impl<S> Service<Request> for Authenticate<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = crate::http::Handled;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The one made ready is the one called (tower's rule), after the token is checked.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let auth = self.auth.clone();
        Box::pin(async move {
            let facts = RequestFacts::of(req.extensions()).cloned();
            match auth.admit(req.headers(), facts.as_ref()).await {
                Ok(()) => inner.call(req).await,
                Err(refused) => Ok(refused),
            }
        })
    }
}

pub async fn metadata(State(auth): State<Arc<Authenticator>>) -> impl IntoResponse {
    Json(auth.metadata())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

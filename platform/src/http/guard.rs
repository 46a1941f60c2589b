//! DNS-rebinding protection for the MCP endpoint: the `Host` must be an allowed host name and a
//! browser `Origin`, when present, an allowed origin. While only loopback hosts are allowed (the
//! default), loopback origins (`http://localhost:<port>`, `http://127.0.0.1:<port>`,
//! `http://[::1]:<port>`) are allowed too: a web client on the same machine works unconfigured,
//! and a rebinding page still has a foreign origin. Health routes are not guarded (the ALB's
//! health checker sends the task IP as Host).

use std::sync::Arc;

use super::Check;
use crate::{
    config::HttpSettings,
    context::RequestFacts,
    jsonrpc::{JsonRpcError, code},
};
use axum::{
    extract::Request,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

#[derive(Debug, Clone)]
pub struct OriginGuard {
    /// Lower-case host names without port; `None` = any host.
    hosts: Option<Arc<[String]>>,
    /// Lower-case `scheme://host[:port]`; `None` = any origin.
    origins: Option<Arc<[String]>>,
    /// Only loopback hosts are allowed, so loopback origins are too.
    loopback_origins: bool,
}

/// The host names of this machine's loopback interface, as a `Host` header names them.
const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1"];

impl OriginGuard {
    pub fn new(settings: &HttpSettings) -> Self {
        let normalise = |items: &[String]| -> Option<Arc<[String]>> {
            if items.iter().any(|h| h == "*") {
                None
            } else {
                Some(
                    items
                        .iter()
                        .map(|h| h.trim_end_matches('/').to_ascii_lowercase())
                        .collect(),
                )
            }
        };
        let hosts = normalise(&settings.allowed_hosts).map(|h| {
            h.iter()
                .map(|h| h.trim_matches(|c| c == '[' || c == ']').to_owned())
                .collect()
        });
        let loopback_origins = hosts.as_ref().is_some_and(|hosts: &Arc<[String]>| {
            hosts.iter().all(|h| LOOPBACK_HOSTS.contains(&h.as_str()))
        });
        Self {
            hosts,
            origins: normalise(&settings.allowed_origins),
            loopback_origins,
        }
    }

    /// Every origin is allowed (`*`).
    pub fn any_origin(&self) -> bool {
        self.origins.is_none()
    }

    /// No origin is allowed: browsers are refused.
    pub fn no_origin(&self) -> bool {
        !self.loopback_origins && self.origins.as_ref().is_some_and(|o| o.is_empty())
    }

    fn host_allowed(&self, host: &str) -> bool {
        let Some(allowed) = &self.hosts else {
            return true;
        };
        let name = host_name(host);
        allowed.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    pub fn origin_allowed(&self, origin: &str) -> bool {
        match &self.origins {
            None => true,
            Some(allowed) => {
                let origin = origin.trim_end_matches('/');
                allowed.iter().any(|o| o.eq_ignore_ascii_case(origin))
                    || (self.loopback_origins && is_loopback_origin(origin))
            }
        }
    }
}

/// `http://localhost`, `http://127.0.0.1` or `http://[::1]`, with or without a port.
fn is_loopback_origin(origin: &str) -> bool {
    let Some(authority) = origin.strip_prefix("http://") else {
        return false;
    };
    let (name, port) = match authority.strip_prefix("[::1]") {
        Some(port) => ("::1", port),
        None => authority.split_at(authority.find(':').unwrap_or(authority.len())),
    };
    (port.is_empty() || is_port(port))
        && LOOPBACK_HOSTS.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// `:` and one to five digits.
fn is_port(port: &str) -> bool {
    port.strip_prefix(':').is_some_and(|digits| {
        (1..=5).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// `example.com:443` -> `example.com`, `[::1]:8080` -> `::1`.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((name, port)) if port.is_empty() || is_port(port) => name,
            _ => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// 403 for a request whose Host or Origin is not allowed.
impl Check for OriginGuard {
    fn check(&self, req: &Request) -> Option<Response> {
        self.refusal(req)
    }
}

impl OriginGuard {
    /// The JSON-RPC 403 for a request whose Host or Origin is not allowed.
    pub fn refusal(&self, req: &Request) -> Option<Response> {
        let forbidden = |message: String| {
            JsonRpcError::new(StatusCode::FORBIDDEN, code::INVALID_REQUEST, message)
                .for_request(RequestFacts::of(req.extensions()))
                .into_response()
        };
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()));
        match host {
            Some(h) if self.host_allowed(h) => {}
            Some(h) => {
                tracing::warn!(host = %h, "rejected request: Host not allowed");
                return Some(forbidden(format!(
                    "Host header {h:?} is not allowed (configure APP__HTTP__ALLOWED_HOSTS)"
                )));
            }
            None => return Some(forbidden("missing Host header".into())),
        }
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("<non-ascii>");
            if !self.origin_allowed(origin) {
                tracing::warn!(origin, "rejected request: Origin not allowed");
                return Some(forbidden(format!(
                    "Origin {origin:?} is not allowed (configure APP__HTTP__ALLOWED_ORIGINS)"
                )));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn guard(hosts: &str, origins: &str) -> OriginGuard {
        let s = Settings::<crate::config::NoTools>::load_from([
            ("APP__HTTP__ALLOWED_HOSTS".to_string(), hosts.to_string()),
            (
                "APP__HTTP__ALLOWED_ORIGINS".to_string(),
                origins.to_string(),
            ),
        ])
        .unwrap();
        OriginGuard::new(&s.http)
    }

    #[tokio::test]
    async fn the_layer_refuses_a_foreign_host_and_passes_an_allowed_one() {
        use std::convert::Infallible;
        use tower::{Layer as _, ServiceExt as _, service_fn};
        let inner = service_fn(|_req: Request| async {
            Ok::<_, Infallible>(StatusCode::ACCEPTED.into_response())
        });
        let service = super::super::CheckLayer::new(guard("mcp.example.com", "")).layer(inner);
        let request = |host: &str| {
            Request::post("/mcp")
                .header(header::HOST, host)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let allowed = service.clone().oneshot(request("mcp.example.com")).await;
        assert_eq!(allowed.unwrap().status(), StatusCode::ACCEPTED);
        let foreign = service.oneshot(request("evil.com")).await.unwrap();
        assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn hosts_match_without_port_and_case() {
        let g = guard("localhost,127.0.0.1,::1,MCP.example.com", "");
        for ok in [
            "localhost:8080",
            "127.0.0.1",
            "[::1]:9",
            "mcp.example.com",
            "Mcp.Example.Com:443",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.com",
            "localhost.evil.com",
            "127.0.0.2:80",
            "[::2]",
            "[::1]x",
        ] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
        assert!(guard("*", "").host_allowed("anything.example"));
    }

    #[test]
    fn loopback_origins_pass_while_only_loopback_hosts_are_allowed() {
        let default = guard("localhost,127.0.0.1,::1", "");
        assert!(!default.no_origin());
        for ok in [
            "http://localhost:5173",
            "http://127.0.0.1:8080",
            "http://[::1]:3000",
            "http://localhost",
            "http://LOCALHOST:1/",
        ] {
            assert!(default.origin_allowed(ok), "{ok}");
        }
        for bad in [
            "https://evil.example",
            "http://localhost.evil.example",
            "http://localhost:80.evil.example",
            "http://127.0.0.2:80",
            "http://[::1]x:80",
            "http://[::1]:80:80",
            "http://localhost:",
            "http://localhost:123456",
            "http://user@localhost:80",
            "https://localhost:8443",
            "null",
            "",
        ] {
            assert!(!default.origin_allowed(bad), "{bad}");
        }
        // Behind a load balancer (a public host allowed), only configured origins pass.
        let public = guard("mcp.example.com,localhost", "");
        assert!(public.no_origin());
        assert!(!public.origin_allowed("http://localhost:5173"));
        assert!(!guard("*", "").origin_allowed("http://localhost:5173"));
    }

    #[test]
    fn origins_match_exactly() {
        let g = guard("*", "https://app.example.com,http://localhost:3000");
        assert!(g.origin_allowed("https://app.example.com"));
        assert!(g.origin_allowed("http://localhost:3000/"));
        assert!(!g.origin_allowed("https://evil.example"));
        assert!(!g.origin_allowed("http://localhost:3001"));
        // No allow-list configured: every present Origin is foreign.
        assert!(!guard("*", "").origin_allowed("https://app.example.com"));
        assert!(guard("*", "*").origin_allowed("https://anything.example"));
    }
}

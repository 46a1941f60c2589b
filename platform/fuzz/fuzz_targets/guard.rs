//! Host and Origin parsing (the DNS-rebinding guard) on any request, under the four ways it is
//! configured: loopback hosts (the default), a public host (behind the ALB), anything, and an
//! origin allow-list. Always a pass or a 403 with a JSON-RPC error, and what passes is what the
//! configuration allows, judged by http's own URI parser.
#![no_main]

use std::sync::LazyLock;

use axum::{
    Router,
    extract::Request,
    middleware::{Next, from_fn},
};
use http::{StatusCode, Uri, header, uri::Authority};
use libfuzzer_sys::fuzz_target;
use mcp_platform::http::guard::OriginGuard;
use mcp_platform_fuzz::{jsonrpc_error, send, settings};

const LOOPBACK: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
const PUBLIC_HOST: &str = "mcp.example.com";
const ALLOWED_ORIGIN: &str = "https://app.example.com";

#[derive(Clone, Copy, Debug)]
enum Config {
    Default,
    Public,
    Anything,
    OriginList,
}

fn router(config: Config) -> Router {
    let env: &[(&str, &str)] = match config {
        Config::Default => &[],
        Config::Public => &[("APP__HTTP__ALLOWED_HOSTS", PUBLIC_HOST)],
        Config::Anything => &[
            ("APP__HTTP__ALLOWED_HOSTS", "*"),
            ("APP__HTTP__ALLOWED_ORIGINS", "*"),
        ],
        Config::OriginList => &[
            ("APP__HTTP__ALLOWED_HOSTS", "*"),
            ("APP__HTTP__ALLOWED_ORIGINS", ALLOWED_ORIGIN),
        ],
    };
    let origins = OriginGuard::new(&settings(env).http);
    Router::new()
        .fallback(|| async { "served" })
        .layer(from_fn(move |req: Request, next: Next| {
            let refused = origins.refusal(&req);
            async move {
                match refused {
                    Some(refused) => refused,
                    None => next.run(req).await,
                }
            }
        }))
}

static GUARDS: LazyLock<[(Config, Router); 4]> = LazyLock::new(|| {
    [
        Config::Default,
        Config::Public,
        Config::Anything,
        Config::OriginList,
    ]
    .map(|config| (config, router(config)))
});

/// The lower-case host an authority (`name[:port]`, `[v6][:port]`) names, as http reads it.
fn host_of(authority: &str) -> Option<String> {
    let authority: Authority = authority.parse().ok()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    Some(host.to_ascii_lowercase())
}

/// `http://` + a loopback host + an optional port, and no path beyond slashes.
fn is_loopback_origin(origin: &str) -> bool {
    let Ok(uri) = origin.parse::<Uri>() else {
        return false;
    };
    uri.scheme_str() == Some("http")
        && uri.query().is_none()
        && uri.path().bytes().all(|b| b == b'/')
        && uri
            .authority()
            .and_then(|a| host_of(a.as_str()))
            .is_some_and(|h| LOOPBACK.contains(&h.as_str()))
}

fuzz_target!(|data: &[u8]| {
    let Some(request) = mcp_platform_fuzz::request(data) else {
        return;
    };
    // The Host the guard judges: the header when it is text, else the request target's authority.
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    let origin = request.headers().get(header::ORIGIN);
    let origin_text = origin.and_then(|o| o.to_str().ok());
    for (config, router) in GUARDS.iter() {
        let answer = send(router, request.clone());
        let passed = match answer.status {
            StatusCode::OK => true,
            StatusCode::FORBIDDEN => {
                let body = jsonrpc_error(&answer.body);
                assert_eq!(
                    body["error"]["code"],
                    mcp_platform::jsonrpc::code::INVALID_REQUEST
                );
                false
            }
            other => panic!("{config:?}: unexpected status {other}"),
        };
        let why = || format!("{config:?}: host {host:?} origin {origin:?}");
        if !passed {
            if let Config::Anything = config {
                assert!(host.is_none(), "{}", why());
            }
            continue;
        }
        let host = host
            .as_deref()
            .expect("a request without a Host is refused");
        let origin_ok = match config {
            Config::Default => {
                assert!(
                    host_of(host).is_some_and(|h| LOOPBACK.contains(&h.as_str())),
                    "{}",
                    why()
                );
                origin_text.is_some_and(is_loopback_origin)
            }
            Config::Public => {
                assert_eq!(host_of(host).as_deref(), Some(PUBLIC_HOST), "{}", why());
                false
            }
            Config::Anything => true,
            Config::OriginList => origin_text
                .is_some_and(|o| o.trim_end_matches('/').eq_ignore_ascii_case(ALLOWED_ORIGIN)),
        };
        assert!(origin.is_none() || origin_ok, "{}", why());
    }
});

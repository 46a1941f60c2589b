//! The public router: the routes and the whole middleware stack, written once, in order.

use std::{convert::Infallible, sync::Arc};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, Method, header},
    middleware::{Next, from_fn_with_state},
    response::{IntoResponse, Response},
    routing::get,
};
use tower::{Layer as _, Service, ServiceExt as _, service_fn};
use tower_http::{catch_panic::CatchPanic, cors::CorsLayer};

use crate::{
    config::HttpSettings,
    context::RequestContext,
    http::{
        self, Readiness,
        auth::{self, Authenticator},
        budget::MemoryBudget,
        cors,
        deadline::Deadline,
        guard::OriginGuard,
        observe::{Observe, Observer},
        rate_limit::RateLimits,
        refusals,
        shed::{self, InFlight},
    },
    jsonrpc::{JsonRpcError, code},
    mcp::{self, MCP_PATH},
    telemetry::Tracing,
};

/// Every request passes these layers, outermost first:
///
/// 1. observe: the request id (the caller's `x-request-id` when sane, else a new one; echoed on
///    the response), the request context, the server span, the `http.server.*` metrics and the
///    access line, to the last byte of the response; and the edge: any answer that is an error
///    but not JSON becomes a JSON-RPC error body;
/// 2. catch-panic: a panic is a logged 500 (tower-http), never a dropped connection;
/// 3. routing: the health routes and the auth metadata stop here.
///
/// `POST /mcp` then passes, in order:
///
/// 4. CORS, for the allowed browser origins (tower-http; preflights stop here);
/// 5. load shedding: 503 at once above `max_in_flight`;
/// 6. Host/Origin checks: 403 (DNS-rebinding protection);
/// 7. the deadline: 504 past `request_timeout_ms` from arrival, event streams included;
/// 8. auth, when on: 401/403 with the challenge (GET and DELETE get their 405 before it);
/// 9. the caller's rate limit: 429 + `Retry-After` + `RateLimit` headers; after auth, whose
///    principal names the caller (a rejected token costs no bucket);
/// 10. the memory budget: 503 + `Retry-After` when the body does not fit, charged before a
///     byte of it is read (last: a request refused above holds none of it);
/// 11. the MCP endpoint: body limit (413), envelope and version checks, the MCP span and
///     metrics, rmcp and the handler.
///
/// `memory_budget`: the bytes the memory budget allows (`None`: no budget).
pub fn public_service<E>(
    settings: &HttpSettings,
    memory_budget: Option<u64>,
    mcp_endpoint: E,
    auth: Option<Arc<Authenticator>>,
    readiness: Readiness,
    tracing: Tracing,
) -> PublicService
where
    E: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    E::Future: Send + 'static,
{
    let origins = OriginGuard::new(settings);
    let gate = Arc::new(McpGate {
        cors: cors::layer(&origins, mcp::REQUEST_HEADERS),
        in_flight: InFlight::new(settings.max_in_flight),
        deadline: Deadline(settings.request_timeout()),
        auth: auth.clone(),
        rate_limits: RateLimits::new(settings),
        memory: memory_budget.map(|bytes| {
            MemoryBudget::new(bytes, settings.max_body_bytes, settings.request_timeout())
        }),
        origins,
    });
    let mcp = from_fn_with_state(gate, mcp_gate).layer(mcp_endpoint);
    // Every path but the MCP endpoint's, named once: the observer labels requests with them.
    let mut pages = vec![
        (http::LIVEZ_PATH.to_owned(), get(http::livez)),
        (
            http::READYZ_PATH.to_owned(),
            get(http::readyz).with_state(readiness),
        ),
    ];
    if let Some(auth) = auth {
        // Clients look for the path-inserted document first, then the root one.
        let document = get(auth::metadata).with_state(auth.clone());
        if auth.metadata_path() != auth::METADATA_PATH {
            pages.push((auth::METADATA_PATH.to_owned(), document.clone()));
        }
        pages.push((auth.metadata_path(), document));
    }
    let routes = std::iter::once(MCP_PATH.to_owned())
        .chain(pages.iter().map(|(path, _)| path.clone()))
        .collect();
    let router = pages
        .into_iter()
        .fold(
            Router::new().route_service(MCP_PATH, mcp),
            |router, (path, page)| router.route(&path, page),
        )
        .fallback(not_found);
    Observe::new(
        CatchPanic::custom(router, refusals::panicked as Panicked),
        Observer::new(tracing, routes),
    )
}

/// The whole public stack, as `public_service` builds it.
pub type PublicService = Observe<CatchPanic<Router, Panicked>>;

/// What answers a panic (see [`refusals::panicked`]).
type Panicked = fn(Box<dyn std::any::Any + Send + 'static>) -> Response;

/// What `POST /mcp` must pass before the endpoint (steps 4 to 10 above), with its state shared
/// by all requests. One middleware rather than one per step: axum clones a middleware's inner
/// service on every request, so a chain of them clones the chain below each one (callgrind:
/// separate layers for these steps cost ~9,000 instructions per request in clones alone).
struct McpGate {
    cors: Option<CorsLayer>,
    in_flight: InFlight,
    origins: OriginGuard,
    deadline: Deadline,
    auth: Option<Arc<Authenticator>>,
    rate_limits: Option<RateLimits>,
    memory: Option<Arc<MemoryBudget>>,
}

async fn mcp_gate(State(gate): State<Arc<McpGate>>, req: Request, next: Next) -> Response {
    // Only browsers send an Origin: other callers skip CORS's per-request work (callgrind:
    // ~4,000 instructions per request).
    let Some(cors) = gate
        .cors
        .as_ref()
        .filter(|_| req.headers().contains_key(header::ORIGIN))
    else {
        return admit(&gate, req, next).await;
    };
    let mut next = Some(next);
    let admitted = service_fn(|req| {
        let next = next
            .take()
            .expect("CORS calls its inner service at most once");
        let gate = gate.clone();
        async move { Ok::<_, Infallible>(admit(&gate, req, next).await) }
    });
    match cors.layer(admitted).oneshot(req).await {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    }
}

/// Steps 5 to 10, then the endpoint.
async fn admit(gate: &McpGate, req: Request, next: Next) -> Response {
    let Some(permit) = gate.in_flight.try_admit() else {
        return shed::overloaded(&req);
    };
    if let Some(refused) = gate.origins.refusal(&req) {
        return refused;
    }
    if req.method() != Method::POST {
        return mcp_method_not_allowed(&req);
    }
    let context = RequestContext::of(req.extensions()).cloned();
    let response = gate
        .deadline
        .run(context.clone(), async {
            if let Some(auth) = &gate.auth
                && let Err(refused) = auth.admit(req.headers(), context.as_ref()).await
            {
                return refused;
            }
            if let Some(refused) = gate
                .rate_limits
                .as_ref()
                .and_then(|limits| limits.refusal(&req, context.as_ref()))
            {
                return refused;
            }
            match &gate.memory {
                Some(budget) => budget.run(req, |req| next.run(req)).await,
                None => next.run(req).await,
            }
        })
        .await;
    shed::hold(response, permit)
}

/// The stateless server has no GET stream and no session to DELETE.
fn mcp_method_not_allowed(req: &Request) -> Response {
    let mut response = (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not supported on {MCP_PATH}: this stateless server accepts POST only",
            req.method()
        ),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

async fn not_found(req: Request) -> Response {
    JsonRpcError::new(
        axum::http::StatusCode::NOT_FOUND,
        code::INVALID_REQUEST,
        format!(
            "no route for {} {}; the MCP endpoint is POST {MCP_PATH}",
            req.method(),
            req.uri().path()
        ),
    )
    .for_request(RequestContext::of(req.extensions()))
    .into_response()
}

//! The public router: the routes and the whole middleware stack, in the order a request passes
//! them. Each step is a tower layer of its own module, with its state shared behind an `Arc`.

use std::{convert::Infallible, sync::Arc};

use axum::{
    Router,
    extract::Request,
    response::{IntoResponse, Response},
    routing::get,
};
use tower::{Service, ServiceBuilder};
use tower_http::catch_panic::{CatchPanic, CatchPanicLayer};

use crate::{
    config::HttpSettings,
    context::RequestFacts,
    http::{
        self, AroundLayer, CheckLayer, Readiness, Wrapped,
        access_log::AccessLog,
        auth::{self, AuthLayer, Authenticator},
        budget::MemoryBudget,
        cors,
        deadline::Deadline,
        guard::OriginGuard,
        post_only::PostOnly,
        rate_limit::RateLimits,
        refusals::{self, JsonRpcEdge},
        request_id::RequestId,
        route::RecordRouteLayer,
        shed::Shed,
    },
    jsonrpc::{JsonRpcError, code},
    mcp::MCP_PATH,
    telemetry::ServerSpans,
};

/// Every request, outermost first: its id, facts and span; the metrics and the access line (to
/// the response's last byte); the JSON-RPC edge (refusals that are not JSON become JSON-RPC);
/// catch-panic (a logged 500, never a dropped connection); the router, which records the route
/// it matched. `POST /mcp` then passes the layers of [`mcp_route`].
///
/// `memory_budget`: the bytes the memory budget allows (`None`: no budget).
pub fn public_service<E>(
    settings: &HttpSettings,
    memory_budget: Option<u64>,
    mcp_endpoint: E,
    auth: Option<Arc<Authenticator>>,
    readiness: Readiness,
    spans: ServerSpans,
) -> PublicService
where
    E: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    E::Future: Send + 'static,
{
    let mcp = mcp_route(settings, memory_budget, auth.clone(), mcp_endpoint);
    ServiceBuilder::new()
        .layer(AroundLayer::new(RequestId))
        .layer(AroundLayer::new(AccessLog::new(spans)))
        .layer(AroundLayer::new(JsonRpcEdge))
        .layer(CatchPanicLayer::custom(refusals::panicked as Panicked))
        .service(router(mcp, auth, readiness))
}

/// What `POST /mcp` passes, in order, before the endpoint (body limit, envelope and version
/// checks, the MCP span and metrics, rmcp and the handler):
fn mcp_route<E>(
    settings: &HttpSettings,
    memory_budget: Option<u64>,
    auth: Option<Arc<Authenticator>>,
    mcp_endpoint: E,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
+ Clone
+ Send
+ Sync
+ 'static
where
    E: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    E::Future: Send + 'static,
{
    let origins = OriginGuard::new(settings);
    ServiceBuilder::new()
        // CORS for the allowed browser origins (tower-http; preflights stop here);
        .option_layer(cors::layer(&origins, crate::mcp::REQUEST_HEADERS))
        // 503 at once above `max_in_flight`;
        .layer(AroundLayer::new(Shed::new(settings.max_in_flight)))
        // 403 for a Host or Origin not allowed (DNS-rebinding protection);
        .layer(CheckLayer::new(origins))
        // 405 for anything but POST;
        .layer(CheckLayer::new(PostOnly))
        // 504 past `request_timeout_ms` from arrival, event streams included;
        .layer(AroundLayer::new(Deadline(settings.request_timeout())))
        // 401/403 with the challenge, when auth is on;
        .option_layer(auth.map(AuthLayer))
        // 429 for a caller over its rate (after auth, whose principal names the caller);
        .option_layer(RateLimits::new(settings).map(CheckLayer::new))
        // 503 when the body does not fit the memory budget, charged before a byte of it is read.
        .option_layer(memory_budget.map(|bytes| {
            AroundLayer::shared(MemoryBudget::new(
                bytes,
                settings.max_body_bytes,
                settings.request_timeout(),
            ))
        }))
        .service(mcp_endpoint)
}

/// The routes: the MCP endpoint, the health routes and, with auth on, its metadata documents.
fn router<M>(mcp: M, auth: Option<Arc<Authenticator>>, readiness: Readiness) -> Router
where
    M: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    M::Future: Send + 'static,
{
    let mut router = Router::new()
        .route_service(MCP_PATH, mcp)
        .route(http::LIVEZ_PATH, get(http::livez))
        .route(http::READYZ_PATH, get(http::readyz).with_state(readiness));
    if let Some(auth) = auth {
        // Clients look for the path-inserted document first, then the root one.
        let document = get(auth::metadata).with_state(auth.clone());
        if auth.metadata_path() != auth::METADATA_PATH {
            router = router.route(auth::METADATA_PATH, document.clone());
        }
        router = router.route(&auth.metadata_path(), document);
    }
    router.route_layer(RecordRouteLayer).fallback(not_found)
}

/// The whole public stack, as `public_service` builds it.
pub type PublicService =
    Wrapped<Wrapped<Wrapped<CatchPanic<Router, Panicked>, JsonRpcEdge>, AccessLog>, RequestId>;

/// What answers a panic (see [`refusals::panicked`]).
type Panicked = fn(Box<dyn std::any::Any + Send + 'static>) -> Response;

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
    .for_request(RequestFacts::of(req.extensions()))
    .into_response()
}

//! The public router: the routes and the whole middleware stack, written once, in order.

use std::{convert::Infallible, sync::Arc};

use axum::{
    Router,
    extract::Request,
    http::{HeaderValue, header},
    middleware::{from_fn, from_fn_with_state},
    response::{IntoResponse, Response},
    routing::{get, post_service},
};
use tower::{Service, ServiceBuilder};
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{PropagateRequestIdLayer, SetRequestIdLayer},
};

use crate::{
    config::HttpSettings,
    context::RequestContext,
    http::{
        self, Readiness,
        auth::{self, Authenticator},
        cors,
        deadline::{self, Deadline},
        guard::{self, OriginGuard},
        observe, refusals,
        request_id::{self, X_REQUEST_ID},
        shed::{self, InFlight},
    },
    jsonrpc::{JsonRpcError, code},
    mcp::{self, MCP_PATH},
    telemetry::Tracing,
};

/// Every request passes these layers, outermost first:
///
/// 1. request id: the caller's `x-request-id` when sane, else a new one; echoed on the response
///    (tower-http);
/// 2. observe: the request context, the server span, the `http.server.*` metrics and the access
///    line, to the last byte of the response;
/// 3. refusals: any answer that is an error but not JSON becomes a JSON-RPC error body;
/// 4. catch-panic: a panic is a logged 500 (tower-http), never a dropped connection;
/// 5. routing: the health routes and the auth metadata stop here.
///
/// `POST /mcp` then passes, in order:
///
/// 6. CORS, for the allowed browser origins (tower-http; preflights stop here);
/// 7. load shedding: 503 at once above `max_in_flight`;
/// 8. Host/Origin checks: 403 (DNS-rebinding protection);
/// 9. the deadline: 504 past `request_timeout_ms` from arrival, event streams included;
/// 10. auth, when on: 401/403 with the challenge (GET and DELETE get their 405 before it);
/// 11. the MCP endpoint: body limit (413), envelope and version checks, the MCP span and
///     metrics, rmcp and the handler.
pub fn public_router<E>(
    settings: &HttpSettings,
    mcp_endpoint: E,
    auth: Option<Arc<Authenticator>>,
    readiness: Readiness,
    tracing: Tracing,
) -> Router
where
    E: Service<Request, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    E::Future: Send + 'static,
{
    let origins = OriginGuard::new(settings);
    let mcp = ServiceBuilder::new()
        .option_layer(cors::layer(&origins, mcp::REQUEST_HEADERS))
        .layer(from_fn_with_state(
            InFlight::new(settings.max_in_flight),
            shed::shed,
        ))
        .layer(from_fn_with_state(origins, guard::guard))
        .layer(from_fn_with_state(
            Deadline(settings.request_timeout()),
            deadline::deadline,
        ))
        .service(
            post_service(
                ServiceBuilder::new()
                    .option_layer(
                        auth.clone()
                            .map(|auth| from_fn_with_state(auth, auth::middleware)),
                    )
                    .service(mcp_endpoint),
            )
            .fallback(mcp_method_not_allowed),
        );
    let mut router = Router::new()
        .route_service(MCP_PATH, mcp)
        .route(http::LIVEZ_PATH, get(http::livez))
        .route(http::READYZ_PATH, get(http::readyz).with_state(readiness));
    if let Some(auth) = auth {
        // Clients look for the path-inserted document first, then the root one.
        let document = get(auth::metadata).with_state(auth.clone());
        router = router.route(&auth.metadata_path(), document.clone());
        if auth.metadata_path() != auth::METADATA_PATH {
            router = router.route(auth::METADATA_PATH, document);
        }
    }
    router.fallback(not_found).layer(
        // Router::layer runs after routing, so the observer sees the matched route.
        ServiceBuilder::new()
            .map_request(request_id::drop_insane)
            .layer(SetRequestIdLayer::new(
                X_REQUEST_ID.clone(),
                request_id::MakeUuid,
            ))
            .layer(PropagateRequestIdLayer::new(X_REQUEST_ID.clone()))
            .layer(from_fn_with_state(tracing, observe::observe))
            .layer(from_fn(refusals::refusals))
            .layer(CatchPanicLayer::custom(refusals::panicked)),
    )
}

/// The stateless server has no GET stream and no session to DELETE.
async fn mcp_method_not_allowed(req: Request) -> Response {
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

//! The HTTP client the platform hands tools for their downstream calls: reqwest behind
//! reqwest-middleware, with a CLIENT span per request sent (reqwest-tracing; HTTP client semantic
//! conventions, `url.full` without query values), the trace context injected by the global
//! propagator (the downstream sees the tool's span as the parent), `http.client.request.duration`,
//! connect and request timeouts, and retries with backoff for idempotent methods only.
//!
//! A tool uses it as it would use reqwest: `client.get(url).bearer_auth(key).send().await`. Errors
//! are [`HttpError`]s a tool turns into a tool result.

use std::{borrow::Cow, time::Duration};

use http::Extensions;
use metrics::Label;
use reqwest::{Request, Response, Url};
use reqwest_middleware::{ClientBuilder, Middleware, Next};
use reqwest_retry::{RetryError, RetryTransientMiddleware, policies::ExponentialBackoff};
use reqwest_tracing::{ReqwestOtelSpanBackend, TracingMiddleware, reqwest_otel_span};
use tracing::Span;

pub use reqwest_middleware::{ClientWithMiddleware as HttpClient, Error as HttpError};

use crate::telemetry::{
    self,
    metrics::{HistogramSeries, labels, names},
    semconv,
};

/// How a tool's client behaves; [`Default`] suits a call that should answer within seconds.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// To set up a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// For one request, from sending to the last byte of the response.
    pub timeout: Duration,
    /// Retries of an idempotent request after a transient failure (a connection error, a
    /// timeout, 408, 429, 5xx), with exponential backoff.
    pub retries: u32,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            retries: 2,
        }
    }
}

/// A client for a tool's downstream calls (see the module). Build it once, at start-up, and share
/// it: it pools connections.
pub fn http_client(options: &ClientOptions) -> Result<HttpClient, reqwest::Error> {
    let client = crate::http_client_builder()
        .connect_timeout(options.connect_timeout)
        .timeout(options.timeout)
        .build()?;
    let backoff = ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(100), Duration::from_secs(2))
        .build_with_max_retries(options.retries);
    Ok(ClientBuilder::new(client)
        // Outermost: each attempt is a request of its own, with its own span and sample.
        .with(IdempotentOnly(RetryTransientMiddleware::new_with_policy(
            backoff,
        )))
        .with(TracingMiddleware::<ClientSpan>::new())
        .with(Observe {
            durations: HistogramSeries::new(names::HTTP_CLIENT_REQUEST_DURATION),
        })
        .build())
}

/// Retries only what may be sent twice: GET, HEAD, OPTIONS, TRACE, PUT, DELETE (RFC 9110). The
/// error of the last attempt is the caller's, as reqwest made it (`is_timeout()`, `status()`), not
/// reqwest-retry's wrapper around it.
struct IdempotentOnly<M>(M);

#[async_trait::async_trait]
impl<M: Middleware> Middleware for IdempotentOnly<M> {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        if !req.method().is_idempotent() {
            return next.run(req, extensions).await;
        }
        match self.0.handle(req, extensions, next).await {
            Err(HttpError::Middleware(err)) => Err(match err.downcast::<RetryError>() {
                Ok(RetryError::WithRetries { retries, err }) => {
                    tracing::debug!(retries, "downstream request failed after retries");
                    err
                }
                Ok(RetryError::Error(err)) => err,
                Err(other) => HttpError::Middleware(other),
            }),
            outcome => outcome,
        }
    }
}

/// The CLIENT span of one request (reqwest-tracing's fields), with `url.full` without query
/// values and `error.type`.
struct ClientSpan;

impl ReqwestOtelSpanBackend for ClientSpan {
    fn on_request_start(req: &Request, extensions: &mut Extensions) -> Span {
        let name = reqwest_tracing::default_span_name(req, extensions);
        // `peer.service`: the node X-Ray draws for the downstream (else it would be "GET").
        reqwest_otel_span!(
            name = name,
            req,
            url.full = %redacted(req.url()),
            peer.service = req.url().host_str().unwrap_or_default(),
            error.type = tracing::field::Empty
        )
    }

    fn on_request_end(
        span: &Span,
        outcome: &reqwest_middleware::Result<Response>,
        _: &mut Extensions,
    ) {
        // As i64: tracing-opentelemetry would export an unsigned value as a string.
        if let Ok(response) = outcome {
            span.record(
                semconv::HTTP_RESPONSE_STATUS_CODE,
                i64::from(response.status().as_u16()),
            );
        }
        if let Some(error) = error_type(outcome) {
            span.record("otel.status_code", "ERROR");
            span.record(semconv::ERROR_TYPE, error.as_ref());
            if let Err(err) = outcome {
                span.record("error.message", tracing::field::display(err));
            }
        }
    }
}

/// `url` with every query value replaced (they may hold keys or tokens) and no credentials.
fn redacted(url: &Url) -> Cow<'_, str> {
    if url.query().is_none() && url.username().is_empty() && url.password().is_none() {
        return Cow::Borrowed(url.as_str());
    }
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    if url.query().is_some() {
        let keys: Vec<String> = url.query_pairs().map(|(key, _)| key.into_owned()).collect();
        url.query_pairs_mut()
            .clear()
            .extend_pairs(keys.iter().map(|key| (key, "REDACTED")));
    }
    Cow::Owned(url.into())
}

/// A request's `error.type` (semantic conventions): the status code of a 4xx or 5xx, else what
/// failed; `None` for a success.
fn error_type(outcome: &reqwest_middleware::Result<Response>) -> Option<Cow<'static, str>> {
    let err = match outcome {
        Ok(response) => {
            let status = response.status();
            return (status.is_client_error() || status.is_server_error())
                .then(|| Cow::Owned(status.as_str().to_owned()));
        }
        Err(HttpError::Reqwest(err)) => err,
        Err(HttpError::Middleware(_)) => return Some(Cow::Borrowed("middleware")),
    };
    Some(Cow::Borrowed(if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else if err.is_body() {
        "body"
    } else if err.is_decode() {
        "decode"
    } else if err.is_redirect() {
        "redirect"
    } else if err.is_request() {
        "request"
    } else {
        semconv::OTHER
    }))
}

/// Injects the trace context (the client span is the current one here) and records
/// `http.client.request.duration`.
struct Observe {
    durations: HistogramSeries,
}

#[async_trait::async_trait]
impl Middleware for Observe {
    async fn handle(
        &self,
        mut req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        telemetry::inject_current_context(req.headers_mut());
        let method = semconv::known_method(req.method());
        let server = req.url().host_str().unwrap_or_default().to_owned();
        let started = std::time::Instant::now();
        let outcome = next.run(req, extensions).await;
        let status = outcome
            .as_ref()
            .ok()
            .map(|r| r.status().as_str().to_owned());
        self.durations.record(
            [
                Some(Label::new(labels::SERVER_ADDRESS, server)),
                Some(Label::new(labels::HTTP_REQUEST_METHOD, method)),
                status.map(|status| Label::new(labels::HTTP_RESPONSE_STATUS_CODE, status)),
                error_type(&outcome).map(|error| Label::new(labels::ERROR_TYPE, error)),
            ],
            started.elapsed().as_secs_f64(),
        );
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_full_keeps_no_query_value_and_no_credentials() {
        let url = Url::parse("https://user:pw@api.example.com/v1/current?city=Paris&appid=s3cr3t")
            .unwrap();
        let shown = redacted(&url);
        assert_eq!(
            shown,
            "https://api.example.com/v1/current?city=REDACTED&appid=REDACTED"
        );
        let plain = Url::parse("http://127.0.0.1:9/v1/current").unwrap();
        assert!(matches!(redacted(&plain), Cow::Borrowed(_)));
    }
}

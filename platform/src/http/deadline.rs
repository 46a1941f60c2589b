//! The whole-request deadline, counted from the request's arrival: past it the caller gets a
//! JSON-RPC timeout error and the handler's future (the tool's work) is dropped. Hand-written:
//! tower-http's `Timeout` stops at the response head, and an event stream (a tool that sends
//! notifications before its result) must end at the deadline too, with a JSON-RPC error event.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::Body,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame};

use crate::{
    context::RequestContext,
    jsonrpc::{JsonRpcError, code},
    telemetry::metrics::names,
};

/// The request deadline (`APP__HTTP__REQUEST_TIMEOUT_MS`).
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub Duration);

impl Deadline {
    /// Runs `work` (the rest of the request's handling) to the deadline, counted from the
    /// request's arrival; an event stream it answers with is held to the deadline too.
    pub async fn run(
        self,
        context: Option<RequestContext>,
        work: impl Future<Output = Response>,
    ) -> Response {
        let Deadline(timeout) = self;
        let received = context
            .as_ref()
            .map_or_else(std::time::Instant::now, RequestContext::received);
        let deadline = tokio::time::Instant::from_std(received + timeout);
        let response = match tokio::time::timeout_at(deadline, work).await {
            Ok(response) => response,
            Err(_) => return timed_out(timeout, context.as_ref()).into_response(),
        };
        if !super::is_event_stream(response.headers()) {
            return response;
        }
        response.map(|body| {
            Body::new(StreamDeadline {
                body,
                timeout,
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                context,
                span: tracing::Span::current(),
                ended: false,
            })
        })
    }
}

/// The answer to a request past its deadline (counted and logged).
fn timed_out(timeout: Duration, context: Option<&RequestContext>) -> JsonRpcError {
    metrics::counter!(names::REQUEST_TIMEOUTS).increment(1);
    let ms = timeout.as_millis();
    tracing::warn!(timeout_ms = ms as u64, "request timed out");
    JsonRpcError::new(
        StatusCode::GATEWAY_TIMEOUT,
        code::REQUEST_TIMEOUT,
        format!("request timed out after {ms} ms"),
    )
    .for_request(context)
}

/// Holds an event stream to the request's deadline: when it passes, the stream ends with a
/// JSON-RPC timeout error event, and dropping the stream stops the tool.
struct StreamDeadline<B> {
    body: B,
    timeout: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    context: Option<RequestContext>,
    /// The request's span, for the log line (the body is polled outside it).
    span: tracing::Span,
    ended: bool,
}

impl<B: HttpBody<Data = Bytes> + Unpin> HttpBody for StreamDeadline<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.deadline.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.ended = true;
        let timed_out = || timed_out(self.timeout, self.context.as_ref());
        let error = self.span.in_scope(timed_out);
        let event = format!("data: {}\n\n", error.body());
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))))
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }
}

//! The whole-request deadline, counted from the request's arrival: past it the caller gets a
//! JSON-RPC timeout error and the handler's future (the tool's work) is dropped. Hand-written:
//! tower-http's `Timeout` stops at the response head, and an event stream (a tool that sends
//! notifications before its result) must end at the deadline too, with a JSON-RPC error event.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::Body,
    extract::Request,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame};

use super::{Around, Handled};

use crate::{
    context::RequestFacts,
    jsonrpc::{JsonRpcError, code},
    telemetry::metrics::names,
};

/// The request deadline (`APP__HTTP__REQUEST_TIMEOUT_MS`) for everything below it (an
/// [`Around`] layer).
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub Duration);

impl Around for Deadline {
    fn around<F>(self: &Arc<Self>, req: Request, next: impl FnOnce(Request) -> F) -> Handled
    where
        F: Future<Output = Result<Response, Infallible>> + Send + 'static,
    {
        let facts = RequestFacts::of(req.extensions()).cloned();
        Box::pin(run(self.0, facts, next(req)))
    }
}

/// Runs `work` (the rest of the request's handling) to the deadline, counted from the request's
/// arrival; an event stream it answers with is held to the deadline too.
async fn run(
    timeout: Duration,
    context: Option<RequestFacts>,
    work: impl Future<Output = Result<Response, Infallible>>,
) -> Result<Response, Infallible> {
    let received = context
        .as_ref()
        .map_or_else(std::time::Instant::now, RequestFacts::received);
    let deadline = tokio::time::Instant::from_std(received + timeout);
    let response = match tokio::time::timeout_at(deadline, work).await {
        Ok(response) => response?,
        Err(_) => return Ok(timed_out(timeout, context.as_ref()).into_response()),
    };
    if !super::is_event_stream(response.headers()) {
        return Ok(response);
    }
    Ok(response.map(|body| {
        Body::new(StreamDeadline {
            body,
            timeout,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            context,
            span: tracing::Span::current(),
            ended: false,
        })
    }))
}

/// The answer to a request past its deadline (counted and logged).
fn timed_out(timeout: Duration, context: Option<&RequestFacts>) -> JsonRpcError {
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
    context: Option<RequestFacts>,
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

#[cfg(test)]
mod tests {
    use tower::{Layer as _, ServiceExt as _, service_fn};

    use super::*;

    #[tokio::test]
    async fn work_past_the_deadline_is_dropped_for_a_timeout_error() {
        let (dropped, was_dropped) = tokio::sync::oneshot::channel::<()>();
        let mut dropped = Some(dropped);
        let inner = service_fn(move |_req: Request| {
            // Sends when the work's future is dropped, never answers.
            let guard = dropped.take().map(scopeguard_send);
            async move {
                let _guard = guard;
                std::future::pending::<Result<Response, Infallible>>().await
            }
        });
        let service =
            super::super::AroundLayer::new(Deadline(Duration::from_millis(20))).layer(inner);
        let answer = service
            .oneshot(Request::post("/mcp").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::GATEWAY_TIMEOUT);
        was_dropped.await.expect("the work was dropped");
    }

    /// Sends on `tx` when dropped.
    fn scopeguard_send(tx: tokio::sync::oneshot::Sender<()>) -> impl Drop {
        struct SendOnDrop(Option<tokio::sync::oneshot::Sender<()>>);
        impl Drop for SendOnDrop {
            fn drop(&mut self) {
                if let Some(tx) = self.0.take() {
                    let _ = tx.send(());
                }
            }
        }
        SendOnDrop(Some(tx))
    }
}

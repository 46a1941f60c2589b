//! The memory budget: the bytes the service buffers for requests in flight (bodies being read and
//! parsed, complete responses waiting to be written) are counted against one budget sized from the
//! memory the process really has ([`super::memory_limit`]). A request is charged before its body
//! is read: its `Content-Length` at once, a chunked body frame by frame as it arrives. One that
//! does not fit gets 503 + `Retry-After` and its body is read and dropped (never buffered), so the
//! client reads the refusal instead of a reset. A request whose body was read is never failed for
//! the budget: its response is charged even past the budget, and then refuses new requests.
//! The first [`SMALL_BODY_BYTES`] of every body are charged but never refused, so small calls
//! are served while large ones are turned away (`max_in_flight` bounds what they add).
//! Hand-written: no crate counts bytes across requests; tokio's semaphore counts at most
//! `u32::MAX` permits per acquire and queues waiters this budget must refuse at once.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{body::Body, extract::Request, http::header, response::Response};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt as _;

use super::{Around, Handled, body::Guarded, sampled_log::SampledLog, shed::retry_shortly};
use crate::{
    context::RequestFacts,
    telemetry::metrics::{labels, names, shed},
};

/// What of a body is never refused for the budget (charged all the same).
pub const SMALL_BODY_BYTES: u64 = 64 * 1024;

/// Charges every request's buffered bytes to the budget (an [`Around`] layer).
impl Around for MemoryBudget {
    fn around<F>(self: &Arc<Self>, req: Request, next: impl FnOnce(Request) -> F) -> Handled
    where
        F: Future<Output = Result<Response, Infallible>> + Send + 'static,
    {
        let facts = RequestFacts::of(req.extensions()).cloned();
        match self.admit(req) {
            Admission::Refused(refusal) => Box::pin(std::future::ready(Ok(refusal))),
            Admission::Admitted(req, charge) => {
                let handled = next(req);
                Box::pin(async move { Ok(charge.hold(handled.await?, facts.as_ref())) })
            }
        }
    }
}

/// A request charged to the budget, or the refusal of one that does not fit.
enum Admission {
    Admitted(Request, Charge),
    Refused(Response),
}

/// Bytes allowed in the service's buffers at once, and how many are taken.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
    /// The largest body a request may send (larger ones get 413 before any byte is read).
    max_body_bytes: u64,
    /// How long a refused request's body is read and dropped before its connection is closed.
    drain_for: Duration,
    log: SampledLog,
}

impl MemoryBudget {
    pub fn new(limit: u64, max_body_bytes: usize, drain_for: Duration) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicU64::new(0),
            max_body_bytes: max_body_bytes as u64,
            drain_for,
            log: SampledLog::new("shed requests: the memory budget for request bodies is spent"),
        })
    }

    /// Bytes charged now.
    #[cfg(test)]
    fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn try_take(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn take_anyway(&self, bytes: u64) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }

    /// Charges `req`'s body (its `Content-Length` before a byte is read, else each frame as it
    /// arrives) and gives the request back with its charge, to hold to the answer's last byte; a
    /// body that does not fit gets the 503 instead.
    fn admit(self: &Arc<Self>, mut req: Request) -> Admission {
        let charge = Charge(Arc::new(Held {
            budget: self.clone(),
            bytes: AtomicU64::new(0),
            refused: AtomicBool::new(false),
        }));
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        req.extensions_mut().insert(BodyCharge(charge.0.clone()));
        let req = match declared {
            // Larger than allowed: the endpoint answers 413 without reading it.
            Some(len) if len > self.max_body_bytes => req,
            Some(len) if charge.0.try_grow(len) => req,
            Some(_) => return Admission::Refused(self.refuse(req)),
            None => {
                let held = charge.0.clone();
                req.map(|body| {
                    Body::new(ChargedBody {
                        body: Some(body),
                        held,
                    })
                })
            }
        };
        Admission::Admitted(req, charge)
    }

    /// The 503 for a request that does not fit; its body is read and dropped meanwhile.
    fn refuse(self: &Arc<Self>, req: Request) -> Response {
        let response = self.over_budget(RequestFacts::of(req.extensions()));
        self.drain(req.into_body());
        response
    }

    /// Reads a refused body to its end (up to the largest allowed, within the request deadline)
    /// without keeping it, so the connection reads the answer instead of being reset mid-upload.
    fn drain(&self, body: Body) {
        let (limit, drain_for) = (self.max_body_bytes, self.drain_for);
        tokio::spawn(async move {
            let mut body = body;
            let mut read = 0u64;
            let _ = tokio::time::timeout(drain_for, async {
                while let Some(Ok(frame)) = body.frame().await {
                    read += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if read > limit {
                        break;
                    }
                }
            })
            .await;
        });
    }

    /// The answer to a request over the budget: 503 with `Retry-After`, counted.
    fn over_budget(&self, context: Option<&RequestFacts>) -> Response {
        metrics::counter!(names::SHED_REQUESTS, labels::REASON => shed::MEMORY).increment(1);
        self.log.record();
        retry_shortly(
            "server overloaded: too many large requests in flight, retry shortly",
            context,
        )
    }
}

/// A request's charge as the endpoint finds it in the request's extensions, to charge what
/// parsing its body will take beyond its bytes (see `mcp::parse_cost`).
#[derive(Debug, Clone)]
pub struct BodyCharge(Arc<Held>);

/// Whether more bytes fit in the budget for a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Extra {
    /// Charged, held with the request's other bytes.
    Charged,
    /// Not now (other requests hold the budget): the request gets the budget's 503.
    NotNow,
    /// More than the whole budget: never (the request gets a 413).
    Never,
}

impl BodyCharge {
    /// Charges `bytes` more to the request, until its answer's last byte.
    pub fn try_add(&self, bytes: u64) -> Extra {
        if bytes > self.0.budget.limit {
            Extra::Never
        } else if self.0.try_grow(bytes) {
            Extra::Charged
        } else {
            Extra::NotNow
        }
    }

    /// The budget's 503 (counted, logged like its other refusals).
    pub fn refusal(&self, context: Option<&RequestFacts>) -> Response {
        self.0.budget.over_budget(context)
    }
}

/// What one request holds of the budget, until its response has been sent.
#[derive(Debug)]
pub struct Charge(Arc<Held>);

#[derive(Debug)]
struct Held {
    budget: Arc<MemoryBudget>,
    bytes: AtomicU64,
    /// Its chunked body did not fit.
    refused: AtomicBool,
}

impl Held {
    fn try_grow(&self, bytes: u64) -> bool {
        let total = self.bytes.load(Ordering::Acquire).saturating_add(bytes);
        if total <= SMALL_BODY_BYTES {
            self.grow_anyway(bytes);
            return true;
        }
        let taken = self.budget.try_take(bytes);
        if taken {
            self.bytes.fetch_add(bytes, Ordering::AcqRel);
        }
        taken
    }

    fn grow_anyway(&self, bytes: u64) {
        self.budget.take_anyway(bytes);
        self.bytes.fetch_add(bytes, Ordering::AcqRel);
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget
            .used
            .fetch_sub(*self.bytes.get_mut(), Ordering::AcqRel);
    }
}

impl Charge {
    /// The endpoint's answer, holding the charge to its last byte: a complete body is charged
    /// too (it is in memory until written). A chunked body that did not fit was cut short:
    /// its answer is the 503.
    fn hold(self, response: Response, context: Option<&RequestFacts>) -> Response {
        if self.0.refused.load(Ordering::Acquire) {
            return self.0.budget.over_budget(context);
        }
        if let Some(len) = response.body().size_hint().exact() {
            self.0.grow_anyway(len);
        }
        response.map(|body| Body::new(Guarded::new(body, self)))
    }
}

/// A body without `Content-Length`, charged frame by frame before the endpoint buffers it.
struct ChargedBody {
    /// Taken away (to be drained) once a frame did not fit.
    body: Option<Body>,
    held: Arc<Held>,
}

/// The error a chunked body ends with when it does not fit (the gate answers 503 instead).
#[derive(Debug)]
struct OverBudget;

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the memory budget for request bodies is spent")
    }
}

impl std::error::Error for OverBudget {}

impl HttpBody for ChargedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let Some(body) = self.body.as_mut() else {
            return Poll::Ready(Some(Err(OverBudget.into())));
        };
        let frame = match Pin::new(body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other.map_err(Into::into),
        };
        let len = frame.data_ref().map_or(0, |d| d.len() as u64);
        if self.held.try_grow(len) {
            return Poll::Ready(Some(Ok(frame)));
        }
        self.held.refused.store(true, Ordering::Release);
        if let Some(body) = self.body.take() {
            self.held.budget.drain(body);
        }
        Poll::Ready(Some(Err(OverBudget.into())))
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(SizeHint::default, HttpBody::size_hint)
    }
}

#[cfg(test)]
mod tests {
    use axum::{http::StatusCode, response::IntoResponse};
    use tokio::sync::oneshot;

    use super::*;

    const MIB: usize = 1 << 20;

    fn request(body: Body, content_length: Option<usize>) -> Request {
        let mut builder = Request::post("/mcp");
        if let Some(len) = content_length {
            builder = builder.header(header::CONTENT_LENGTH, len);
        }
        builder.body(body).unwrap()
    }

    /// `req` through the budget's layer, to `endpoint`.
    async fn run<E, F>(budget: &Arc<MemoryBudget>, req: Request, endpoint: E) -> Response
    where
        E: FnOnce(Request) -> F + Send + 'static,
        F: std::future::Future<Output = Response> + Send + 'static,
    {
        use tower::{Layer as _, ServiceExt as _, service_fn};

        use crate::http::AroundLayer;
        let mut endpoint = Some(endpoint);
        let service = service_fn(move |req| {
            let endpoint = endpoint.take().expect("called once");
            async move { Ok::<_, Infallible>(endpoint(req).await) }
        });
        let answer = AroundLayer::shared(budget.clone())
            .layer(service)
            .oneshot(req);
        answer.await.unwrap_or_else(|never| match never {})
    }

    /// Runs a request whose endpoint answers `answer_bytes` once `release` fires; returns when
    /// it is charged.
    async fn in_flight(
        budget: &Arc<MemoryBudget>,
        req: Request,
        answer_bytes: usize,
    ) -> (oneshot::Sender<()>, tokio::task::JoinHandle<Response>) {
        let (release, released) = oneshot::channel::<()>();
        let (charged, is_charged) = oneshot::channel::<()>();
        let budget = budget.clone();
        let answer = tokio::spawn(async move {
            run(&budget, req, move |_req| async move {
                charged.send(()).unwrap();
                released.await.unwrap();
                Response::new(Body::from(vec![b'x'; answer_bytes]))
            })
            .await
        });
        is_charged.await.unwrap();
        (release, answer)
    }

    async fn answer_now(budget: &Arc<MemoryBudget>, req: Request) -> Response {
        run(budget, req, |req| async move {
            // What the endpoint does: read the body whole.
            match req.into_body().collect().await {
                Ok(_) => Response::new(Body::empty()),
                Err(_) => StatusCode::BAD_REQUEST.into_response(),
            }
        })
        .await
    }

    #[tokio::test]
    async fn a_declared_body_is_charged_before_it_is_read_and_released_after_the_answer() {
        let budget = MemoryBudget::new(3 * MIB as u64, 4 * MIB, Duration::from_secs(1));
        let (release, first) =
            in_flight(&budget, request(Body::empty(), Some(2 * MIB)), 2 * MIB).await;
        assert_eq!(budget.used(), 2 * MIB as u64);
        let refused = answer_now(&budget, request(Body::empty(), Some(2 * MIB))).await;
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        // Over the largest body: the endpoint's 413 comes without any byte read, at no charge.
        let too_large = answer_now(&budget, request(Body::empty(), Some(5 * MIB))).await;
        assert_eq!(too_large.status(), StatusCode::OK);
        // Small calls pass a spent budget.
        let small = answer_now(
            &budget,
            request(Body::empty(), Some(SMALL_BODY_BYTES as usize)),
        )
        .await;
        assert_eq!(small.status(), StatusCode::OK);
        // Each answer holds its request's charge until it is sent (or dropped).
        drop((too_large, small));
        release.send(()).unwrap();
        let answered = first.await.unwrap();
        assert_eq!(
            budget.used(),
            4 * MIB as u64,
            "a complete answer is charged even past the budget, until it is sent"
        );
        let _ = answered.into_body().collect().await.unwrap();
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test]
    async fn a_chunked_body_is_charged_as_it_arrives_and_cut_when_it_does_not_fit() {
        let chunk = SMALL_BODY_BYTES as usize;
        let budget = MemoryBudget::new(2 * SMALL_BODY_BYTES, 100 * chunk, Duration::from_secs(1));
        let chunks = [b'a', b'b', b'c']
            .map(|c| Ok::<_, std::io::Error>(Frame::data(Bytes::from(vec![c; chunk]))));
        let body = Body::new(http_body_util::StreamBody::new(futures::stream::iter(
            chunks,
        )));
        let answer = answer_now(&budget, request(body, None)).await;
        assert_eq!(
            answer.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "the third chunk does not fit"
        );
        assert_eq!(budget.used(), 0);
        let two =
            [b'a', b'b'].map(|c| Ok::<_, std::io::Error>(Frame::data(Bytes::from(vec![c; chunk]))));
        let body = Body::new(http_body_util::StreamBody::new(futures::stream::iter(two)));
        let answer = answer_now(&budget, request(body, None)).await;
        assert_eq!(answer.status(), StatusCode::OK);
    }
}

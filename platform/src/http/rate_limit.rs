//! Per-caller rate limits: a token bucket (governor's GCRA) per caller of `POST /mcp`, so one
//! runaway client cannot take every other caller's share of the task. The caller is the
//! authenticated principal (`sub`) when auth is on, else the client's address: the
//! `trusted_proxy_hops`-th `X-Forwarded-For` entry from the right (the one the nearest untrusted
//! hop was seen from, which no caller can choose), or the socket's peer without a proxy. IPv6
//! callers are keyed by their /64, which one host can fill with addresses. Over the limit: 429
//! with `Retry-After` and the IETF `RateLimit`/`RateLimit-Policy` headers, counted (never by
//! caller) and logged at most once a second.

use std::{
    collections::HashMap,
    hash::BuildHasher,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    num::NonZeroU32,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use axum::{
    extract::{ConnectInfo, Request},
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    nanos::Nanos,
    state::{StateStore, keyed::ShrinkableKeyedStateStore},
};

use super::{Check, sampled_log::SampledLog};
use crate::{
    config::HttpSettings,
    context::RequestFacts,
    jsonrpc::{JsonRpcError, code},
    telemetry::metrics::{labels, names, rate_limited},
};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const RATE_LIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATE_LIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// The policy's name in the `RateLimit` headers.
const POLICY: &str = "caller";
/// Shards of the bucket table: callers on different shards never wait for each other's lock.
const SHARDS: usize = 64;

/// The per-caller limits of `POST /mcp`, shared by all requests.
pub struct RateLimits {
    limiter: RateLimiter<u64, BoundedStore, DefaultClock>,
    /// Keys callers by a per-process random seed, so none can aim at another's bucket.
    hasher: foldhash::fast::RandomState,
    trusted_proxy_hops: usize,
    policy: HeaderValue,
    log: SampledLog,
}

/// 429 for a caller over its rate; after auth, whose principal names the caller.
impl Check for RateLimits {
    fn check(&self, req: &Request) -> Option<Response> {
        self.refusal(req, RequestFacts::of(req.extensions()))
    }
}

impl RateLimits {
    /// `None` when `http.rate_limit_per_second` is 0 (off).
    pub fn new(settings: &HttpSettings) -> Option<Self> {
        let rate = NonZeroU32::new(settings.rate_limit_per_second)?;
        let burst = NonZeroU32::new(settings.rate_limit_burst).unwrap_or(rate);
        let quota = Quota::per_second(rate).allow_burst(burst);
        let store = BoundedStore::new(settings.rate_limit_max_callers, quota);
        // The window a full bucket refills in, in whole seconds, as the draft's `w` wants.
        let window = quota
            .burst_size_replenished_in()
            .as_secs_f64()
            .ceil()
            .max(1.0) as u64;
        Some(Self {
            limiter: RateLimiter::new(quota, store, DefaultClock::default()),
            hasher: foldhash::fast::RandomState::default(),
            trusted_proxy_hops: settings.trusted_proxy_hops,
            policy: HeaderValue::from_str(&format!("\"{POLICY}\";q={burst};w={window}"))
                .expect("digits and quotes are a valid header value"),
            log: SampledLog::new("rate limited requests"),
        })
    }

    /// The 429 to answer when the request's caller is over its rate. A request whose caller is
    /// unknown (no peer address: only in-process tests) passes.
    pub fn refusal(&self, req: &Request, context: Option<&RequestFacts>) -> Option<Response> {
        let key = self.caller_key(req, context)?;
        let not_until = self.limiter.check_key(&key).err()?;
        let wait = not_until.wait_time_from(self.limiter.clock().now());
        Some(self.refuse(wait, context))
    }

    fn refuse(&self, wait: Duration, context: Option<&RequestFacts>) -> Response {
        metrics::counter!(names::RATE_LIMITED_REQUESTS, labels::REASON => rate_limited::CALLER)
            .increment(1);
        self.log.record();
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        let mut response = JsonRpcError::new(
            StatusCode::TOO_MANY_REQUESTS,
            code::SERVER_OVERLOADED,
            format!("rate limited: this caller sends faster than allowed, retry in {seconds} s"),
        )
        .for_request(context)
        .into_response();
        let headers = response.headers_mut();
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        headers.insert(RATE_LIMIT_POLICY, self.policy.clone());
        headers.insert(
            RATE_LIMIT,
            HeaderValue::from_str(&format!("\"{POLICY}\";r=0;t={seconds}"))
                .expect("digits and quotes are a valid header value"),
        );
        response
    }

    fn caller_key(&self, req: &Request, context: Option<&RequestFacts>) -> Option<u64> {
        if let Some(principal) = context.and_then(RequestFacts::principal) {
            return Some(self.hasher.hash_one(("sub", principal.subject.as_str())));
        }
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let addr = forwarded_client(req, self.trusted_proxy_hops).or(peer)?;
        Some(self.hasher.hash_one(("addr", network_of(addr))))
    }

    /// Callers tracked now.
    #[cfg(test)]
    fn callers(&self) -> usize {
        self.limiter.len()
    }
}

/// The client as the `hops`-th proxy from here saw it: that proxy appended the address it was
/// connected from, and everything to its left is the caller's to write. `None` without proxies,
/// or when the list is shorter (the request did not come through them).
fn forwarded_client(req: &Request, hops: usize) -> Option<IpAddr> {
    let hop = hops.checked_sub(1)?;
    req.headers()
        .get_all(X_FORWARDED_FOR)
        .iter()
        .rev()
        .flat_map(|value| value.to_str().unwrap_or_default().rsplit(','))
        .nth(hop)?
        .trim()
        .parse()
        .ok()
}

/// The address a caller is keyed by: an IPv4 address, or an IPv6 address's /64.
fn network_of(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// The buckets, at most `max_callers` of them: a shard that is full drops its callers whose
/// buckets have refilled (no different from a new caller's), then, when all are busy, an
/// eighth of them, so memory stays flat under any number of distinct callers. Hand-written:
/// governor's own stores keep every key until swept.
struct BoundedStore {
    shards: Box<[Mutex<HashMap<u64, u64, foldhash::fast::FixedState>>]>,
    per_shard: usize,
    /// How long a bucket takes to refill completely, plus one cell.
    refill: u64,
}

impl BoundedStore {
    fn new(max_callers: usize, quota: Quota) -> Self {
        let per_shard = max_callers.div_ceil(SHARDS).max(1);
        let refill = (quota.burst_size_replenished_in() + quota.replenish_interval()).as_nanos();
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard,
            refill: u64::try_from(refill).unwrap_or(u64::MAX),
        }
    }

    fn shard(&self, key: u64) -> &Mutex<HashMap<u64, u64, foldhash::fast::FixedState>> {
        // Keys are already hashes: their low bits spread evenly.
        &self.shards[key as usize % SHARDS]
    }
}

impl StateStore for BoundedStore {
    type Key = u64;

    fn measure_and_replace<T, F, E>(&self, key: &u64, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut shard = self
            .shard(*key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let previous = shard.get(key).copied().map(Nanos::new);
        let (outcome, next) = f(previous)?;
        if previous.is_none() && shard.len() >= self.per_shard {
            // A bucket's arrival time lies at most one refill ahead of now.
            let refilled_before = next.as_u64().saturating_sub(self.refill);
            shard.retain(|_, arrival| *arrival > refilled_before);
            let mut evict = shard
                .len()
                .saturating_sub(self.per_shard - self.per_shard / 8);
            shard.retain(|_, _| {
                let keep = evict == 0;
                evict = evict.saturating_sub(1);
                keep
            });
        }
        shard.insert(*key, next.as_u64());
        Ok(outcome)
    }
}

impl ShrinkableKeyedStateStore<u64> for BoundedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        for shard in &self.shards {
            shard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|_, arrival| *arrival > drop_below.as_u64());
        }
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn limits(vars: &[(&str, &str)]) -> RateLimits {
        let settings: Settings =
            Settings::load_from(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
        RateLimits::new(&settings.http).expect("on")
    }

    fn from(peer: &str, forwarded: &[&str]) -> Request {
        let mut req = Request::post("/mcp")
            .body(axum::body::Body::empty())
            .unwrap();
        for value in forwarded {
            req.headers_mut()
                .append(X_FORWARDED_FOR, HeaderValue::from_str(value).unwrap());
        }
        req.extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        req
    }

    #[tokio::test]
    async fn the_layer_refuses_a_caller_over_its_rate_and_serves_another() {
        use std::convert::Infallible;

        use axum::response::IntoResponse as _;
        use tower::{Layer as _, ServiceExt as _, service_fn};
        let inner = service_fn(|_req: Request| async {
            Ok::<_, Infallible>(StatusCode::ACCEPTED.into_response())
        });
        let limits = limits(&[
            ("APP__HTTP__RATE_LIMIT_PER_SECOND", "1"),
            ("APP__HTTP__RATE_LIMIT_BURST", "1"),
        ]);
        let service = crate::http::CheckLayer::new(limits).layer(inner);
        let call = |peer: &'static str| service.clone().oneshot(from(peer, &[]));
        assert_eq!(
            call("10.0.0.1:1").await.unwrap().status(),
            StatusCode::ACCEPTED
        );
        let refused = call("10.0.0.1:2").await.unwrap();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        for name in [header::RETRY_AFTER, RATE_LIMIT, RATE_LIMIT_POLICY] {
            assert!(refused.headers().contains_key(&name), "{name}");
        }
        assert_eq!(
            call("10.0.0.2:1").await.unwrap().status(),
            StatusCode::ACCEPTED
        );
    }

    #[test]
    fn a_million_distinct_callers_keep_the_table_at_its_bound() {
        let limits = limits(&[("APP__HTTP__RATE_LIMIT_MAX_CALLERS", "10000")]);
        for n in 0..1_000_000u32 {
            let peer = SocketAddr::new(IpAddr::from(n.to_be_bytes()), 1).to_string();
            assert!(
                limits.refusal(&from(&peer, &[]), None).is_none(),
                "a new caller's bucket is full"
            );
        }
        assert!(limits.callers() <= 10_000, "{} callers", limits.callers());
        // The table's memory, not only its count: its capacity stays within a small factor of the
        // bound, however many callers came.
        let store = limits.limiter.into_state_store();
        let capacity: usize = store
            .shards
            .iter()
            .map(|s| s.lock().unwrap().capacity())
            .sum();
        assert!(capacity <= 4 * 10_000, "capacity {capacity}");
    }

    #[test]
    fn one_caller_over_its_burst_is_refused_with_the_headers_while_another_is_served() {
        let limits = limits(&[
            ("APP__HTTP__RATE_LIMIT_PER_SECOND", "1"),
            ("APP__HTTP__RATE_LIMIT_BURST", "3"),
        ]);
        for _ in 0..3 {
            assert!(limits.refusal(&from("192.0.2.1:1000", &[]), None).is_none());
        }
        let refused = limits
            .refusal(&from("192.0.2.1:1001", &[]), None)
            .expect("over its burst");
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let headers = refused.headers();
        assert_eq!(headers[header::RETRY_AFTER], "1");
        assert_eq!(headers[RATE_LIMIT_POLICY], "\"caller\";q=3;w=3");
        assert_eq!(headers[RATE_LIMIT], "\"caller\";r=0;t=1");
        assert!(limits.refusal(&from("192.0.2.2:1000", &[]), None).is_none());
    }

    #[test]
    fn only_the_trusted_hop_of_x_forwarded_for_names_the_caller() {
        let limits = limits(&[
            ("APP__HTTP__RATE_LIMIT_PER_SECOND", "1"),
            ("APP__HTTP__RATE_LIMIT_BURST", "1"),
            ("APP__HTTP__TRUSTED_PROXY_HOPS", "1"),
        ]);
        let alb = "10.0.0.5:40000";
        assert!(
            limits
                .refusal(&from(alb, &["198.51.100.7"]), None)
                .is_none()
        );
        // Whatever the caller writes to the left, the ALB's entry is the last one.
        for spoofed in ["203.0.113.1, 198.51.100.7", "1.1.1.1", "2.2.2.2,3.3.3.3"] {
            let req = from(alb, &[spoofed, "198.51.100.7"]);
            assert!(limits.refusal(&req, None).is_some(), "{spoofed}");
        }
        // IPv6: one /64 is one caller.
        assert!(limits.refusal(&from(alb, &["2001:db8::1"]), None).is_none());
        assert!(limits.refusal(&from(alb, &["2001:db8::2"]), None).is_some());
        // Without the proxy's entry, the peer is the caller (its address, not the header).
        assert_eq!(
            forwarded_client(&from(alb, &[]), 1),
            None,
            "no entry: the peer"
        );
        assert_eq!(forwarded_client(&from(alb, &["198.51.100.7"]), 0), None);
    }
}

//! A warning for events that can come in floods (refusals under attack): one line a second at
//! most, saying how many events it stands for, so a flood cannot flood the log.

use std::{
    borrow::Cow,
    sync::atomic::{AtomicU64, Ordering},
    time::Instant,
};

#[derive(Debug)]
pub struct SampledLog {
    what: Cow<'static, str>,
    started: Instant,
    /// The second (since `started`) of the last line written.
    logged_second: AtomicU64,
    unlogged: AtomicU64,
}

impl SampledLog {
    /// `what`: the events, as the line names them ("rate limited requests").
    pub fn new(what: impl Into<Cow<'static, str>>) -> Self {
        Self {
            what: what.into(),
            started: Instant::now(),
            logged_second: AtomicU64::new(u64::MAX),
            unlogged: AtomicU64::new(0),
        }
    }

    /// One more event: a line when none was written this second.
    pub fn record(&self) {
        let second = self.started.elapsed().as_secs();
        if self.logged_second.swap(second, Ordering::Relaxed) == second {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let events = self.unlogged.swap(0, Ordering::Relaxed) + 1;
        tracing::warn!(
            events,
            "{} (one line a second at most: events counts those since the last line)",
            self.what
        );
    }
}

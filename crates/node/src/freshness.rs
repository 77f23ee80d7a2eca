//! How fresh a node's view of the log is, as a bounded quantity.
//!
//! The node confirms the log's end on its own schedule (every
//! `confirm_interval`, whether or not records arrive: see
//! [`crate::confirm_ends`]), taking the time *before* it asks, so every
//! record acknowledged before that instant is within the end the answer
//! gives. It keeps the confirmed ends its projection has not read yet.
//!
//! The node's **view** is the newest confirmed end its projection has read
//! (every record up to it applied, deduplicated, quarantined, or parked
//! waiting for a dependency the log does not hold yet), and the view's
//! **age** is how long ago that end was asked for: every record
//! acknowledged before `now - age` is reflected in the node's answers. The
//! node is **fresh** while the age is under `max_staleness`, so an answer a
//! fresh node gives reflects every revocation acknowledged more than
//! `max_staleness` before it — whatever happened in between: a link cut and
//! healed does not make a node fresh until it has read what it missed.
//! A node that is not fresh answers only what no record it may have missed
//! could change (see `Node::vouched`).
//!
//! Two more figures, for operators: how long ago the last end was confirmed
//! (the log answering at all), and how long the node has known of records
//! it has not read (the oldest confirmed end its projection does not cover).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_log::ConsistencyToken;

/// At most this many confirmed ends waiting to be read; past it, the newest
/// is replaced (keeping its older time), which can only make the view look
/// older than it is, never fresher.
const PENDING_MAX: usize = 4096;

/// A confirmed end of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmed {
    /// When the node asked for it.
    pub at: Instant,
    /// The same instant, as wall-clock milliseconds (for answers).
    pub at_unix_ms: i64,
    pub end: ConsistencyToken,
}

/// The node's view at an instant.
#[derive(Debug, Clone)]
pub struct View {
    /// The newest confirmed end the projection has read: what answers
    /// reflect.
    pub covered: Option<Confirmed>,
    /// Since that end was asked for (None: no confirmed end read yet).
    pub age: Option<Duration>,
    /// The last end confirmed, read or not.
    pub confirmed: Option<Confirmed>,
    /// Since the last end was confirmed (None: never).
    pub confirmed_age: Option<Duration>,
    /// How long the node has known of records it has not read.
    pub behind: Duration,
    pub fresh: bool,
}

/// The view as answers carry it.
#[derive(Debug, Clone)]
pub struct ViewEnd {
    pub at_unix_ms: i64,
    pub at: Instant,
    pub end: Arc<str>,
}

impl ViewEnd {
    /// Its age at `now`, in whole milliseconds.
    pub fn age_ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.at).as_millis()).unwrap_or(u64::MAX)
    }
}

#[derive(Debug)]
pub struct Freshness {
    max_staleness: Duration,
    state: Mutex<State>,
    /// The view as answers carry it: when its end was asked for (Unix ms
    /// and this process's clock) and the end's token; read on every answer,
    /// written when it moves.
    view: std::sync::RwLock<Option<ViewEnd>>,
    /// Until when the node is fresh if nothing else happens (nanoseconds
    /// after `base`; 0: not fresh), for the hot path: time passing alone
    /// turns it stale, with no one having to look.
    fresh_until: AtomicU64,
    base: Instant,
}

#[derive(Debug, Default)]
struct State {
    confirmed: Option<Confirmed>,
    covered: Option<Confirmed>,
    /// Confirmed ends not read yet, oldest first.
    pending: VecDeque<Confirmed>,
}

impl Freshness {
    pub fn new(max_staleness: Duration) -> Self {
        Freshness {
            max_staleness,
            state: Mutex::default(),
            view: std::sync::RwLock::new(None),
            fresh_until: AtomicU64::new(0),
            base: Instant::now(),
        }
    }

    pub fn max_staleness(&self) -> Duration {
        self.max_staleness
    }

    /// The log's end as asked for at `at` (`at_unix_ms` on the wall clock).
    /// It moves the view only once the projection has read it
    /// ([`Freshness::view`]).
    pub fn confirm(&self, at: Instant, at_unix_ms: i64, end: ConsistencyToken) {
        let confirmed = Confirmed {
            at,
            at_unix_ms,
            end,
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.pending.len() >= PENDING_MAX
            && let Some(newest) = state.pending.back_mut()
        {
            newest.end = confirmed.end.clone();
        } else {
            state.pending.push_back(confirmed.clone());
        }
        state.confirmed = Some(confirmed);
    }

    /// The view at `now` of a projection that has read up to `read`; it
    /// sets what [`Freshness::is_fresh`] answers until the next look.
    pub fn view(&self, read: &[u64], now: Instant) -> View {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut moved = false;
        // The log only grows: once an end is read, every earlier one is.
        while state
            .pending
            .front()
            .is_some_and(|pending| pending.end.is_covered_by(read))
        {
            state.covered = state.pending.pop_front();
            moved = true;
        }
        let since = |at: Instant| now.saturating_duration_since(at);
        let age = state.covered.as_ref().map(|c| since(c.at));
        let fresh = age.is_some_and(|age| age < self.max_staleness);
        let nanos = state
            .covered
            .as_ref()
            .and_then(|c| (c.at + self.max_staleness).checked_duration_since(self.base))
            .map_or(0, |after| {
                u64::try_from(after.as_nanos()).unwrap_or(u64::MAX).max(1)
            });
        self.fresh_until.store(nanos, Ordering::Release);
        if moved && let Some(covered) = &state.covered {
            *self.view.write().unwrap_or_else(|e| e.into_inner()) = Some(ViewEnd {
                at_unix_ms: covered.at_unix_ms,
                at: covered.at,
                end: Arc::from(covered.end.to_string()),
            });
        }
        View {
            covered: state.covered.clone(),
            age,
            confirmed: state.confirmed.clone(),
            confirmed_age: state.confirmed.as_ref().map(|c| since(c.at)),
            behind: state
                .pending
                .front()
                .map_or(Duration::ZERO, |p| since(p.at)),
            fresh,
        }
    }

    /// The view as answers carry it: when its end was asked for and the
    /// end as a consistency token.
    pub fn view_end(&self) -> Option<ViewEnd> {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the node is fresh at `now` as far as the last look knew
    /// (cheap: the hot path's first look). It may say "not fresh" when a
    /// new look would say fresh (read further since), never the reverse.
    pub fn is_fresh(&self, now: Instant) -> bool {
        let until = self.fresh_until.load(Ordering::Acquire);
        until != 0 && now.saturating_duration_since(self.base).as_nanos() < u128::from(until)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_secs(5);

    fn end(offsets: &[u64]) -> ConsistencyToken {
        ConsistencyToken::new(offsets.to_vec())
    }

    #[test]
    fn fresh_only_while_an_end_asked_for_within_the_bound_is_read() {
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        let freshness = Freshness::new(BOUND);
        // Never confirmed: not fresh, whatever is read.
        assert!(!freshness.view(&[0, 0], t0).fresh);
        assert!(!freshness.is_fresh(t0));
        // Confirmed, not read yet: not fresh (a node catching up).
        freshness.confirm(t0, 0, end(&[3, 1]));
        assert!(!freshness.view(&[2, 1], t0).fresh);
        // Read: fresh, and with nobody looking time alone ends it, at the
        // bound after the end was asked for.
        let view = freshness.view(&[3, 1], s(1));
        assert!(view.fresh && freshness.is_fresh(s(1)));
        assert_eq!(view.age, Some(Duration::from_secs(1)));
        assert_eq!(freshness.view_end().unwrap().end.as_ref(), "ct1.3-1");
        assert!(freshness.is_fresh(s(5) - Duration::from_millis(1)));
        assert!(!freshness.is_fresh(s(5)));
        // New records confirmed at 2 s and 6 s, not read: the view stays the
        // 0 s end, and ages past the bound however recent the confirmations.
        freshness.confirm(s(2), 2000, end(&[5, 1]));
        freshness.confirm(s(6), 6000, end(&[6, 1]));
        let view = freshness.view(&[3, 1], s(6));
        assert!(!view.fresh);
        assert_eq!(view.behind, Duration::from_secs(4));
        assert_eq!(view.confirmed_age, Some(Duration::ZERO));
        // Reading what was confirmed at 2 s: a view 4 s old at 6 s.
        let view = freshness.view(&[5, 1], s(6));
        assert!(view.fresh);
        assert_eq!(view.age, Some(Duration::from_secs(4)));
        assert!(!freshness.view(&[5, 1], s(7)).fresh);
        // Everything read, then no end confirmed (the log stopped
        // answering): fresh until the bound after the last one was asked.
        assert!(freshness.view(&[6, 1], s(10)).fresh);
        assert!(!freshness.view(&[6, 1], s(11)).fresh);
    }

    #[test]
    fn a_link_healed_after_a_gap_is_not_fresh_until_it_reads_what_it_missed() {
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        let freshness = Freshness::new(BOUND);
        freshness.confirm(t0, 0, end(&[1]));
        assert!(freshness.view(&[1], t0).fresh);
        // Cut for a minute (no confirmation); healed, the first end it
        // confirms holds what was written meanwhile. Confirmed but not read:
        // still not fresh, however recent the confirmation.
        freshness.confirm(s(60), 60_000, end(&[9]));
        let view = freshness.view(&[1], s(60));
        assert!(!view.fresh && !freshness.is_fresh(s(60)));
        assert_eq!(view.age, Some(Duration::from_secs(60)));
        assert!(freshness.view(&[9], s(61)).fresh);
    }

    #[test]
    fn a_full_queue_errs_on_the_side_of_an_older_view() {
        let t0 = Instant::now();
        let freshness = Freshness::new(BOUND);
        let total = PENDING_MAX as u64 + 10;
        for i in 0..total {
            freshness.confirm(t0 + Duration::from_millis(i), 0, end(&[i + 1]));
        }
        // The newest end kept the time of the entry it replaced: read, the
        // view is that old, never younger.
        let now = t0 + Duration::from_secs(1);
        let view = freshness.view(&[total], now);
        assert_eq!(
            view.covered.unwrap().at,
            t0 + Duration::from_millis(PENDING_MAX as u64 - 1)
        );
        assert_eq!(view.behind, Duration::ZERO);
    }
}

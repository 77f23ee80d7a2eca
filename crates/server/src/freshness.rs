//! How fresh a node's view of the log is, as a bounded quantity.
//!
//! The node confirms the log's end on its own schedule (every
//! `confirm_interval`, whether or not records arrive: see
//! [`crate::confirm_ends`]), and keeps each confirmed end its projection has
//! not applied yet. Two numbers follow:
//!
//! - the **confirmation age**: how long ago the last confirmed end was asked
//!   for (the time is taken *before* asking, so every record acknowledged
//!   before that instant is within the end the answer gave);
//! - **behind**: how long the node has known of records it has not applied
//!   — the age of the oldest confirmed end the projection does not cover.
//!
//! The node is **fresh** while both are within `max_staleness`. Then every
//! record acknowledged more than `max_staleness` + one confirmation interval
//! ago has been applied: it was within the first end confirmed after it was
//! acknowledged, and an end confirmed that long ago is applied, or the node
//! is not fresh. A node that is not fresh answers only what no record it may
//! have missed could change (see `Node::vouched`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_log::ConsistencyToken;

/// At most this many confirmed ends waiting to be applied; past it, the
/// newest is replaced (keeping its older time), which can only make the
/// node look further behind than it is, never fresher.
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
    /// The last end confirmed, if any since the node started.
    pub confirmed: Option<Confirmed>,
    /// Since the last end was confirmed (None: never).
    pub confirmed_age: Option<Duration>,
    /// How long the node has known of records it has not applied.
    pub behind: Duration,
    pub fresh: bool,
}

#[derive(Debug)]
pub struct Freshness {
    max_staleness: Duration,
    state: Mutex<State>,
    /// The last confirmed end as answers carry it: when (Unix ms) and the
    /// end's token; read on every answer, written once a confirmation.
    last: std::sync::RwLock<Option<(i64, Arc<str>)>>,
    /// Until when the node is fresh if nothing else happens (nanoseconds
    /// after `base`; 0: not fresh), for the hot path: time passing alone
    /// turns it stale, with no one having to look.
    fresh_until: AtomicU64,
    base: Instant,
}

#[derive(Debug, Default)]
struct State {
    confirmed: Option<Confirmed>,
    /// Confirmed ends not applied yet, oldest first.
    pending: VecDeque<(Instant, ConsistencyToken)>,
}

impl Freshness {
    pub fn new(max_staleness: Duration) -> Self {
        Freshness {
            max_staleness,
            state: Mutex::default(),
            last: std::sync::RwLock::new(None),
            fresh_until: AtomicU64::new(0),
            base: Instant::now(),
        }
    }

    pub fn max_staleness(&self) -> Duration {
        self.max_staleness
    }

    /// The log's end as asked for at `at` (`at_unix_ms` on the wall clock).
    pub fn confirm(&self, at: Instant, at_unix_ms: i64, end: ConsistencyToken) {
        *self.last.write().unwrap_or_else(|e| e.into_inner()) =
            Some((at_unix_ms, Arc::from(end.to_string())));
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.pending.len() >= PENDING_MAX
            && let Some(newest) = state.pending.back_mut()
        {
            newest.1 = end.clone();
        } else {
            state.pending.push_back((at, end.clone()));
        }
        state.confirmed = Some(Confirmed {
            at,
            at_unix_ms,
            end,
        });
        // Whether the new end is applied is for the next view to say;
        // meanwhile it counts as not applied (never fresher than it is).
        self.set_deadline(&state, None);
    }

    /// Records until when the node stays fresh given `state` (and, when
    /// known, `behind_since`: the oldest end not applied; None: the oldest
    /// pending one, applied or not).
    fn set_deadline(&self, state: &State, behind_since: Option<Option<Instant>>) {
        let oldest = behind_since.unwrap_or_else(|| state.pending.front().map(|(at, _)| *at));
        let deadline = state.confirmed.as_ref().map(|c| {
            let mut until = c.at + self.max_staleness;
            if let Some(oldest) = oldest {
                until = until.min(oldest + self.max_staleness);
            }
            until
        });
        let nanos = deadline
            .and_then(|until| until.checked_duration_since(self.base))
            .map_or(0, |after| {
                u64::try_from(after.as_nanos()).unwrap_or(u64::MAX).max(1)
            });
        self.fresh_until.store(nanos, Ordering::Release);
    }

    /// The view at `now` of a projection that has applied up to `applied`;
    /// its verdict is what [`Freshness::is_fresh`] answers until the next.
    pub fn view(&self, applied: &[u64], now: Instant) -> View {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state
            .pending
            .front()
            .is_some_and(|(_, end)| end.is_covered_by(applied))
        {
            state.pending.pop_front();
        }
        let behind = state
            .pending
            .front()
            .map_or(Duration::ZERO, |(at, _)| now.saturating_duration_since(*at));
        let confirmed_age = state
            .confirmed
            .as_ref()
            .map(|c| now.saturating_duration_since(c.at));
        let fresh = confirmed_age.is_some_and(|age| age < self.max_staleness)
            && behind < self.max_staleness;
        let oldest = state.pending.front().map(|(at, _)| *at);
        self.set_deadline(&state, Some(oldest));
        View {
            confirmed: state.confirmed.clone(),
            confirmed_age,
            behind,
            fresh,
        }
    }

    /// The last confirmed end, as answers carry it: when it was asked for
    /// (Unix ms) and the end as a consistency token.
    pub fn last_confirmed(&self) -> Option<(i64, Arc<str>)> {
        self.last.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the node is fresh at `now` as far as the last look knew
    /// (cheap: the hot path's first look). It may say "not fresh" when a
    /// new look would say fresh (records applied since), never the reverse.
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
    fn fresh_only_while_the_end_is_recent_and_what_it_held_long_ago_is_applied() {
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        let freshness = Freshness::new(BOUND);
        // Never confirmed: not fresh, whatever is applied.
        assert!(!freshness.view(&[0, 0], t0).fresh);
        assert!(!freshness.is_fresh(t0));
        // Confirmed and applied.
        freshness.confirm(t0, 0, end(&[3, 1]));
        let view = freshness.view(&[3, 1], s(1));
        assert!(view.fresh && freshness.is_fresh(s(1)));
        // With nobody looking, time alone ends it: at the bound after the
        // confirmation, not a moment later.
        assert!(freshness.is_fresh(s(5) - Duration::from_millis(1)));
        assert!(!freshness.is_fresh(s(5)));
        assert_eq!(view.behind, Duration::ZERO);
        // New records confirmed at 2 s, not applied: behind counts from 2 s,
        // still fresh within the bound, not past it.
        freshness.confirm(s(2), 2000, end(&[5, 1]));
        assert_eq!(freshness.view(&[3, 1], s(4)).behind, Duration::from_secs(2));
        freshness.confirm(s(6), 6000, end(&[6, 1]));
        assert!(freshness.view(&[3, 1], s(6)).fresh);
        assert!(!freshness.view(&[3, 1], s(7)).fresh);
        let view = freshness.view(&[3, 1], s(8));
        assert!(!view.fresh && !freshness.is_fresh(s(8)));
        assert_eq!(view.behind, Duration::from_secs(6));
        // Applying what was confirmed at 2 s leaves the 6 s end: fresh again.
        let view = freshness.view(&[5, 1], s(8));
        assert!(view.fresh);
        assert_eq!(view.behind, Duration::from_secs(2));
        // Everything applied, but no end confirmed for longer than the
        // bound (the log stopped answering): not fresh.
        assert!(freshness.view(&[6, 1], s(10)).fresh);
        let view = freshness.view(&[6, 1], s(12));
        assert!(!view.fresh);
        assert_eq!(view.confirmed_age, Some(Duration::from_secs(6)));
        assert_eq!(view.confirmed.unwrap().end, end(&[6, 1]));
    }

    #[test]
    fn a_full_queue_errs_on_the_side_of_behind() {
        let t0 = Instant::now();
        let freshness = Freshness::new(BOUND);
        for i in 0..(PENDING_MAX as u64 + 10) {
            freshness.confirm(t0 + Duration::from_millis(i), 0, end(&[i + 1]));
        }
        let now = t0 + Duration::from_secs(1);
        // Applying up to the newest end clears the queue at once.
        assert_eq!(
            freshness.view(&[PENDING_MAX as u64 + 10], now).behind,
            Duration::ZERO
        );
        for i in 0..(PENDING_MAX as u64 + 10) {
            freshness.confirm(t0 + Duration::from_millis(i), 0, end(&[i + 1]));
        }
        // Covering all but the last end kept leaves the newest end with the
        // older time of the entry it replaced: later, never earlier.
        let behind = freshness.view(&[PENDING_MAX as u64 + 9], now).behind;
        assert!(behind >= now - (t0 + Duration::from_millis(PENDING_MAX as u64 - 1)));
    }
}

//! A local cache of token answers kept current by `Watch`: a hit answers in
//! well under a microsecond with no network in the path, and a revocation
//! anywhere evicts what it revokes as soon as the node's feed delivers it.
//!
//! # The invalidation rule
//!
//! An active answer is cached with the revocation targets the node says its
//! status depends on (`CheckResponse.depends_on`: each link's token, holder
//! and performer, each signing key and the keys that bound it up to a trust
//! root, the subject). A revocation delivered by `Watch` evicts every entry
//! whose targets include it; no other revocation can change an active
//! answer. REVOKED and EXPIRED answers never change and are kept until the
//! LRU drops them; UNKNOWN is never cached (the token may be recorded a
//! moment later). Expiry and the audience a token is presented to are
//! judged locally, by the core's own rules.
//!
//! # No gap between an answer and the feed
//!
//! A miss asks the node for an answer reflecting at least the feed's
//! position P (everything up to P was delivered already), so the answer
//! covers every revocation before P; every revocation after P arrives on
//! the feed. One delivered while the answer was in flight is matched
//! against the answer's targets before it is cached (a bounded record of
//! recent revocations): on a match the node is asked again.
//!
//! # Fail closed
//!
//! The node sends a checkpoint at least every `checkpoint_interval` once it
//! has delivered every revocation it applied. When none has arrived within
//! `staleness` (the stream cut, the node gone, the feed behind a flood)
//! every answer is UNKNOWN with [`Source::Stale`], and the caller denies.
//! A node sends checkpoints only while its own view of the log is within its
//! `max_staleness`, and each says how old that view is (`view_age_ms`, by
//! the node's monotonic clock); with `max_view_age` set, the checker also
//! holds every answer, cached or fresh from the node, to that age, counted
//! from when the checkpoint or answer arrived (no wall clock compared).
//!
//! # Time
//!
//! Every freshness and expiry judgement reads [`CheckerConfig::clock`]
//! ([`SystemClock`] unless a test injects a [`ManualClock`]); the network
//! deadlines (`request_timeout`, the feed's silence) are tokio's.

use std::collections::{HashMap, HashSet, VecDeque};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use baton_core::{RevocationTarget, TokenRef};
use baton_log::ConsistencyToken;
use baton_proto::v1;

use crate::{Client, Error, Result};

/// How revocations delivered while an answer was in flight are remembered;
/// an answer that outlived more than this many is fetched again.
const RECENT_MAX: usize = 4096;
/// Fetches of one token before an ever-changing answer is given up on.
const ATTEMPTS: usize = 3;

/// What a [`Checker`] reads the time from.
pub trait Clock: std::fmt::Debug + Send + Sync {
    /// Now, for the freshness bounds.
    fn now(&self) -> Instant;
    /// Now in Unix seconds, for expiry.
    fn unix_s(&self) -> i64;
}

/// The process's clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn unix_s(&self) -> i64 {
        crate::events::now().0
    }
}

/// A clock that moves only when told (for tests): both readings start at
/// the process's and advance together.
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    start_unix_s: i64,
    advanced: Mutex<Duration>,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock {
            start: Instant::now(),
            start_unix_s: crate::events::now().0,
            advanced: Mutex::new(Duration::ZERO),
        }
    }
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        *self.advanced.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }

    fn advanced(&self) -> Duration {
        *self.advanced.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + self.advanced()
    }

    fn unix_s(&self) -> i64 {
        self.start_unix_s + self.advanced().as_secs() as i64
    }
}

/// A checker's bounds.
#[derive(Debug, Clone)]
pub struct CheckerConfig {
    /// Tokens kept (least recently used out first).
    pub capacity: usize,
    /// With no checkpoint for this long, answers are UNKNOWN.
    pub staleness: Duration,
    /// How often the node is asked to send checkpoints (100 ms to 60 s; at
    /// most half of `staleness`).
    pub checkpoint_interval: Duration,
    /// A miss's call to the node; past it the answer is UNKNOWN.
    pub request_timeout: Duration,
    /// When set, every answer is UNKNOWN ([`Source::Stale`]) unless it
    /// reflects the log as of at most this long ago: the node's view age on
    /// the latest checkpoint (cached answers) or on the answer (a miss),
    /// plus the time since it arrived (a miss: since it was asked). None:
    /// the node's own bound (`max_staleness`, 5 s by default) plus
    /// `staleness`. At least twice the checkpoint interval, and above the
    /// node's confirm interval (1 s by default), or a healthy node's answers
    /// look too old.
    pub max_view_age: Option<Duration>,
    /// What freshness and expiry are judged by.
    pub clock: Arc<dyn Clock>,
}

impl Default for CheckerConfig {
    fn default() -> Self {
        CheckerConfig {
            capacity: 10_000,
            staleness: Duration::from_secs(2),
            checkpoint_interval: Duration::from_millis(250),
            request_timeout: Duration::from_secs(2),
            max_view_age: None,
            clock: Arc::new(SystemClock),
        }
    }
}

impl CheckerConfig {
    fn validate(&self) -> Result<()> {
        let interval = self.checkpoint_interval.as_millis();
        if !(100..=60_000).contains(&interval) {
            return Err(Error::Config {
                field: "checkpoint_interval",
                reason: format!("{interval} ms is not in 100..=60000 ms"),
            });
        }
        if self.staleness < self.checkpoint_interval * 2 {
            return Err(Error::Config {
                field: "staleness",
                reason: format!(
                    "{:?} is less than twice the checkpoint interval ({:?}): a healthy feed would look stale",
                    self.staleness, self.checkpoint_interval
                ),
            });
        }
        if let Some(max) = self.max_view_age
            && max < self.checkpoint_interval * 2
        {
            return Err(Error::Config {
                field: "max_view_age",
                reason: format!(
                    "{max:?} is less than twice the checkpoint interval ({:?}): a healthy feed would look too old",
                    self.checkpoint_interval
                ),
            });
        }
        if self.capacity == 0 {
            return Err(Error::Config {
                field: "capacity",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

/// A token's status, as the node's `TokenStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Active,
    Revoked,
    Expired,
    Unknown,
    AudienceMismatch,
}

impl Status {
    /// As the node's wire status.
    pub fn to_wire(self) -> i32 {
        (match self {
            Status::Active => v1::TokenStatus::Active,
            Status::Revoked => v1::TokenStatus::Revoked,
            Status::Expired => v1::TokenStatus::Expired,
            Status::Unknown => v1::TokenStatus::Unknown,
            Status::AudienceMismatch => v1::TokenStatus::AudienceMismatch,
        }) as i32
    }

    /// The node's wire status.
    pub fn of_wire(status: i32) -> Status {
        match v1::TokenStatus::try_from(status) {
            Ok(v1::TokenStatus::Active) => Status::Active,
            Ok(v1::TokenStatus::Revoked) => Status::Revoked,
            Ok(v1::TokenStatus::Expired) => Status::Expired,
            Ok(v1::TokenStatus::AudienceMismatch) => Status::AudienceMismatch,
            Ok(v1::TokenStatus::Unknown | v1::TokenStatus::Unspecified) | Err(_) => Status::Unknown,
        }
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The cache, current to within the staleness bound.
    Cache,
    /// The node, just now (a miss).
    Node,
    /// UNKNOWN: no checkpoint within the staleness bound.
    Stale,
    /// UNKNOWN: the node did not answer (unreachable, timed out, an error).
    Unavailable,
}

/// What the ledger knows of a token (for an answer the node gave details
/// with).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    pub token: TokenRef,
    pub expires_at_s: i64,
    pub audience: String,
    /// Its event's id (32 bytes).
    pub event_id: Vec<u8>,
    /// Scopes, tools, holder, subject, issuer and the chain, root first.
    pub details: Option<v1::TokenDetails>,
}

/// A checker's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: Status,
    pub source: Source,
    /// Set when the ledger knows the token.
    pub token: Option<Arc<TokenInfo>>,
}

impl Answer {
    fn unknown(source: Source) -> Answer {
        Answer {
            status: Status::Unknown,
            source,
            token: None,
        }
    }

    /// Only ACTIVE allows.
    pub fn allows(&self) -> bool {
        self.status == Status::Active
    }
}

/// Counters, for operators and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub entries: usize,
    pub hits: u64,
    pub misses: u64,
    /// Entries evicted by a delivered revocation.
    pub invalidations: u64,
    /// Revocations delivered by the feed.
    pub revocations: u64,
    pub checkpoints: u64,
    /// The feed's position (a consistency token): every revocation the node
    /// applied before it has been delivered.
    pub position: String,
}

#[derive(Debug)]
enum Entry {
    /// Kept while none of `depends_on` is revoked.
    Active {
        info: Arc<TokenInfo>,
        depends_on: Vec<RevocationTarget>,
    },
    /// REVOKED or EXPIRED: never changes.
    Settled {
        status: Status,
        info: Option<Arc<TokenInfo>>,
    },
}

#[derive(Debug)]
struct State {
    entries: lru::LruCache<TokenRef, Entry>,
    /// Target -> the active entries depending on it.
    index: HashMap<RevocationTarget, HashSet<TokenRef>>,
    /// Recent revocations, by delivery sequence number.
    recent: VecDeque<(u64, RevocationTarget)>,
    sequence: u64,
    fresh_at: Option<Instant>,
    /// When (by the checker's clock) the view of the latest checkpoint was
    /// confirmed: its arrival less its view age. None: no checkpoint said.
    view_at: Option<Instant>,
    /// Covers every delivered revocation's record: what a miss is asked at.
    covered: ConsistencyToken,
    stats: Stats,
}

impl State {
    fn fresh(&self, config: &CheckerConfig) -> bool {
        let now = config.clock.now();
        let within = |at: Instant, bound: Duration| now.saturating_duration_since(at) <= bound;
        self.fresh_at.is_some_and(|at| within(at, config.staleness))
            && config
                .max_view_age
                .is_none_or(|max| self.view_at.is_some_and(|at| within(at, max)))
    }

    /// Drops every entry: what happened cannot be read, so it could
    /// concern any of them.
    fn clear(&mut self) {
        self.entries.clear();
        self.index.clear();
        self.sequence += 1;
        self.recent.clear();
    }

    fn unindex(&mut self, key: &TokenRef, entry: &Entry) {
        if let Entry::Active { depends_on, .. } = entry {
            for target in depends_on {
                if let Some(keys) = self.index.get_mut(target) {
                    keys.remove(key);
                    if keys.is_empty() {
                        self.index.remove(target);
                    }
                }
            }
        }
    }

    fn insert(&mut self, key: TokenRef, entry: Entry) {
        if matches!(entry, Entry::Active { .. })
            && matches!(self.entries.peek(&key), Some(Entry::Settled { .. }))
        {
            // REVOKED and EXPIRED never go back: an older ACTIVE that raced
            // a newer answer in loses.
            return;
        }
        if let Some(old) = self.entries.pop(&key) {
            self.unindex(&key, &old);
        }
        if let Entry::Active { depends_on, .. } = &entry {
            for target in depends_on {
                self.index
                    .entry(target.clone())
                    .or_default()
                    .insert(key.clone());
            }
        }
        // The least recently used entry falls out when full.
        if let Some((old_key, old)) = self.entries.push(key, entry) {
            self.unindex(&old_key, &old);
        }
    }

    fn revoked(&mut self, target: RevocationTarget) {
        self.sequence += 1;
        self.stats.revocations += 1;
        if let Some(keys) = self.index.remove(&target) {
            for key in keys {
                if let Some(entry) = self.entries.pop(&key) {
                    self.unindex(&key, &entry);
                    self.stats.invalidations += 1;
                }
            }
        }
        self.recent.push_back((self.sequence, target));
        if self.recent.len() > RECENT_MAX {
            self.recent.pop_front();
        }
    }

    /// Whether a revocation delivered after `since` may concern `targets`
    /// (true too when the record of them no longer reaches back that far).
    fn revoked_since(&self, since: u64, targets: &[RevocationTarget]) -> bool {
        if since == self.sequence {
            return false;
        }
        if self
            .recent
            .front()
            .is_none_or(|(first, _)| *first > since + 1)
        {
            return true;
        }
        self.recent
            .iter()
            .filter(|(seq, _)| *seq > since)
            .any(|(_, target)| targets.contains(target))
    }
}

/// The status an entry gives now, presented to `presented_to`.
fn judge(
    entry: &Entry,
    presented_to: Option<&str>,
    now_s: i64,
) -> (Status, Option<Arc<TokenInfo>>) {
    match entry {
        Entry::Active { info, .. } => {
            let status = if baton_core::expired(info.expires_at_s, now_s) {
                Status::Expired
            } else if baton_core::presented_elsewhere(&info.audience, presented_to) {
                Status::AudienceMismatch
            } else {
                Status::Active
            };
            (status, Some(info.clone()))
        }
        Entry::Settled { status, info } => (*status, info.clone()),
    }
}

#[derive(Debug)]
struct Shared {
    config: CheckerConfig,
    state: Mutex<State>,
    /// Ticks on every delivered message (tests and benchmarks wait on it).
    delivered: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave an entry half made
        // (each mutation is whole); keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes one Watch message in. An error (a position no consistency
    /// token can hold: a broken node) leaves the cache as it was and the
    /// feed is reopened: what the message revoked is not known covered.
    fn deliver(&self, message: v1::WatchResponse) -> std::result::Result<(), baton_log::Error> {
        let mut state = self.lock();
        let position = message.position.map(|at| {
            let mut covered = state.covered.clone();
            covered
                .include(baton_log::Position {
                    partition: at.partition,
                    offset: at.offset,
                })
                .map(|()| covered)
        });
        let position = match position.transpose() {
            Ok(position) => position,
            Err(e) => {
                state.clear();
                return Err(e);
            }
        };
        let target = match (message.revoked, message.revocation_event_id.is_empty()) {
            (Some(revoked), _) => Some(baton_proto::revocation_target(revoked.target)),
            (None, false) => Some(Err(baton_core::Error::invalid(
                "revoked",
                "a revocation message without its revocation",
            ))),
            (None, true) => None,
        };
        match target {
            Some(Ok(target)) => state.revoked(target),
            Some(Err(e)) => {
                // A revocation this cache cannot read could revoke any
                // entry: drop them all.
                tracing::warn!(error = %e, "an unreadable revocation on the feed: cache cleared");
                state.clear();
            }
            None => {}
        }
        // What a miss must be answered at: every record a revocation came
        // from (the resume token stays on a batch record until its last
        // revocation is sent).
        if let Some(covered) = position {
            state.covered = covered;
        }
        if !message.resume_token.is_empty() {
            if let Ok(resume) = ConsistencyToken::parse(&message.resume_token) {
                state.covered.merge(&resume);
            }
            state.stats.position = message.resume_token;
        }
        if let Some(checkpoint) = message.checkpoint {
            let now = self.config.clock.now();
            state.fresh_at = Some(now);
            state.view_at = checkpoint
                .view_age_ms
                .and_then(|age| now.checked_sub(Duration::from_millis(age)));
            state.stats.checkpoints += 1;
        }
        drop(state);
        self.delivered.send_modify(|n| *n += 1);
        Ok(())
    }
}

/// Aborts the feed when the last checker handle goes.
#[derive(Debug)]
struct Feed(tokio::task::JoinHandle<()>);

impl Drop for Feed {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A Watch-fed cache of token answers (cheap to clone; the feed stops when
/// the last clone is dropped). Its node connection must be a checker not
/// bound to audiences: `Watch` streams every revocation.
#[derive(Debug, Clone)]
pub struct Checker {
    shared: Arc<Shared>,
    client: Client,
    _feed: Arc<Feed>,
}

impl Checker {
    /// Starts the feed from the node's current position and waits (up to
    /// the staleness bound) for its first checkpoint.
    pub async fn start(client: Client, config: CheckerConfig) -> Result<Checker> {
        config.validate()?;
        let capacity = NonZeroUsize::new(config.capacity).unwrap_or(NonZeroUsize::MIN);
        // The node's position now: this cache holds nothing older.
        let probe = v1::CheckRequest {
            token: Some(baton_proto::token_ref_to_wire(&TokenRef::jti(
                "probe",
                "baton-checker-position",
            )?)),
            ..Default::default()
        };
        let position = client
            .revocation()
            .check(probe)
            .await?
            .into_inner()
            .consistency_token;
        let staleness = config.staleness;
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(State {
                entries: lru::LruCache::new(capacity),
                index: HashMap::new(),
                recent: VecDeque::new(),
                sequence: 0,
                fresh_at: None,
                view_at: None,
                covered: ConsistencyToken::parse(&position).unwrap_or_default(),
                stats: Stats {
                    position,
                    ..Default::default()
                },
            }),
            delivered: tokio::sync::watch::channel(0).0,
        });
        let mut delivered = shared.delivered.subscribe();
        let feed = tokio::spawn(feed(shared.clone(), client.clone()));
        let checker = Checker {
            shared,
            client,
            _feed: Arc::new(Feed(feed)),
        };
        let fresh = tokio::time::timeout(staleness, async {
            while !checker.is_fresh() {
                if delivered.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        if fresh.is_err() || !checker.is_fresh() {
            return Err(Error::Answer(format!(
                "no Watch checkpoint within {staleness:?}"
            )));
        }
        Ok(checker)
    }

    /// Whether a checkpoint arrived within the staleness bound (and its
    /// view is within `max_view_age`, when set).
    pub fn is_fresh(&self) -> bool {
        self.shared.lock().fresh(&self.shared.config)
    }

    pub fn stats(&self) -> Stats {
        let state = self.shared.lock();
        Stats {
            entries: state.entries.len(),
            ..state.stats.clone()
        }
    }

    /// A receiver that changes on every message the feed delivers.
    pub fn deliveries(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.delivered.subscribe()
    }

    /// The cached answer, if any (no network): UNKNOWN when the feed is
    /// stale, None on a miss. The hot path of [`Checker::check`].
    pub fn cached(&self, token: &TokenRef, presented_to: Option<&str>) -> Option<Answer> {
        let now_s = self.shared.config.clock.unix_s();
        let mut state = self.shared.lock();
        if !state.fresh(&self.shared.config) {
            return Some(Answer::unknown(Source::Stale));
        }
        let (status, token) = judge(state.entries.get(token)?, presented_to, now_s);
        state.stats.hits += 1;
        Some(Answer {
            status,
            source: Source::Cache,
            token,
        })
    }

    /// The token's status presented to `presented_to` (this server's
    /// resource URI): from the cache, else from the node (and cached).
    pub async fn check(&self, token: &TokenRef, presented_to: Option<&str>) -> Answer {
        if let Some(answer) = self.cached(token, presented_to) {
            return answer;
        }
        let request = v1::IntrospectRequest {
            token: Some(baton_proto::token_ref_to_wire(token)),
            ..Default::default()
        };
        self.fetch(token.clone(), request, presented_to).await
    }

    /// [`Checker::check`] of a bearer token exactly as presented: cached by
    /// its digest (the token itself is never kept); a miss sends it to the
    /// node, which may know it by its digest or, for a JWT that verifies,
    /// by its `jti`.
    pub async fn check_bearer(&self, bearer: &[u8], presented_to: Option<&str>) -> Answer {
        let key = baton_core::token_digest(bearer);
        if let Some(answer) = self.cached(&key, presented_to) {
            return answer;
        }
        let request = v1::IntrospectRequest {
            bearer: bearer.to_vec(),
            ..Default::default()
        };
        self.fetch(key, request, presented_to).await
    }

    async fn fetch(
        &self,
        key: TokenRef,
        mut request: v1::IntrospectRequest,
        presented_to: Option<&str>,
    ) -> Answer {
        let config = &self.shared.config;
        request.with_dependencies = true;
        for _ in 0..ATTEMPTS {
            let since = {
                let mut state = self.shared.lock();
                if !state.fresh(config) {
                    return Answer::unknown(Source::Stale);
                }
                state.stats.misses += 1;
                request.consistency_token = state.covered.to_string();
                state.sequence
            };
            let mut revocation = self.client.revocation();
            let asked = config.clock.now();
            let call = revocation.introspect(request.clone());
            let response = match tokio::time::timeout(config.request_timeout, call).await {
                Ok(Ok(response)) => response.into_inner(),
                Ok(Err(status)) => {
                    tracing::debug!(error = %crate::status_text(&status), "check: the node refused");
                    return Answer::unknown(Source::Unavailable);
                }
                Err(_) => return Answer::unknown(Source::Unavailable),
            };
            // Its view's age now is at most its age when the node answered
            // plus the time since it was asked.
            if let Some(max) = config.max_view_age {
                let age = response
                    .check
                    .as_ref()
                    .and_then(|check| check.view_age_ms)
                    .map(|age| {
                        Duration::from_millis(age)
                            + config.clock.now().saturating_duration_since(asked)
                    });
                if age.is_none_or(|age| age > max) {
                    return Answer::unknown(Source::Stale);
                }
            }
            let Some(entry) = entry_of(&key, response) else {
                return Answer::unknown(Source::Node);
            };
            let mut state = self.shared.lock();
            if let Entry::Active { depends_on, .. } = &entry
                && state.revoked_since(since, depends_on)
            {
                // Something it depends on may have been revoked after the
                // node answered: ask again (the feed's position now covers
                // that revocation).
                continue;
            }
            let (status, token) = judge(&entry, presented_to, config.clock.unix_s());
            match entry {
                Entry::Settled {
                    status: Status::Unknown,
                    ..
                } => {}
                entry => state.insert(key, entry),
            }
            return Answer {
                status,
                source: Source::Node,
                token,
            };
        }
        Answer::unknown(Source::Unavailable)
    }
}

/// What to keep of a node's answer (None: an answer that cannot be used).
/// UNKNOWN comes back as a settled entry the caller does not cache.
fn entry_of(key: &TokenRef, response: v1::IntrospectResponse) -> Option<Entry> {
    let check = response.check?;
    let status = Status::of_wire(check.status);
    let info = (check.expires_at_unix_s != 0).then(|| {
        Arc::new(TokenInfo {
            token: key.clone(),
            expires_at_s: check.expires_at_unix_s,
            audience: check.audience.clone(),
            event_id: check.event_id.clone(),
            details: response.details,
        })
    });
    match status {
        Status::Active => {
            let depends_on = check
                .depends_on
                .into_iter()
                .map(RevocationTarget::try_from)
                .collect::<Result<Vec<_>, _>>()
                .ok()?;
            // An active answer with nothing to watch could never be
            // invalidated: not kept, not trusted.
            if depends_on.is_empty() {
                return None;
            }
            Some(Entry::Active {
                info: info?,
                depends_on,
            })
        }
        Status::Revoked | Status::Expired => Some(Entry::Settled { status, info }),
        // Not asked with an audience, the node does not answer a mismatch.
        Status::Unknown | Status::AudienceMismatch => Some(Entry::Settled {
            status: Status::Unknown,
            info: None,
        }),
    }
}

/// The feed: Watch from the last position, for ever; a stream silent past
/// the staleness bound is dropped and opened again from where it stopped.
async fn feed(shared: Arc<Shared>, client: Client) {
    let interval_ms = shared.config.checkpoint_interval.as_millis() as u32;
    let silence = shared.config.staleness;
    let mut backoff = Duration::from_millis(50);
    loop {
        let request = v1::WatchRequest {
            resume_token: shared.lock().stats.position.clone(),
            checkpoint_interval_ms: interval_ms,
        };
        match client.revocation().watch(request).await {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                loop {
                    match tokio::time::timeout(silence, stream.message()).await {
                        Ok(Ok(Some(message))) => {
                            if let Err(e) = shared.deliver(message) {
                                tracing::warn!(error = %e, "a Watch message no cache can take: cache cleared, reopening");
                                break;
                            }
                            // Only a message taken in resets the backoff: one
                            // that cannot be taken comes again on every reopening.
                            backoff = Duration::from_millis(50);
                        }
                        Ok(Ok(None)) => break,
                        Ok(Err(status)) => {
                            tracing::debug!(error = %crate::status_text(&status), "watch ended");
                            break;
                        }
                        Err(_) => {
                            tracing::debug!("watch silent past the staleness bound: reopening");
                            break;
                        }
                    }
                }
            }
            Err(status) => {
                tracing::debug!(error = %crate::status_text(&status), "watch refused");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn shared(capacity: usize) -> Shared {
        Shared {
            config: CheckerConfig {
                capacity,
                ..CheckerConfig::default()
            },
            state: Mutex::new(State {
                entries: lru::LruCache::new(NonZeroUsize::new(capacity).unwrap()),
                index: HashMap::new(),
                recent: VecDeque::new(),
                sequence: 0,
                fresh_at: Some(Instant::now()),
                view_at: None,
                covered: ConsistencyToken::default(),
                stats: Stats::default(),
            }),
            delivered: tokio::sync::watch::channel(0).0,
        }
    }

    fn token(jti: &str) -> TokenRef {
        TokenRef::jti("t", jti).unwrap()
    }

    fn subject(s: &str) -> RevocationTarget {
        RevocationTarget::Subject(baton_core::Subject::new("s", s).unwrap())
    }

    fn active(jti: &str, depends_on: Vec<RevocationTarget>) -> Entry {
        Entry::Active {
            info: Arc::new(TokenInfo {
                token: token(jti),
                expires_at_s: i64::MAX,
                audience: "https://a".into(),
                event_id: Vec::new(),
                details: None,
            }),
            depends_on,
        }
    }

    fn revocation_of(target: &RevocationTarget) -> v1::WatchResponse {
        let wire = v1::Revoked::from(&baton_core::Revoked {
            target: target.clone(),
            reason: String::new(),
            revoked_by: None,
            requested_by: None,
        });
        v1::WatchResponse {
            revocation_event_id: vec![1; 32],
            revoked: Some(wire),
            position: Some(v1::LogPosition {
                partition: 1,
                offset: 7,
            }),
            resume_token: "ct1.-7".into(),
            checkpoint: None,
        }
    }

    #[test]
    fn a_settled_answer_is_never_replaced_by_an_older_active_one() {
        let shared = shared(8);
        let mut state = shared.lock();
        state.insert(
            token("a"),
            Entry::Settled {
                status: Status::Revoked,
                info: None,
            },
        );
        state.insert(token("a"), active("a", vec![subject("u")]));
        assert!(matches!(
            state.entries.peek(&token("a")),
            Some(Entry::Settled { .. })
        ));
        assert!(
            state.index.is_empty(),
            "nothing indexed for a refused entry"
        );
    }

    #[test]
    fn eviction_and_revocation_keep_the_index_exact() {
        let shared = shared(2);
        {
            let mut state = shared.lock();
            state.insert(token("a"), active("a", vec![subject("u"), subject("v")]));
            state.insert(token("b"), active("b", vec![subject("v")]));
            // The LRU drops "a": its index links go with it.
            state.insert(token("c"), active("c", vec![subject("w")]));
            assert!(state.entries.peek(&token("a")).is_none());
            assert!(!state.index.contains_key(&subject("u")));
            assert_eq!(state.index[&subject("v")].len(), 1);
        }
        shared.deliver(revocation_of(&subject("v"))).unwrap();
        let state = shared.lock();
        assert!(state.entries.peek(&token("b")).is_none());
        assert!(state.entries.peek(&token("c")).is_some());
        assert_eq!(state.stats.invalidations, 1);
        assert!(!state.index.contains_key(&subject("v")));
        // A miss is now asked at the revocation's record, not before it.
        assert_eq!(state.covered.next_offsets(), &[0, 8]);
    }

    #[test]
    fn a_revocation_that_cannot_be_read_clears_the_cache() {
        let shared = shared(4);
        shared
            .lock()
            .insert(token("a"), active("a", vec![subject("u")]));
        let mut unreadable = revocation_of(&subject("zzz"));
        unreadable.revoked = None;
        shared.deliver(unreadable).unwrap();
        let state = shared.lock();
        assert_eq!(state.entries.len(), 0);
        assert!(state.index.is_empty());
        // And an answer in flight meanwhile is asked again.
        assert!(state.revoked_since(0, &[subject("u")]));
    }

    /// A position no consistency token can hold (a broken node's) costs no
    /// memory and does not wrap: the message is refused, the cache
    /// cleared, and the feed (reopened by its loop) is not moved on.
    #[test]
    fn a_position_no_token_can_hold_is_refused_and_clears_the_cache() {
        let shared = shared(8);
        for (partition, offset) in [(4096, 0), (u32::MAX, 0), (0, u64::MAX)] {
            shared
                .lock()
                .insert(token("a"), active("a", vec![subject("u")]));
            let mut message = revocation_of(&subject("unrelated"));
            message.position = Some(v1::LogPosition { partition, offset });
            assert!(shared.deliver(message).is_err(), "{partition} {offset}");
            let state = shared.lock();
            assert!(state.entries.is_empty() && state.index.is_empty());
            assert_eq!(state.covered, ConsistencyToken::default());
        }
    }

    /// A parsed target as `proto/testvectors/sdk/targets.json` writes it.
    fn as_vector(target: &RevocationTarget) -> serde_json::Value {
        use serde_json::json;
        match target {
            RevocationTarget::Token(TokenRef::Jti(jti)) => json!({"kind": "jti", "value": jti}),
            RevocationTarget::Token(TokenRef::Digest(d)) => {
                json!({"kind": "digest", "hex": hex::encode(d)})
            }
            RevocationTarget::Client(c) => json!({"kind": "client_id", "value": c.as_str()}),
            RevocationTarget::Subject(s) => json!({"kind": "subject", "value": s.as_str()}),
            RevocationTarget::Key(k) => json!({"kind": "key_id", "hex": hex::encode(k.as_bytes())}),
        }
    }

    fn wire<M: prost::Message + Default>(hex_text: &serde_json::Value) -> M {
        M::decode(hex::decode(hex_text.as_str().unwrap()).unwrap().as_slice()).unwrap()
    }

    /// An ACTIVE answer for `jti` depending on `depends_on`, through the
    /// path a miss takes (`entry_of`): None when it is not kept.
    fn answered(jti: &str, depends_on: Vec<v1::RevocationTarget>) -> Option<Entry> {
        let check = v1::CheckResponse {
            status: v1::TokenStatus::Active as i32,
            expires_at_unix_s: i64::MAX,
            audience: "https://a".into(),
            depends_on,
            ..Default::default()
        };
        let response = v1::IntrospectResponse {
            check: Some(check),
            details: None,
        };
        entry_of(&token(jti), response)
    }

    /// The Rust half of the shared vectors (the Python SDK runs the same
    /// file): targets are read parsed, and a Watch message evicts exactly
    /// the answers depending on its target, whatever the bytes.
    #[test]
    fn revocation_targets_match_the_shared_vectors() {
        let path = repo_file("proto/testvectors/sdk/targets.json");
        let vectors: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut checked = 0;
        for case in vectors["targets"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let target: v1::RevocationTarget = wire(&case["wire_hex"]);
            let parsed = RevocationTarget::try_from(target.clone()).ok();
            assert_eq!(
                parsed.as_ref().map(as_vector),
                (!case["parsed"].is_null()).then(|| case["parsed"].clone()),
                "{name}"
            );
            // An answer depending on a target that cannot be read is not
            // kept: nothing could evict it.
            assert_eq!(
                answered("t", vec![target]).is_some(),
                parsed.is_some(),
                "{name}"
            );
            checked += 1;
        }
        for case in vectors["evictions"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            let shared = shared(8);
            let entry = answered("t", vec![wire(&case["depends_on_hex"])]).unwrap();
            let bystander = answered("b", vec![(&subject("bystander")).into()]).unwrap();
            {
                let mut state = shared.lock();
                state.insert(token("t"), entry);
                state.insert(token("b"), bystander);
            }
            shared
                .deliver(v1::WatchResponse {
                    revocation_event_id: vec![1; 32],
                    revoked: Some(wire(&case["revoked_hex"])),
                    ..Default::default()
                })
                .unwrap();
            let state = shared.lock();
            let kept = (
                state.entries.contains(&token("t")),
                state.entries.contains(&token("b")),
            );
            let expected = match case["evicts"].as_str().unwrap() {
                "entry" => (false, true),
                "none" => (true, true),
                "all" => (false, false),
                other => panic!("{name}: evicts {other:?}"),
            };
            assert_eq!(kept, expected, "{name}: (entry kept, bystander kept)");
            checked += 1;
        }
        assert!(checked >= 30, "{checked} vectors");
    }

    fn repo_file(relative: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(relative)
    }
}

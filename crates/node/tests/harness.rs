//! The node driven in process, without a socket or a wire type: the
//! embedded log in a temporary directory, events signed by the test-only
//! fixture, every answer a domain type. A delegation chain is appended,
//! checked, watched, revoked at its root (the cascade reaches the leaf),
//! appended again (one event, one position), refused where the rules and
//! bounds say, and the node's state and snapshot read back.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use baton_core::{Envelope, Event, RevocationTarget, Rule, TokenStatus};
use baton_log::EmbeddedLog;
use baton_node::{
    AppendOptions, CheckQuery, Error, IntrospectQuery, Node, NodeOptions, Presented, Verdict, Walk,
    WatchItem, WatchRequest,
};
use baton_testkit::Fixture;
use tokio::time::{Instant, timeout};

const WAIT: Duration = Duration::from_secs(10);

fn opened(envelopes: &[Envelope]) -> Vec<(Envelope, Event)> {
    envelopes
        .iter()
        .map(|envelope| baton_proto::open(baton_proto::v1::SignedEvent::from(envelope)).unwrap())
        .collect()
}

fn deadline() -> Instant {
    Instant::now() + WAIT
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_in_process_appends_checks_watches_and_cascades_a_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let now = baton_node::now_s();
    let (mut fixture, registrations) = Fixture::standard(now);
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    let started = Node::start(
        NodeOptions::new(fixture.policy(), dir.path().join("projection")),
        log,
    )
    .await
    .unwrap();
    let node = started.node.clone();
    // An empty log: caught up and fresh at once.
    let mut serving = started.serving.clone();
    timeout(WAIT, serving.wait_for(|serving| *serving))
        .await
        .unwrap()
        .unwrap();

    // Registrations, then a chain root -> hop -> leaf in one batch.
    let registered = node
        .append(opened(&registrations), AppendOptions::default(), deadline())
        .await
        .unwrap();
    assert_eq!(registered.events.len(), registrations.len());
    assert!(registered.events.iter().all(|e| !e.duplicate));
    let chain = vec![
        fixture.issue("as", "root", "user:alice", "agent", 3600),
        fixture.narrow("root", "hop", "agent", "gateway", &["files:write"], 60),
        fixture.narrow("hop", "leaf", "gateway", "server-a", &["repo:write"], 60),
    ];
    let appended = node
        .append(opened(&chain), AppendOptions::default(), deadline())
        .await
        .unwrap();
    assert!(appended.events.iter().all(|e| !e.duplicate));
    // One record: every event of the batch at one position, which the
    // answer's token covers.
    let at = appended.events[0].position.unwrap();
    assert!(appended.events.iter().all(|e| e.position == Some(at)));
    assert!(
        baton_log::ConsistencyToken::covering([at])
            .unwrap()
            .is_covered_by(appended.token.next_offsets())
    );

    // ACCEPTED means applied: the leaf is active now, with the revocation
    // targets its status depends on (its chain's tokens among them).
    let leaf = Fixture::token("leaf");
    let answer = node
        .check(&CheckQuery {
            with_dependencies: true,
            consistency_token: appended.token.to_string(),
            ..CheckQuery::of(leaf.clone())
        })
        .await
        .unwrap();
    assert_eq!(answer.verdict, Verdict::Active);
    assert_eq!(answer.record.as_ref().unwrap().depth, 2);
    for jti in ["root", "hop", "leaf"] {
        assert!(
            answer
                .depends_on
                .contains(&RevocationTarget::Token(Fixture::token(jti))),
            "{jti}: {:?}",
            answer.depends_on
        );
    }
    // Introspection by reference walks the chain, root first; a caller
    // the token is not addressed to learns the verdict only.
    let unbound = node
        .introspect(
            None,
            IntrospectQuery::of(Presented::Ref(leaf.clone())),
            Walk::Chain,
        )
        .await
        .unwrap();
    assert_eq!(unbound.check.verdict, Verdict::Active);
    assert!(unbound.details.is_none() && unbound.check.record.is_none());

    // The same batch again: one event, one position; every copy DUPLICATE.
    let again = node
        .append(opened(&chain), AppendOptions::default(), deadline())
        .await
        .unwrap();
    assert!(
        again
            .events
            .iter()
            .all(|e| e.duplicate && e.position == Some(at))
    );

    // A watch from the start, then the root revoked: the stream delivers
    // it, and the cascade reaches the leaf two hops down.
    let mut feed = node
        .watch(WatchRequest::default(), Box::new(|| Ok::<(), Error>(())))
        .await
        .unwrap();
    let revocation = fixture.revoke(RevocationTarget::Token(Fixture::token("root")));
    let revoked = node
        .append(
            opened(std::slice::from_ref(&revocation)),
            AppendOptions::default(),
            deadline(),
        )
        .await
        .unwrap();
    let entry = timeout(WAIT, feed.recv()).await.unwrap().unwrap().unwrap();
    let WatchItem::Revocation { id, position, .. } = entry else {
        panic!("a checkpoint before the revocation: {entry:?}");
    };
    assert_eq!(id, revocation.id());
    assert_eq!(Some(position), revoked.events[0].position);
    let answer = node
        .check(&CheckQuery {
            consistency_token: revoked.token.to_string(),
            ..CheckQuery::of(leaf.clone())
        })
        .await
        .unwrap();
    assert_eq!(answer.verdict, Verdict::Revoked);
    let (cause, body) = answer.cause.unwrap();
    assert_eq!(cause.revocation, revocation.id());
    assert_eq!(cause.hit.distance, 2);
    assert!(body.is_some());
    let status = node.handle.check(&leaf, None, baton_node::now_s()).unwrap();
    assert!(matches!(status.status, TokenStatus::Revoked(_)));

    // Refusals name the rule or the bound, and append nothing: a hop under
    // the revoked root, an empty batch.
    let under_revoked = fixture.narrow("leaf", "late", "server-a", "server-b", &["files:read"], 60);
    match node
        .append(
            opened(&[under_revoked]),
            AppendOptions::default(),
            deadline(),
        )
        .await
    {
        Err(Error::Refused { index, refusal }) => {
            assert_eq!(index, Some(0));
            assert_eq!(refusal.rule, Rule::Revoked);
        }
        other => panic!("a hop under a revoked root: {other:?}"),
    }
    match node
        .append(Vec::new(), AppendOptions::default(), deadline())
        .await
    {
        Err(Error::Limit { field, .. }) => assert_eq!(field, "events"),
        other => panic!("an empty batch: {other:?}"),
    }

    // Where the node stands: every event applied once, the digest settled.
    let state = node.state(true).await.unwrap();
    let events = (registrations.len() + chain.len() + 1) as u64;
    assert_eq!((state.applied, state.duplicates), (events, 0));
    assert!(state.ready);
    let (_, settled) = state.digest.unwrap();
    assert!(settled);
    // A snapshot while another is being taken is refused; the first one's
    // spool is removed once it is dropped.
    let slot = node.snapshot_slot(true).unwrap();
    assert!(matches!(
        node.snapshot_slot(true),
        Err(Error::Unavailable(_))
    ));
    let snapshot = node.snapshot(slot).await.unwrap();
    let spool = snapshot.spool.path().to_owned();
    assert!(spool.exists() && snapshot.info.entries > 0);
    drop(snapshot);
    assert!(!spool.exists());
    node.snapshot_slot(true).unwrap();

    drop(feed);
    drop(node);
    started.finish().await.unwrap();
}

/// A node that starts behind the log answers nothing before it has read
/// the log as it was when it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_wait_for_the_log_as_it_was_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (fixture, registrations) = Fixture::standard(baton_node::now_s());
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    {
        // A log that already holds events when the node starts.
        let started = Node::start(
            NodeOptions::new(fixture.policy(), dir.path().join("first")),
            log.clone(),
        )
        .await
        .unwrap();
        started
            .node
            .append(opened(&registrations), AppendOptions::default(), deadline())
            .await
            .unwrap();
        started.finish().await.unwrap();
    }
    // A second node over the same log, with an empty projection: the first
    // answer it gives already reflects the log as it was when it started.
    let started = Node::start(
        NodeOptions::new(fixture.policy(), dir.path().join("second")),
        log,
    )
    .await
    .unwrap();
    let node = Arc::clone(&started.node);
    node.consistent("").await.unwrap();
    assert_eq!(
        node.state(false).await.unwrap().applied,
        registrations.len() as u64
    );
    // And it serves once the catch-up has said so.
    let mut serving = started.serving.clone();
    timeout(WAIT, serving.wait_for(|serving| *serving))
        .await
        .unwrap()
        .unwrap();
    assert!(node.caught_up());
    drop(node);
    started.finish().await.unwrap();
}

/// Records what the node observes.
#[derive(Debug, Default)]
struct Recorded(std::sync::Mutex<Vec<(&'static str, &'static str, usize)>>);

impl baton_node::Observe for Recorded {
    fn appended(&self, outcome: &'static str, rule: &'static str, events: usize) {
        self.0.lock().unwrap().push((outcome, rule, events));
    }
}

/// A batch whose events do not open (as a malformed wire batch).
struct Unopenable(usize);

impl baton_node::Batch for Unopenable {
    fn len(&self) -> usize {
        self.0
    }

    fn open(self) -> baton_node::Result<Vec<(Envelope, Event)>> {
        Err(Error::Invalid {
            index: Some(1),
            source: baton_core::Error::invalid("signature", "is 3 bytes, not 64"),
        })
    }
}

/// Every Append's outcome is counted, a batch refused whole included: over
/// the bound before anything opens, an event that does not open, a rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_append_outcome_is_observed_refusals_of_the_whole_batch_too() {
    let dir = tempfile::tempdir().unwrap();
    let (mut fixture, registrations) = Fixture::standard(baton_node::now_s());
    let recorded = Arc::new(Recorded::default());
    let mut options = NodeOptions::new(fixture.policy(), dir.path().join("projection"));
    options.limits.batch_events_max = 8;
    options.observe = Some(recorded.clone());
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    let started = Node::start(options, log).await.unwrap();
    let node = started.node.clone();
    node.append(opened(&registrations), AppendOptions::default(), deadline())
        .await
        .unwrap();
    let over = node
        .append(Unopenable(9), AppendOptions::default(), deadline())
        .await;
    assert!(
        matches!(
            over,
            Err(Error::Limit {
                field: "events",
                ..
            })
        ),
        "{over:?}"
    );
    let unopened = node
        .append(Unopenable(2), AppendOptions::default(), deadline())
        .await;
    assert!(
        matches!(unopened, Err(Error::Invalid { index: Some(1), .. })),
        "{unopened:?}"
    );
    // A hop whose parent the ledger never received.
    let _never_appended = fixture.issue("as", "ghost", "user:alice", "agent", 3600);
    let orphan = fixture.narrow("ghost", "orphan", "agent", "gateway", &["files:write"], 60);
    let refused = node
        .append(opened(&[orphan]), AppendOptions::default(), deadline())
        .await;
    assert!(matches!(refused, Err(Error::Refused { .. })), "{refused:?}");
    let seen = recorded.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("accepted", "", registrations.len()),
            ("duplicate", "", 0),
            ("rejected", "limit", 9),
            ("rejected", "invalid", 2),
            ("rejected", "unknown-parent", 1),
        ]
    );
    drop(node);
    started.finish().await.unwrap();
}

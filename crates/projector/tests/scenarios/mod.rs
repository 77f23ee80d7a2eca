//! Projector scenarios shared by the embedded-log and the Kafka tests: the
//! revocation cascade seen by two projectors, deduplication, and forgeries
//! written straight into the log.

#![allow(clippy::unwrap_used, dead_code)]

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use baton_core::{
    Body, Envelope, EventId, Name, RevocationTarget, ScopeNarrowed, SigningKey, TokenRef,
    TokenStatus, Via,
};
use baton_log::{ConsistencyToken, EventLog, Record};
use baton_projector::{Handle, Projector, ProjectorOptions};
use baton_testkit::Fixture;
use tokio::sync::oneshot;

pub const NOW_S: i64 = 1_800_000_000;
const WAIT: Duration = Duration::from_secs(30);

/// A running projector; stopped when dropped.
pub struct Running {
    pub handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<baton_projector::Result<()>>>,
}

impl Running {
    pub fn start<L: EventLog>(log: L, dir: &Path, fixture: &Fixture) -> Running {
        Running::start_with_grace(log, dir, fixture, Duration::from_millis(300))
    }

    pub fn start_with_grace<L: EventLog>(
        log: L,
        dir: &Path,
        fixture: &Fixture,
        grace: Duration,
    ) -> Running {
        Running::start_with_policy(log, dir, fixture.policy(), grace)
    }

    pub fn start_with_policy<L: EventLog>(
        log: L,
        dir: &Path,
        policy: baton_core::Policy,
        grace: Duration,
    ) -> Running {
        let mut options = ProjectorOptions::new(policy);
        options.park_grace = grace;
        Running::start_with_options(log, dir, options)
    }

    /// Starts with `options` (reads waiting at most 50 ms for new records).
    pub fn start_with_options<L: EventLog>(
        log: L,
        dir: &Path,
        mut options: ProjectorOptions,
    ) -> Running {
        options.idle_wait = Duration::from_millis(50);
        let projector = when_released(|| Projector::open(log.clone(), dir, options.clone()));
        let handle = projector.handle();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(projector.run(async move {
            let _ = stopped.await;
        }));
        Running {
            handle,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

/// Opens a sled database (through `open`) that this process may have just
/// closed. sled releases its file lock asynchronously: its I/O threads drop
/// their handle on the database after they report completion, so an
/// in-process reopen right after a projector stops can briefly find it
/// locked. (Node restarts are process restarts, where this cannot happen.)
pub fn when_released<T>(open: impl Fn() -> baton_projector::Result<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match open() {
            Err(baton_projector::Error::Store(sled::Error::Io(e)))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other.unwrap(),
        }
    }
}

/// Waits until `condition` holds, checking it again whenever the projector
/// publishes progress (every batch that changes its state does), up to WAIT.
pub async fn eventually(h: &Handle, what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut progress = h.subscribe_applied();
    loop {
        progress.mark_unchanged();
        if condition() {
            return;
        }
        let reasons: Vec<String> = h
            .quarantined(100)
            .unwrap()
            .into_iter()
            .map(|q| q.reason)
            .collect();
        match tokio::time::timeout_at(deadline, progress.changed()).await {
            Ok(Ok(())) => {}
            _ => panic!("not reached within {WAIT:?}: {what}; quarantined so far: {reasons:#?}"),
        }
    }
}

/// Waits until `condition` holds, checking it every 20 ms, up to WAIT: for
/// what does not publish progress (a record parked holds `applied` back).
pub async fn polled(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not reached within {WAIT:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The partition key of an event: its tree's root, or `control`.
pub fn partition_key(fixture: &Fixture, envelope: &Envelope) -> Vec<u8> {
    let (_, event) = baton_proto::decode_signed(&baton_proto::encode_signed(envelope)).unwrap();
    match (&event.body, event.tree_root(envelope.id())) {
        (_, Some(root)) => root.0.to_vec(),
        (Body::Revoked(r), None) => match &r.target {
            RevocationTarget::Token(TokenRef::Jti(jti)) => fixture.root_of(jti).0.to_vec(),
            _ => b"control".to_vec(),
        },
        _ => b"control".to_vec(),
    }
}

/// Appends events in order (as one batch), returning the token covering them.
pub async fn append<L: EventLog>(
    log: &L,
    fixture: &Fixture,
    events: &[Envelope],
) -> ConsistencyToken {
    let records = events
        .iter()
        .map(|e| Record {
            key: partition_key(fixture, e),
            value: baton_proto::encode_signed(e),
        })
        .collect();
    let positions = log.append(records).await.into_iter().map(|r| r.unwrap());
    ConsistencyToken::covering(positions).unwrap()
}

pub fn status(handle: &Handle, jti: &str) -> TokenStatus {
    handle
        .check(&Fixture::token(jti), None, NOW_S + 1)
        .unwrap()
        .status
}

pub fn revoked_via(handle: &Handle, jti: &str) -> (u32, Via) {
    match status(handle, jti) {
        TokenStatus::Revoked(cause) => (cause.hit.distance, cause.hit.via),
        other => panic!("{jti} should be revoked, is {other:?}"),
    }
}

pub fn is_active(handle: &Handle, jti: &str) -> bool {
    matches!(status(handle, jti), TokenStatus::Active { .. })
}

/// The standard setup and a 5-hop chain t0..t4 with a sibling branch s1 off t0.
pub fn chain_events() -> (Fixture, Vec<Envelope>) {
    let (mut f, mut events) = Fixture::standard(NOW_S);
    events.push(f.issue("as", "t0", "user:alice", "agent", 3600));
    events.push(f.narrow("t0", "t1", "agent", "gateway", &["repo:write"], 60));
    events.push(f.narrow("t1", "t2", "gateway", "server-a", &["files:write"], 60));
    events.push(f.narrow(
        "t2",
        "t3",
        "server-a",
        "server-b",
        &["github/delete_repo"],
        60,
    ));
    events.push(f.narrow("t3", "t4", "server-b", "server-a", &[], 60));
    events.push(f.narrow("t0", "s1", "agent", "server-b", &["files:write"], 60));
    (f, events)
}

/// Revoking hop 2 of 5 cascades to hops 2–5 and spares hop 1 and a sibling,
/// as seen by two projectors of the same log; then a client, then a subject.
pub async fn cascade<L: EventLog>(log: L, dir: &Path) {
    let (mut f, events) = chain_events();
    let a = Running::start(log.clone(), &dir.join("a"), &f);
    let b = Running::start(log.clone(), &dir.join("b"), &f);
    let token = append(&log, &f, &events).await;
    let revoke = f.revoke(RevocationTarget::Token(Fixture::token("t1")));
    let mut token2 = append(&log, &f, &[revoke]).await;
    token2.merge(&token);
    for projector in [&a, &b] {
        let h = &projector.handle;
        h.wait_for(&token2, WAIT).await.unwrap();
        assert!(is_active(h, "t0"), "hop 1 stays active");
        assert!(is_active(h, "s1"), "the sibling branch stays active");
        assert_eq!(revoked_via(h, "t1"), (0, Via::Token));
        assert_eq!(revoked_via(h, "t2"), (1, Via::Token));
        assert_eq!(revoked_via(h, "t3"), (2, Via::Token));
        assert_eq!(revoked_via(h, "t4"), (3, Via::Token));
    }
    assert_eq!(
        a.handle.state_digest().unwrap(),
        b.handle.state_digest().unwrap()
    );

    // Revoking a client revokes what it holds or performed, and their subtrees.
    let revoke = f.revoke(RevocationTarget::Client(Fixture::client_id("server-b")));
    let token3 = append(&log, &f, &[revoke]).await;
    for projector in [&a, &b] {
        let h = &projector.handle;
        h.wait_for(&token3, WAIT).await.unwrap();
        assert_eq!(revoked_via(h, "s1"), (0, Via::Holder));
        assert!(is_active(h, "t0"));
    }
    // Revoking the subject revokes every chain rooted at it.
    let revoke = f.revoke(RevocationTarget::Subject(Fixture::subject("user:alice")));
    let token4 = append(&log, &f, &[revoke]).await;
    for projector in [&a, &b] {
        let h = &projector.handle;
        h.wait_for(&token4, WAIT).await.unwrap();
        assert_eq!(revoked_via(h, "t0"), (0, Via::Subject));
        assert_eq!(h.counter("quarantined").unwrap(), 0);
    }
    // Revoking the authorization server's key distrusts what it signed (t0)
    // and what keys it bound sign (the agent's hop t1 — already revoked as a
    // token — and so on). Checks made before must not be answered from a
    // stale trust cache.
    let as_key = f.client("as").key.key_id();
    let revoke = f.revoke(RevocationTarget::Key(as_key));
    let token5 = append(&log, &f, &[revoke]).await;
    for projector in [&a, &b] {
        let h = &projector.handle;
        h.wait_for(&token5, WAIT).await.unwrap();
        assert_eq!(revoked_via(h, "t0"), (0, Via::SigningKey));
        match status(h, "s1") {
            // s1 is held by the revoked server-b (a holder hit comes first).
            TokenStatus::Revoked(cause) => assert_eq!(cause.hit.via, Via::Holder),
            other => panic!("s1 is {other:?}"),
        }
    }
    assert_eq!(
        a.handle.state_digest().unwrap(),
        b.handle.state_digest().unwrap()
    );
    a.stop().await;
    b.stop().await;
}

#[allow(clippy::too_many_arguments)]
fn hop_body(
    f: &Fixture,
    parent: &str,
    depth: u32,
    jti: &str,
    performer: &str,
    holder: &str,
    scopes: &[&str],
    tools: &[&str],
    expires_at_s: i64,
) -> Body {
    let names = |v: &[&str]| v.iter().map(|s| Name::new("t", s).unwrap()).collect();
    Body::ScopeNarrowed(ScopeNarrowed {
        token: Fixture::token(jti),
        parent: f.event_of(parent),
        root: f.root_of(parent),
        depth,
        performed_by: Fixture::client_id(performer),
        on_behalf_of: Fixture::subject("user:alice"),
        holder: Fixture::client_id(holder),
        audience: format!("https://{holder}.example/mcp"),
        scopes: names(scopes),
        tools: names(tools),
        issued_at_s: NOW_S,
        expires_at_s,
        transaction_id: None,
    })
}

/// Forged records written straight into the log are quarantined or
/// deduplicated and change no answer. `raw` writes (key, value) records
/// bypassing every Baton check.
pub async fn forgeries<L, W, Fut>(log: L, dir: &Path, raw: W)
where
    L: EventLog,
    W: Fn(Vec<(Vec<u8>, Vec<u8>)>) -> Fut,
    Fut: Future<Output = ()>,
{
    let (mut f, events) = chain_events();
    let projector = Running::start(log.clone(), &dir.join("forgery"), &f);
    let h = &projector.handle;
    // Revoke server-a's key legitimately first: forgeries will use it.
    let server_a_key = f.client("server-a").key.clone();
    let revoke_key = f.revoke(RevocationTarget::Key(server_a_key.key_id()));
    let mut token = append(&log, &f, &events).await;
    token.merge(&append(&log, &f, &[revoke_key]).await);
    h.wait_for(&token, WAIT).await.unwrap();
    let jtis = ["t0", "t1", "t2", "t3", "t4", "s1"];
    let before: Vec<TokenStatus> = jtis.iter().map(|j| status(h, j)).collect();
    let applied_before = h.counter("applied").unwrap();

    let gateway = f.client("gateway").key.clone();
    let t1_exp = NOW_S + 3600 - 60;
    let mut forged: Vec<(&str, Envelope)> = Vec::new();
    // Bad signature: a valid hop by the gateway with one signature bit flipped.
    let good = f.seal_with(
        &gateway,
        hop_body(
            &f,
            "t1",
            2,
            "f-badsig",
            "gateway",
            "server-c",
            &["files:read"],
            &["fs/read"],
            NOW_S + 100,
        ),
    );
    let mut wire = baton_proto::v1::SignedEvent::from(&good);
    wire.signature[10] ^= 1;
    let bad_sig = baton_proto::open(wire).unwrap().0;
    forged.push(("bad signature", bad_sig));
    // Unknown key: a key nobody registered.
    let stranger = SigningKey::generate();
    forged.push((
        "unknown key",
        f.seal_with(
            &stranger,
            hop_body(
                &f,
                "t1",
                2,
                "f-unknown",
                "gateway",
                "server-c",
                &["files:read"],
                &[],
                NOW_S + 100,
            ),
        ),
    ));
    // Revoked key: server-a signs a hop of t2, which it holds. Well-founded, so
    // it is applied (whether a projector sees it before or after the key's
    // revocation depends on partition interleaving, and verdicts must not),
    // but the key's revocation makes it REVOKED on every projector.
    let revoked_key_forgery = f.seal_with(
        &server_a_key,
        hop_body(
            &f,
            "t2",
            3,
            "f-revoked",
            "server-a",
            "server-c",
            &["files:read"],
            &[],
            NOW_S + 100,
        ),
    );
    // Broken parent link: a parent id that is no event.
    let mut broken = hop_body(
        &f,
        "t1",
        2,
        "f-orphan",
        "gateway",
        "server-c",
        &["files:read"],
        &[],
        NOW_S + 100,
    );
    if let Body::ScopeNarrowed(hop) = &mut broken {
        hop.parent = EventId([0xab; 32]);
    }
    forged.push(("broken parent", f.seal_with(&gateway, broken)));
    // Widened scope: t1 dropped repo:write; the gateway adds it back.
    forged.push((
        "widened scope",
        f.seal_with(
            &gateway,
            hop_body(
                &f,
                "t1",
                2,
                "f-wide",
                "gateway",
                "server-c",
                &["repo:write"],
                &[],
                NOW_S + 100,
            ),
        ),
    ));
    // Extended expiry: later than t1's.
    forged.push((
        "extended expiry",
        f.seal_with(
            &gateway,
            hop_body(
                &f,
                "t1",
                2,
                "f-late",
                "gateway",
                "server-c",
                &["files:read"],
                &[],
                t1_exp + 1,
            ),
        ),
    ));
    let forged_count = forged.len() as u64;
    // Replay: an existing event, byte for byte.
    let replay = events.last().unwrap().clone();

    let mut records: Vec<(Vec<u8>, Vec<u8>)> = forged
        .iter()
        .map(|(_, e)| (f.root_of("t0").0.to_vec(), baton_proto::encode_signed(e)))
        .collect();
    records.push((
        f.root_of("t0").0.to_vec(),
        baton_proto::encode_signed(&revoked_key_forgery),
    ));
    // The revoked key binds itself a fresh key (a rotation it may sign), and
    // the fresh key signs a hop: untrusted, because the binding was signed by
    // the revoked key.
    let fresh = SigningKey::generate();
    let rotation = f.seal_with(
        &server_a_key,
        Body::KeysRotated(baton_core::KeysRotated {
            client: Fixture::client_id("server-a"),
            add: vec![fresh.public_key()],
            add_proofs: vec![fresh.prove_possession(&Fixture::client_id("server-a"))],
            retire: vec![],
        }),
    );
    let laundered = f.seal_with(
        &fresh,
        hop_body(
            &f,
            "t2",
            3,
            "f-laundered",
            "server-a",
            "server-c",
            &["files:read"],
            &[],
            NOW_S + 100,
        ),
    );
    records.push((b"control".to_vec(), baton_proto::encode_signed(&rotation)));
    records.push((
        f.root_of("t0").0.to_vec(),
        baton_proto::encode_signed(&laundered),
    ));
    records.push((
        f.root_of("t0").0.to_vec(),
        baton_proto::encode_signed(&replay),
    ));
    // A copy of a stored event with a broken signature: a forgery, not a replay.
    let mut bad_copy = baton_proto::v1::SignedEvent::from(&replay);
    bad_copy.signature[5] ^= 1;
    records.push((
        f.root_of("t0").0.to_vec(),
        prost::Message::encode_to_vec(&bad_copy),
    ));
    // And bytes that are no event at all.
    records.push((b"control".to_vec(), b"\x0a\x03not an event".to_vec()));
    raw(records).await;

    eventually(h, "every forgery handled", || {
        h.counter("quarantined").unwrap() >= forged_count + 2
            && h.counter("duplicates").unwrap() >= 1
    })
    .await;
    let reasons: Vec<String> = h
        .quarantined(100)
        .unwrap()
        .into_iter()
        .map(|q| q.reason)
        .collect();
    assert_eq!(reasons.len() as u64, forged_count + 2, "{reasons:#?}");
    for needle in [
        "signature",
        "not a trust root or a registered key",
        "still missing",
        "not held by parent",
        "later than parent",
        "undecodable",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(needle)),
            "no quarantine reason mentions {needle:?}: {reasons:#?}"
        );
    }
    // Each quarantine names its rule, and the counts by rule are the records.
    let mut by_rule = std::collections::BTreeMap::<String, u64>::new();
    for q in h.quarantined(100).unwrap() {
        *by_rule.entry(q.rule).or_default() += 1;
    }
    assert!(
        by_rule.contains_key("signature") && by_rule.contains_key("undecodable"),
        "{by_rule:?}"
    );
    assert!(
        !by_rule.contains_key(""),
        "a quarantine without a rule: {by_rule:?}"
    );
    let counted: std::collections::BTreeMap<String, u64> = h
        .labelled_counter("quarantined")
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(counted, by_rule);
    let after: Vec<TokenStatus> = jtis.iter().map(|j| status(h, j)).collect();
    assert_eq!(before, after, "a forgery changed an answer");
    for jti in ["f-badsig", "f-unknown", "f-orphan", "f-wide", "f-late"] {
        assert_eq!(status(h, jti), TokenStatus::Unknown, "{jti}");
    }
    // The revoked-key hop is the one forgery applied, and it is revoked.
    // Applied (well-founded, order-independent), and all revoked via the key.
    eventually(h, "the revoked-key events applied", || {
        h.counter("applied").unwrap() >= applied_before + 3
    })
    .await;
    assert_eq!(h.counter("applied").unwrap(), applied_before + 3);
    assert_eq!(revoked_via(h, "f-revoked"), (0, Via::SigningKey));
    match status(h, "f-laundered") {
        TokenStatus::Revoked(cause) => {
            assert_eq!((cause.hit.distance, cause.hit.via), (0, Via::SigningKey));
            assert_eq!(cause.target, RevocationTarget::Key(server_a_key.key_id()));
        }
        other => panic!("a hop signed by a key the revoked key bound is {other:?}"),
    }
    projector.stop().await;
}

/// The same event appended twice is applied once.
pub async fn duplicates<L: EventLog>(log: L, dir: &Path) {
    let (f, events) = chain_events();
    let projector = Running::start(log.clone(), &dir.join("dup"), &f);
    let mut token = append(&log, &f, &events).await;
    token.merge(&append(&log, &f, &events).await);
    projector.handle.wait_for(&token, WAIT).await.unwrap();
    assert_eq!(
        projector.handle.counter("applied").unwrap(),
        events.len() as u64
    );
    assert_eq!(
        projector.handle.counter("duplicates").unwrap(),
        events.len() as u64
    );
    projector.stop().await;
}

/// Chain, descendants, history and the revocation feed answer from the projection.
pub async fn queries<L: EventLog>(log: L, dir: &Path) {
    let (mut f, events) = chain_events();
    let projector = Running::start(log.clone(), &dir.join("queries"), &f);
    let h = &projector.handle;
    let revoke = f.revoke(RevocationTarget::Token(Fixture::token("t2")));
    let mut token = append(&log, &f, &events).await;
    token.merge(&append(&log, &f, std::slice::from_ref(&revoke)).await);
    h.wait_for(&token, WAIT).await.unwrap();

    // The chain of t4: root → leaf, with every registration it depends on, and
    // it verifies offline against the trust root alone.
    let chain = h.chain(&Fixture::token("t4")).unwrap().unwrap();
    let tokens: Vec<String> = chain
        .events
        .iter()
        .filter_map(|(_, e)| match &e.body {
            Body::TokenIssued(t) => Some(t.token.to_string()),
            Body::ScopeNarrowed(n) => Some(n.token.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(tokens, ["jti:t0", "jti:t1", "jti:t2", "jti:t3", "jti:t4"]);
    let verified = baton_core::verify_chain(f.policy(), &chain.events, NOW_S + 1).unwrap();
    assert_eq!(verified.leaf().token, Fixture::token("t4"));
    assert!(h.chain(&Fixture::token("nope")).unwrap().is_none());

    // The blast radius of t1: t2, t3, t4 (not the sibling s1); bounded by the limit.
    let below: Vec<String> = h
        .descendants(&Fixture::token("t1"), 100)
        .unwrap()
        .iter()
        .map(|r| r.token.to_string())
        .collect();
    assert_eq!(below, ["jti:t2", "jti:t3", "jti:t4"]);
    assert_eq!(h.descendants(&Fixture::token("t0"), 2).unwrap().len(), 2);

    // History by kind, client, subject and time, paged.
    let by_kind = baton_projector::EventFilter {
        kind: Some(baton_core::EventKind::ScopeNarrowed),
        ..Default::default()
    };
    assert_eq!(h.list_events(&by_kind, None, 100).unwrap().len(), 5);
    let page = h.list_events(&by_kind, None, 2).unwrap();
    let rest = h.list_events(&by_kind, Some(&page[1].cursor), 100).unwrap();
    assert_eq!(page.len() + rest.len(), 5);
    assert!(
        rest.iter()
            .all(|e| page.iter().all(|p| p.envelope.id() != e.envelope.id()))
    );
    let by_client = baton_projector::EventFilter {
        client: Some(Fixture::client_id("server-b")),
        ..Default::default()
    };
    // server-b: its registration, t3 (holder), t4 (performer), s1 (holder).
    assert_eq!(h.list_events(&by_client, None, 100).unwrap().len(), 4);
    let by_subject = baton_projector::EventFilter {
        subject: Some(Fixture::subject("user:alice")),
        ..Default::default()
    };
    assert_eq!(h.list_events(&by_subject, None, 100).unwrap().len(), 6);
    let everything = h.list_events(&Default::default(), None, 1000).unwrap();
    assert_eq!(everything.len(), events.len() + 1);
    let middle = everything[everything.len() / 2].event.created_at_ms;
    let since = baton_projector::EventFilter {
        since_ms: Some(middle),
        ..Default::default()
    };
    let later = h.list_events(&since, None, 1000).unwrap();
    assert!(!later.is_empty() && later.len() < everything.len());
    assert!(later.iter().all(|e| e.event.created_at_ms >= middle));

    // The revocation feed, from the start and resumed past its end.
    let feed = h.revocations_since(&[], 100).unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0].revocation, revoke.id());
    assert_eq!(
        feed[0].target,
        RevocationTarget::Token(Fixture::token("t2"))
    );
    let mut after = vec![0; h.applied().len()];
    after[feed[0].position.partition as usize] = feed[0].position.offset + 1;
    assert!(h.revocations_since(&after, 100).unwrap().is_empty());
    projector.stop().await;
}

/// A record that arrives before its dependency is parked, and the settled
/// offsets (what consistency tokens and Watch go by) stop before it until it
/// is applied.
pub async fn parked_records_hold_the_settled_offset<L: EventLog>(log: L, dir: &Path) {
    let (mut f, setup) = Fixture::standard(NOW_S);
    // A grace far longer than the test, so the child can only be applied.
    let projector = Running::start_with_grace(
        log.clone(),
        &dir.join("parked"),
        &f,
        Duration::from_secs(600),
    );
    let h = &projector.handle;
    let token = append(&log, &f, &setup).await;
    h.wait_for(&token, WAIT).await.unwrap();
    let parent = f.issue("as", "p0", "user:alice", "agent", 3600);
    let child = f.narrow("p0", "p1", "agent", "gateway", &[], 60);
    // The child first (written straight to the log, as a reordering would).
    let early = append(&log, &f, std::slice::from_ref(&child)).await;
    let refused = h.wait_for(&early, Duration::from_millis(150)).await;
    assert!(
        matches!(refused, Err(baton_projector::Error::NotYet { .. })),
        "the parked child was counted as settled: {refused:?}"
    );
    assert_eq!(status(h, "p1"), TokenStatus::Unknown);
    let mut late = append(&log, &f, std::slice::from_ref(&parent)).await;
    late.merge(&early);
    h.wait_for(&late, WAIT).await.unwrap();
    assert!(is_active(h, "p0") && is_active(h, "p1"));
    assert_eq!(h.counter("quarantined").unwrap(), 0);
    projector.stop().await;
}

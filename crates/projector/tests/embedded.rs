//! Projector scenarios on the embedded log.

#![allow(clippy::unwrap_used)]

mod scenarios;

use baton_log::{EmbeddedLog, EventLog, Record};
use baton_testkit::Fixture;

const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascade_on_the_embedded_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    scenarios::cascade(log, dir.path()).await;
}

/// A revocation still holds once the projection is reopened: what the
/// in-memory filter of revoked targets says "never revoked" is read from
/// the store as it was, so a reopened node cannot answer ACTIVE for a token
/// under a revocation it applied before it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_holds_after_the_projection_is_reopened() {
    use baton_core::{RevocationTarget, TokenStatus};

    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    let (mut f, mut events) = scenarios::chain_events();
    events.push(f.revoke(RevocationTarget::Token(Fixture::token("t1"))));
    let token = scenarios::append(&log, &f, &events).await;
    let node = dir.path().join("node");
    let first = scenarios::Running::start(log.clone(), &node, &f);
    first.handle.wait_for(&token, WAIT).await.unwrap();
    assert_eq!(scenarios::revoked_via(&first.handle, "t4").0, 3);
    assert!(scenarios::is_active(&first.handle, "s1"));
    first.stop().await;

    let reopened = scenarios::Running::start(log.clone(), &node, &f);
    reopened.handle.wait_for(&token, WAIT).await.unwrap();
    for jti in ["t1", "t2", "t3", "t4"] {
        assert!(
            matches!(
                scenarios::status(&reopened.handle, jti),
                TokenStatus::Revoked(_)
            ),
            "{jti} after reopening: {:?}",
            scenarios::status(&reopened.handle, jti)
        );
    }
    assert!(scenarios::is_active(&reopened.handle, "t0"));
    reopened.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgeries_on_the_embedded_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    let raw = log.clone();
    scenarios::forgeries(log, dir.path(), move |records| {
        let raw = raw.clone();
        async move {
            let records = records
                .into_iter()
                .map(|(key, value)| Record { key, value })
                .collect();
            assert!(raw.append(records).await.iter().all(Result::is_ok));
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_on_the_embedded_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    scenarios::duplicates(log, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_on_the_embedded_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    scenarios::queries(log, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_records_hold_the_settled_offset_on_the_embedded_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    scenarios::parked_records_hold_the_settled_offset(log, dir.path()).await;
}

/// A projection written with an older layout (its own sled tree, here the
/// first layout's `projection`, which kept token records under `t`) is dropped
/// and rebuilt from the log when opened, to the same state a fresh projection
/// reaches; token records are derived from the stored events, hops inheriting
/// the root's grant type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_in_an_older_layout_is_rebuilt_from_the_log() {
    use baton_core::{GrantType, LedgerView};

    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    let (mut f, mut events) = scenarios::chain_events();
    let grant = GrantType::DeviceCode;
    events.push(f.issue_with_grant("as", "d0", "user:dana", "agent", 3600, grant));
    events.push(f.narrow("d0", "d1", "agent", "gateway", &[], 60));
    events.push(f.narrow("d1", "d2", "gateway", "server-a", &[], 30));
    let token = scenarios::append(&log, &f, &events).await;
    let wait = std::time::Duration::from_secs(30);
    let grant_of = |h: &baton_projector::Handle, jti: &str| {
        let view = h.view();
        let id = view.token_by_ref(&Fixture::token(jti)).unwrap().unwrap();
        view.token(&id).unwrap().unwrap().grant
    };

    let fresh = scenarios::Running::start(log.clone(), &dir.path().join("fresh"), &f);
    fresh.handle.wait_for(&token, wait).await.unwrap();
    assert_eq!(grant_of(&fresh.handle, "d2"), GrantType::DeviceCode);
    assert_eq!(
        grant_of(&fresh.handle, "t4"),
        GrantType::AuthorizationCodePkce
    );
    let digest = fresh.handle.state_digest().unwrap();
    fresh.stop().await;

    // An old projection: the first layout's tree, claiming the whole log applied.
    let old = dir.path().join("old");
    {
        let db = sled::open(&old).unwrap();
        let tree = db.open_tree("projection").unwrap();
        let applied = log.end_offsets().await.unwrap()[0];
        tree.insert([b'o', 0, 0, 0, 0], &applied.to_be_bytes()[..])
            .unwrap();
        tree.insert([b't', 0, 1, 2], &b"an old token record"[..])
            .unwrap();
        db.flush().unwrap();
    }
    let reopened = scenarios::Running::start(log.clone(), &old, &f);
    reopened.handle.wait_for(&token, wait).await.unwrap();
    assert_eq!(reopened.handle.state_digest().unwrap(), digest);
    assert_eq!(grant_of(&reopened.handle, "d2"), GrantType::DeviceCode);
    assert!(scenarios::is_active(&reopened.handle, "t4"));
    reopened.stop().await;
    let db = scenarios::when_released(|| Ok(sled::open(&old)?));
    let names: Vec<String> = db
        .tree_names()
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n == "projection"),
        "the old layout's tree is dropped: {names:?}"
    );
}

/// The verified-signature cache answers only for the exact signature and key
/// that were verified. A copy with another signature has the same event id
/// (the id covers what was signed), and must still be verified afresh — and
/// fail — rather than be taken for the verified original.
#[test]
fn a_verified_signature_is_remembered_for_its_exact_bytes_only() {
    use baton_projector::verdict_key;
    use baton_projector::{Projector, ProjectorOptions};

    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    let (f, setup) = Fixture::standard(scenarios::NOW_S);
    let policy = f.policy();
    let root = *policy.trust_roots.values().next().unwrap();
    let projector = Projector::open(
        log,
        &dir.path().join("projection"),
        ProjectorOptions::new(policy.clone()),
    )
    .unwrap();
    let handle = projector.handle();
    let view = handle.view();
    let opened = |wire: baton_proto::v1::SignedEvent| baton_proto::open(wire).unwrap();

    // The authorization server's registration, signed by the trust root.
    let good = opened(baton_proto::v1::SignedEvent::from(&setup[0]));
    assert_eq!(good.0.key_id(), root.key_id());
    let cached = view
        .verified_signatures()
        .contains(&verdict_key(&good.0, &root));
    assert!(!cached, "nothing is verified yet");
    assert_eq!(view.verify(&policy, &[Some(&good)]).unwrap(), [true]);
    let cached = view
        .verified_signatures()
        .contains(&verdict_key(&good.0, &root));
    assert!(cached, "the verdict is remembered");
    assert_eq!(view.verify(&policy, &[Some(&good)]).unwrap(), [true]);

    let mut wire = baton_proto::v1::SignedEvent::from(&setup[0]);
    wire.signature[5] ^= 1;
    let bad = opened(wire);
    assert_eq!(bad.0.id(), good.0.id());
    assert_eq!(view.verify(&policy, &[Some(&bad)]).unwrap(), [false]);
    let cached = view
        .verified_signatures()
        .contains(&verdict_key(&bad.0, &root));
    assert!(!cached, "a failed verification is not remembered");
}

/// A record whose dependency never comes is quarantined after its grace also
/// while the log keeps growing: the projector never sees an idle moment at the
/// log's end, so expiry goes by a snapshot of the end offsets instead. (A node
/// waits to have read the log as of its start before it serves; a record
/// parked forever would hold that back.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_record_expires_while_the_log_keeps_growing() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    let (mut f, setup) = Fixture::standard(scenarios::NOW_S);
    let projector = scenarios::Running::start_with_grace(
        log.clone(),
        &dir.path().join("projection"),
        &f,
        std::time::Duration::from_millis(300),
    );
    let h = &projector.handle;
    let token = scenarios::append(&log, &f, &setup).await;
    h.wait_for(&token, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    // A hop whose parent is never appended.
    let _never = f.issue("as", "never", "user:alice", "agent", 3600);
    let orphan = f.narrow("never", "orphan", "agent", "gateway", &[], 60);
    scenarios::append(&log, &f, std::slice::from_ref(&orphan)).await;

    // A writer appends root grants, one durable append after another, until
    // told to stop (at most 20 000): the log never rests at its end.
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let writer = tokio::spawn({
        let (log, writing) = (log.clone(), writing.clone());
        async move {
            let mut written = 0;
            while written < 20_000 && writing.load(std::sync::atomic::Ordering::SeqCst) {
                let grant = f.issue("as", &format!("busy{written}"), "user:bob", "agent", 3600);
                let record = Record {
                    key: Vec::new(),
                    value: baton_proto::encode_signed(&grant),
                };
                assert!(log.append(vec![record]).await[0].is_ok());
                written += 1;
            }
            written
        }
    });
    scenarios::eventually(h, "the orphan is quarantined", || {
        h.counter("quarantined").unwrap() == 1
    })
    .await;
    let still_writing = writing.swap(false, std::sync::atomic::Ordering::SeqCst);
    let written = writer.await.unwrap();
    assert!(
        still_writing && written < 20_000,
        "the writer had finished ({written} written) before the orphan expired"
    );
    let reasons: Vec<String> = h
        .quarantined(10)
        .unwrap()
        .into_iter()
        .map(|q| q.reason)
        .collect();
    assert!(reasons[0].contains("still missing"), "{reasons:?}");
    projector.stop().await;
}

/// A node whose rules changed (here: an authorization server joins the
/// federation) re-derives its projection from the log, and holds exactly
/// what a fresh projection under the new rules holds: the subject
/// revocation it once quarantined as unauthorized now applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_under_other_rules_is_rebuilt_from_the_log() {
    use baton_core::{Body, ClientKind, ClientRole, RevocationTarget, Revoked};

    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    let (mut f, mut events) = scenarios::chain_events();
    events.push(f.register(
        "as2",
        ClientKind::AuthorizationServer,
        ClientRole::DelegatingLayer,
        None,
    ));
    let as2 = f.client("as2").key.clone();
    let revoke = Body::Revoked(Revoked {
        target: RevocationTarget::Subject(Fixture::subject("user:alice")),
        reason: "offboarded".into(),
        revoked_by: Some(Fixture::client_id("as2")),
        requested_by: None,
    });
    events.push(f.seal_with(&as2, revoke));
    let token = scenarios::append(&log, &f, &events).await;
    let wait = std::time::Duration::from_secs(30);
    let grace = std::time::Duration::from_millis(300);
    let mut federated = f.policy();
    federated.federated.insert(Fixture::client_id("as2"));

    let node = dir.path().join("node");
    let alone = scenarios::Running::start_with_policy(log.clone(), &node, f.policy(), grace);
    alone.handle.wait_for(&token, wait).await.unwrap();
    assert!(scenarios::is_active(&alone.handle, "t0"));
    assert_eq!(alone.handle.quarantined(10).unwrap().len(), 1);
    alone.stop().await;

    let fresh = dir.path().join("fresh");
    let fresh =
        scenarios::Running::start_with_policy(log.clone(), &fresh, federated.clone(), grace);
    fresh.handle.wait_for(&token, wait).await.unwrap();
    let digest = fresh.handle.state_digest().unwrap();
    fresh.stop().await;

    let reopened = scenarios::Running::start_with_policy(log.clone(), &node, federated, grace);
    reopened.handle.wait_for(&token, wait).await.unwrap();
    assert!(!scenarios::is_active(&reopened.handle, "t0"));
    assert!(reopened.handle.quarantined(10).unwrap().is_empty());
    assert_eq!(reopened.handle.state_digest().unwrap(), digest);
    reopened.stop().await;
}

/// A snapshot restored where the rules are not the ones it was made under
/// is refused when it is opened, naming both (opening it would drop it and
/// rebuild from the log: on an empty log, a node ready and empty); under its
/// own rules it opens, and from then on it is a projection like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_restored_under_other_rules_is_refused_not_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    let (f, events) = scenarios::chain_events();
    let token = scenarios::append(&log, &f, &events).await;
    let original = scenarios::Running::start(log.clone(), &dir.path().join("a"), &f);
    original.handle.wait_for(&token, WAIT).await.unwrap();
    let file = dir.path().join("a.snapshot");
    original.handle.write_snapshot(&file).unwrap();
    let digest = original.handle.state_digest().unwrap();
    original.stop().await;

    // Other rules: another trust root. An empty log, as on a new machine.
    let empty = EmbeddedLog::open(&dir.path().join("empty-log")).unwrap();
    let other = Fixture::new(scenarios::NOW_S).policy();
    let restored = dir.path().join("b");
    baton_projector::restore_snapshot(&file, &restored).unwrap();
    let refused = match baton_projector::Projector::open(
        empty.clone(),
        &restored,
        baton_projector::ProjectorOptions::new(other.clone()),
    ) {
        Ok(_) => panic!("a snapshot restored under other rules was opened"),
        Err(refused) => refused,
    };
    let said = refused.to_string();
    assert!(
        said.contains("restored from a snapshot made under other rules"),
        "{said}"
    );
    // Nothing was dropped: under its own rules it opens as it was.
    let node = scenarios::Running::start(log.clone(), &restored, &f);
    node.handle.wait_for(&token, WAIT).await.unwrap();
    assert_eq!(node.handle.state_digest().unwrap(), digest);
    assert!(scenarios::is_active(&node.handle, "t0"));
    node.stop().await;
    // Opened once under its rules, it is a node's projection: a change of
    // rules rebuilds it from the log, as for any node.
    let rebuilt = scenarios::Running::start_with_policy(
        empty,
        &restored,
        other,
        std::time::Duration::from_millis(300),
    );
    assert_eq!(rebuilt.handle.applied(), vec![0]);
    rebuilt.stop().await;
}

/// A snapshot restores to the same projection (digest, positions, answers),
/// in place of whatever a restore that died half-way left; damaged files and
/// an existing projection are refused, and nothing is left behind by them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_restores_to_the_same_projection() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    let (f, events) = scenarios::chain_events();
    let token = scenarios::append(&log, &f, &events).await;
    let wait = std::time::Duration::from_secs(30);
    let original = scenarios::Running::start(log.clone(), &dir.path().join("a"), &f);
    original.handle.wait_for(&token, wait).await.unwrap();
    // A snapshot killed half-way left its copy beside the projection: the
    // next one removes it, and removes its own.
    std::fs::create_dir_all(dir.path().join("a.snapshot-copy-killed/db")).unwrap();
    let file = dir.path().join("a.snapshot");
    let info = original.handle.write_snapshot(&file).unwrap();
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("snapshot-copy"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let digest = original.handle.state_digest().unwrap();
    assert_eq!(info.state_digest, digest.to_vec());
    assert_eq!(info.read, original.handle.read());
    assert_eq!(info.applied, original.handle.applied());
    original.stop().await;

    // A restore that died half-way left its staging directory: replaced.
    let restored = dir.path().join("b");
    std::fs::create_dir_all(dir.path().join("b.restoring/junk")).unwrap();
    assert_eq!(
        baton_projector::restore_snapshot(&file, &restored).unwrap(),
        info
    );
    assert!(!dir.path().join("b.restoring").exists());
    let again = baton_projector::restore_snapshot(&file, &restored).unwrap_err();
    assert!(
        again.to_string().contains("already holds a projection"),
        "{again}"
    );
    let node = scenarios::Running::start(log.clone(), &restored, &f);
    node.handle.wait_for(&token, wait).await.unwrap();
    assert_eq!(node.handle.state_digest().unwrap(), digest);
    assert_eq!(node.handle.records_read(), 0, "nothing after the snapshot");
    assert!(scenarios::is_active(&node.handle, "t0"));
    node.stop().await;

    // A file whose checksum holds but whose store is not what its trailer
    // says (another entry count), or that would write outside the store,
    // is refused, and nothing is restored or written outside.
    let bytes = std::fs::read(&file).unwrap();
    let mut miscounted = info.clone();
    miscounted.entries += 1;
    let store_end = bytes.len() - 32 - 4 - prost::Message::encoded_len(&info);
    let escaping = [
        &b"BATON-SNAPSHOT\x00v2\n"[..],
        &9u32.to_be_bytes(),
        b"../escape",
        &4u64.to_be_bytes(),
        b"evil",
        &0u32.to_be_bytes(),
    ]
    .concat();
    for (name, store, trailer, refusal) in [
        (
            "miscounted",
            bytes[..store_end].to_vec(),
            &miscounted,
            "do not match its trailer",
        ),
        ("escaping", escaping, &info, "outside its store"),
    ] {
        let trailer = prost::Message::encode_to_vec(trailer);
        let mut sealed = [store, trailer.clone()].concat();
        sealed.extend_from_slice(&(trailer.len() as u32).to_be_bytes());
        sealed.extend_from_slice(blake3::hash(&sealed).as_bytes());
        let path = dir.path().join(name);
        std::fs::write(&path, sealed).unwrap();
        let target = dir.path().join(format!("{name}-projection"));
        let err = baton_projector::restore_snapshot(&path, &target).unwrap_err();
        assert!(err.to_string().contains(refusal), "{name}: {err}");
        assert!(!target.exists(), "{name}: something was restored");
        assert!(
            !dir.path()
                .join(format!("{name}-projection.restoring"))
                .exists(),
            "{name}: its staging was left"
        );
        let err = baton_projector::verify_snapshot(&path).unwrap_err();
        assert!(err.to_string().contains(refusal), "{name}: {err}");
    }
    assert!(!dir.path().join("escape").exists(), "written outside");

    // Damage anywhere is refused before anything is written.
    for (name, damaged) in [
        ("truncated", bytes[..bytes.len() - 1].to_vec()),
        ("flipped", {
            let mut b = bytes.clone();
            b[bytes.len() / 3] ^= 1;
            b
        }),
        ("tiny", b"BATON".to_vec()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, damaged).unwrap();
        let target = dir.path().join(format!("{name}-projection"));
        let err = baton_projector::restore_snapshot(&path, &target).unwrap_err();
        assert!(
            err.to_string().contains("checksum mismatch") || err.to_string().contains("too short"),
            "{name}: {err}"
        );
        assert!(!target.exists(), "{name}: something was restored");
    }
}

/// A parked record is tried again only when an event it waits for arrives:
/// records waiting for parents that never come cost unrelated batches no
/// retry at all (every parked record was retried after every batch once, ~0.4
/// s of the apply thread per batch at 10,000 of them), and a chain that
/// arrives in reverse (a hop signed by a key not yet registered, its parent
/// issued to a client not yet registered) is applied in waves as each
/// dependency arrives. After a restart, the store has the records but not
/// what they wait for: each is tried once, then waits again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_record_is_tried_again_only_when_what_it_waits_for_arrives() {
    use baton_core::{ClientKind, ClientRole};

    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    let (mut f, setup) = Fixture::standard(scenarios::NOW_S);
    let grace = std::time::Duration::from_secs(600);
    let projection = dir.path().join("projection");
    let projector = scenarios::Running::start_with_grace(log.clone(), &projection, &f, grace);
    let h = &projector.handle;
    scenarios::append(&log, &f, &setup).await;

    // `late` is registered last; a root grant to it, and its hop, come first.
    let registration = f.register(
        "late",
        ClientKind::McpServer,
        ClientRole::DelegatingLayer,
        Some("as"),
    );
    let root = f.issue("as", "x0", "user:carol", "late", 3600);
    let hop = f.narrow("x0", "x1", "late", "gateway", &[], 60);
    scenarios::append(&log, &f, std::slice::from_ref(&hop)).await;
    scenarios::append(&log, &f, std::slice::from_ref(&root)).await;
    const ORPHANS: u64 = 50;
    let orphans: Vec<_> = (0..ORPHANS)
        .map(|i| {
            let _never = f.issue("as", &format!("never{i}"), "user:alice", "agent", 3600);
            f.narrow(
                &format!("never{i}"),
                &format!("orphan{i}"),
                "agent",
                "gateway",
                &[],
                60,
            )
        })
        .collect();
    scenarios::append(&log, &f, &orphans).await;
    scenarios::polled("every record parked", || h.parked() == ORPHANS + 2).await;

    // Unrelated writes, one append each: nothing parked is tried again.
    let unrelated = |f: &mut Fixture, from: u64, n: u64| {
        (from..from + n)
            .map(|i| f.issue("as", &format!("busy{i}"), "user:bob", "agent", 3600))
            .collect::<Vec<_>>()
    };
    let mut last = None;
    for grant in unrelated(&mut f, 0, 100) {
        last = Some(scenarios::append(&log, &f, std::slice::from_ref(&grant)).await);
    }
    h.wait_for_read(&last.unwrap(), WAIT).await.unwrap();
    assert_eq!(
        h.parked_retries(),
        0,
        "a parked record was retried for nothing"
    );
    assert!(!scenarios::is_active(h, "x0") && !scenarios::is_active(h, "x1"));

    // The registration supplies the client (x0 waits for it) and its key (x1
    // waits for it): both are tried; x1 then waits for x0, which applies and
    // supplies it: three retries in all.
    scenarios::append(&log, &f, std::slice::from_ref(&registration)).await;
    scenarios::polled("the chain applied", || h.parked() == ORPHANS).await;
    assert!(scenarios::is_active(h, "x0") && scenarios::is_active(h, "x1"));
    assert_eq!(h.parked_retries(), 3);
    assert_eq!(h.counter("quarantined").unwrap(), 0);
    projector.stop().await;

    // Restarted: each orphan is tried once, at the first batch, then waits.
    let projector = scenarios::Running::start_with_grace(log.clone(), &projection, &f, grace);
    let h = &projector.handle;
    for round in 0..2 {
        let mut last = None;
        for grant in unrelated(&mut f, 100 + round * 10, 10) {
            last = Some(scenarios::append(&log, &f, std::slice::from_ref(&grant)).await);
        }
        h.wait_for_read(&last.unwrap(), WAIT).await.unwrap();
        assert_eq!(h.parked(), ORPHANS);
        assert_eq!(h.parked_retries(), ORPHANS, "round {round}");
    }
    projector.stop().await;
}

/// Starts a snapshot into memory and holds it mid-copy (after its first
/// entry); returns once it is held, with what releases it and its outcome.
async fn held_snapshot(
    handle: &baton_projector::Handle,
) -> (
    std::sync::mpsc::Sender<()>,
    tokio::task::JoinHandle<baton_projector::Result<(baton_projector::SnapshotInfo, Vec<u8>)>>,
) {
    let (paused, on_pause) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let handle = handle.clone();
    let copy = tokio::task::spawn_blocking(move || {
        handle.write_snapshot_with(Vec::new(), |copied| {
            if copied == 1 {
                paused.send(()).unwrap();
                released.recv().unwrap();
            }
        })
    });
    tokio::task::spawn_blocking(move || on_pause.recv())
        .await
        .unwrap()
        .unwrap();
    (release, copy)
}

/// A snapshot does not stop applying: while one is held in the middle of its
/// copy, a parked record's parent arrives (the parked entry is deleted, the
/// hop applied) and a revocation cascades, and both are answered at once.
/// The snapshot is still of the moment it began (its digest and positions
/// are those read before), and a node restored from it reads the rest from
/// the log and reaches the original's state. (Applying paused for the whole
/// copy before: minutes at 10M events, revocations unanswered meanwhile.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_is_of_one_moment_while_applying_goes_on() {
    use baton_core::RevocationTarget;

    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    let (mut f, events) = scenarios::chain_events();
    let grace = std::time::Duration::from_secs(600);
    let original =
        scenarios::Running::start_with_grace(log.clone(), &dir.path().join("a"), &f, grace);
    let h = &original.handle;
    let token = scenarios::append(&log, &f, &events).await;
    h.wait_for(&token, WAIT).await.unwrap();
    let parent = f.issue("as", "q0", "user:carol", "agent", 3600);
    let hop = f.narrow("q0", "q1", "agent", "gateway", &[], 60);
    scenarios::append(&log, &f, std::slice::from_ref(&hop)).await;
    scenarios::polled("the hop parked", || h.parked() == 1).await;
    let (digest, read, applied) = (h.state_digest().unwrap(), h.read(), h.applied());

    let (release, copy) = held_snapshot(h).await;
    let mut later = scenarios::append(&log, &f, std::slice::from_ref(&parent)).await;
    let revocation = f.revoke(RevocationTarget::Token(Fixture::token("t0")));
    later.merge(&scenarios::append(&log, &f, std::slice::from_ref(&revocation)).await);
    h.wait_for(&later, WAIT)
        .await
        .expect("applying goes on while a snapshot is copied");
    assert!(scenarios::is_active(h, "q1"));
    assert!(!scenarios::is_active(h, "t4"), "the revocation cascaded");
    assert_eq!(h.parked(), 0);
    release.send(()).unwrap();
    let (info, copied) = copy.await.unwrap().unwrap();
    assert_eq!(info.state_digest, digest.to_vec(), "of the moment it began");
    assert_eq!((&info.read, &info.applied), (&read, &applied));
    assert_ne!(h.state_digest().unwrap(), digest);

    let file = dir.path().join("a.snapshot");
    std::fs::write(&file, &copied).unwrap();
    let restored = dir.path().join("b");
    assert_eq!(
        baton_projector::restore_snapshot(&file, &restored).unwrap(),
        info
    );
    let node = scenarios::Running::start_with_grace(log.clone(), &restored, &f, grace);
    node.handle.wait_for(&later, WAIT).await.unwrap();
    assert_eq!(
        node.handle.state_digest().unwrap(),
        h.state_digest().unwrap()
    );
    assert!(scenarios::is_active(&node.handle, "q1"));
    node.stop().await;
    original.stop().await;
}

/// A snapshot keeps at most `snapshot_journal_bytes_max` of what changed
/// during its copy: past it the copy is abandoned with an error naming the
/// limit, applying having gone on; the next snapshot starts afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_past_its_journal_bound_is_abandoned_not_applying() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    let (mut f, events) = scenarios::chain_events();
    let mut options = baton_projector::ProjectorOptions::new(f.policy());
    options.snapshot_journal_bytes_max = 4096;
    let node = scenarios::Running::start_with_options(log.clone(), &dir.path().join("a"), options);
    let h = &node.handle;
    let token = scenarios::append(&log, &f, &events).await;
    h.wait_for(&token, WAIT).await.unwrap();

    let (release, copy) = held_snapshot(h).await;
    let grants: Vec<_> = (0..50)
        .map(|i| f.issue("as", &format!("busy{i}"), "user:bob", "agent", 3600))
        .collect();
    let later = scenarios::append(&log, &f, &grants).await;
    h.wait_for(&later, WAIT).await.unwrap();
    assert!(scenarios::is_active(h, "busy49"));
    release.send(()).unwrap();
    let refused = copy.await.unwrap().unwrap_err().to_string();
    assert!(
        refused.contains("snapshot_journal_bytes_max") && refused.contains("4096"),
        "{refused}"
    );

    let (info, _) = h
        .write_snapshot_to(Vec::new())
        .expect("the next snapshot starts afresh");
    assert_eq!(info.state_digest, h.state_digest().unwrap().to_vec());
    node.stop().await;
}

/// Batches bounded by bytes (here one record each: a bound below any
/// record's size) apply the log to the same projection as one batch of
/// every record: where a batch ends is part of no verdict and no position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_bounded_by_bytes_reach_the_same_projection() {
    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    let (f, events) = scenarios::chain_events();
    let token = scenarios::append(&log, &f, &events).await;
    let mut digests = Vec::new();
    for (name, bytes) in [("whole", usize::MAX), ("one", 1)] {
        let node = start_batched(&log, &dir.path().join(name), &f, bytes);
        node.handle.wait_for(&token, WAIT).await.unwrap();
        assert_eq!(node.handle.counter("applied").unwrap(), events.len() as u64);
        digests.push(node.handle.state_digest().unwrap());
        node.stop().await;
    }
    assert_eq!(digests[0], digests[1]);
}

/// The query indexes hold many items per entry (one entry per prefix per
/// batch, items within a minute of the entry's first): a history paged one
/// event at a time comes in (created time, id) order, complete, and the same
/// whichever batches wrote it, here with events created minutes apart in an
/// order that is not time's, written as one batch, a few records a batch and
/// one record a batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_come_in_time_order_whichever_batches_wrote_them() {
    use baton_core::{Body, EventKind};
    use baton_projector::EventFilter;

    let dir = tempfile::tempdir().unwrap();
    let log = EmbeddedLog::open(&dir.path().join("log")).unwrap();
    let (mut f, mut events) = Fixture::standard(scenarios::NOW_S);
    for i in 0..40i64 {
        // Back and forth by half a minute (aggregates of neighbouring
        // batches overlap in time), with jumps of minutes either way (an
        // aggregate splits).
        f.shift_clock_ms(if i % 2 == 0 { 30_000 } else { -29_000 });
        if i % 10 == 9 {
            f.shift_clock_ms(if i % 20 == 9 { 300_000 } else { -700_000 });
        }
        events.push(f.issue(
            "as",
            &format!("h{i}"),
            &format!("user:u{}", i % 3),
            "agent",
            3600,
        ));
    }
    let token = scenarios::append(&log, &f, &events).await;
    let issued = |subject: Option<&str>| {
        let mut out: Vec<(i64, baton_core::EventId)> = events
            .iter()
            .filter_map(|e| {
                let (_, event) =
                    baton_proto::decode_signed(&baton_proto::encode_signed(e)).unwrap();
                match &event.body {
                    Body::TokenIssued(t) if subject.is_none_or(|s| t.subject.as_str() == s) => {
                        Some((event.created_at_ms, e.id()))
                    }
                    _ => None,
                }
            })
            .collect();
        out.sort();
        out
    };
    let all = issued(None);
    let (since, until) = (all[10].0, all[30].0);
    let paged = |h: &baton_projector::Handle, filter: &EventFilter, page: usize| {
        let mut out = Vec::new();
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let got = h.list_events(filter, cursor.as_deref(), page).unwrap();
            let Some(last) = got.last() else { break };
            cursor = Some(last.cursor.clone());
            out.extend(got.iter().map(|e| (e.event.created_at_ms, e.envelope.id())));
        }
        out
    };
    let mut digests = Vec::new();
    // One batch; a few records a batch (aggregates that overlap in time);
    // one record a batch.
    for (name, bytes) in [("whole", usize::MAX), ("few", 2_000), ("one", 1)] {
        let node = start_batched(&log, &dir.path().join(name), &f, bytes);
        node.handle.wait_for(&token, WAIT).await.unwrap();
        let h = &node.handle;
        let kind = EventFilter {
            kind: Some(EventKind::TokenIssued),
            ..Default::default()
        };
        let subject = EventFilter {
            subject: Some(Fixture::subject("user:u1")),
            ..Default::default()
        };
        let window = EventFilter {
            since_ms: Some(since),
            until_ms: Some(until),
            ..kind.clone()
        };
        let client = EventFilter {
            client: Some(Fixture::client_id("agent")),
            ..Default::default()
        };
        for page in [1, 3, 100] {
            assert_eq!(paged(h, &kind, page), all, "{name}, pages of {page}");
            assert_eq!(paged(h, &subject, page), issued(Some("user:u1")), "{name}");
            let inside: Vec<_> = all
                .iter()
                .copied()
                .filter(|(ms, _)| (since..until).contains(ms))
                .collect();
            assert_eq!(paged(h, &window, page), inside, "{name}, pages of {page}");
            let named = paged(h, &client, page);
            assert!(named.is_sorted(), "{name}: {named:?}");
            assert!(all.iter().all(|e| named.contains(e)), "{name}");
        }
        digests.push(h.state_digest().unwrap());
        node.stop().await;
    }
    assert_eq!(digests[0], digests[1]);
    assert_eq!(digests[0], digests[2]);
}

/// A projector whose batches hold at most `bytes` of records.
fn start_batched(
    log: &EmbeddedLog,
    dir: &std::path::Path,
    f: &Fixture,
    bytes: usize,
) -> scenarios::Running {
    let options = baton_projector::ProjectorOptions {
        batch_bytes_max: bytes,
        ..baton_projector::ProjectorOptions::new(f.policy())
    };
    scenarios::Running::start_with_options(log.clone(), dir, options)
}

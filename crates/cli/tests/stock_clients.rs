//! Clients Baton did not write, against a real `baton serve`: grpcurl lists the
//! services through server reflection and calls Check; a Python grpcio client
//! generated from proto/ checks its signer against the test vectors, appends
//! events it signed itself, checks them, is refused a widened hop, revokes,
//! and sees the cascade.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use baton_core::SigningKey;
use baton_testkit::{repo_root, tools};
use common::Served;

/// The test vectors' trust root: seed 01..01, TEST-ONLY.
fn vector_trust_root() -> String {
    hex::encode(SigningKey::from_seed(&[1; 32]).public_key().to_bytes())
}

#[test]
fn grpcurl_and_a_python_grpcio_client() {
    let grpcurl = tools::grpcurl().unwrap();
    let python = tools::interop_python().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = Served::start(&dir.path().join("node"), &vector_trust_root(), &[]);

    let listed = Command::new(&grpcurl)
        .args(["-plaintext", &node.address, "list"])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    let services = String::from_utf8(listed.stdout).unwrap();
    for service in [
        "baton.v1.LedgerService",
        "baton.v1.RevocationService",
        "baton.v1.ProvenanceService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.lines().any(|l| l == service),
            "grpcurl list lacks {service}: {services}"
        );
    }
    let described = Command::new(&grpcurl)
        .args([
            "-plaintext",
            &node.address,
            "describe",
            "baton.v1.RevocationService.Check",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&described.stdout)
            .contains("rpc Check ( .baton.v1.CheckRequest ) returns ( .baton.v1.CheckResponse )"),
        "{described:?}"
    );

    let client = Command::new(&python)
        .arg(repo_root().join("tests/interop/client.py"))
        .arg(repo_root())
        .arg(&node.address)
        .current_dir(repo_root().join("tests/interop"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&client.stdout);
    assert!(
        client.status.success(),
        "python client failed:\n{out}\n{}",
        String::from_utf8_lossy(&client.stderr)
    );
    assert!(
        out.lines()
            .any(|l| l == "python client: 7 passed, 0 failed"),
        "{out}"
    );
    let hop = out
        .lines()
        .find_map(|l| l.strip_prefix("hop token: "))
        .expect("the client names its hop token")
        .to_owned();

    // grpcurl calls Check on the hop the Python client revoked (via its root).
    let body = format!("{{\"token\": {{\"jti\": \"{hop}\"}}}}");
    let checked = Command::new(&grpcurl)
        .args([
            "-plaintext",
            "-d",
            &body,
            &node.address,
            "baton.v1.RevocationService/Check",
        ])
        .output()
        .unwrap();
    assert!(checked.status.success(), "{checked:?}");
    let answer = String::from_utf8(checked.stdout).unwrap();
    assert!(
        answer.contains("\"status\": \"TOKEN_STATUS_REVOKED\""),
        "{answer}"
    );
    assert!(
        answer.contains("\"via\": \"REVOCATION_VIA_TOKEN\""),
        "{answer}"
    );
    node.stop();
}

/// A hostile client we did not write (`tests/interop/hostile.py`, Python
/// grpcio signing its own events) tries every class of attack issue 8 found:
/// each is refused with the right code, field and rule, and a legitimate
/// verdict is unchanged.
#[test]
fn a_hostile_python_client_is_refused_at_every_turn() {
    let python = tools::interop_python().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = Served::start(&dir.path().join("node"), &vector_trust_root(), &[]);
    let run = Command::new(&python)
        .arg(repo_root().join("tests/interop/hostile.py"))
        .arg(repo_root())
        .arg(&node.address)
        .current_dir(repo_root().join("tests/interop"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "hostile client failed:\n{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        out.lines()
            .any(|l| l == "hostile client: 18 passed, 0 failed"),
        "{out}"
    );
    node.stop();
}

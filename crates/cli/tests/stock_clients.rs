//! Clients Baton did not write, against a real `baton serve` over mTLS:
//! grpcurl (`-cacert/-cert/-key`) lists the services through server
//! reflection, calls Check and reads a chain; a Python grpcio client
//! (`ssl_channel_credentials`) generated from proto/ checks its signer
//! against the test vectors, appends events it signed itself, checks them,
//! is refused a widened hop, revokes, sees the cascade and reads the chain.
//! Without a client certificate both are refused; health answers anyway.

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

/// The standard gRPC health service definition (grpc/grpc-proto).
const HEALTH_PROTO: &str = r#"syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); }
"#;

/// grpcurl's TLS flags for `dir`'s CA and, with `name`, a client certificate.
fn grpcurl_tls(dir: &std::path::Path, name: Option<&str>) -> Vec<String> {
    let mut args = vec![
        "-cacert".to_owned(),
        dir.join("ca.pem").display().to_string(),
    ];
    if let Some(name) = name {
        args.extend([
            "-cert".to_owned(),
            dir.join(format!("{name}.pem")).display().to_string(),
            "-key".to_owned(),
            dir.join(format!("{name}.key")).display().to_string(),
        ]);
    }
    args
}

#[test]
fn grpcurl_and_a_python_grpcio_client_over_mtls() {
    let grpcurl = tools::grpcurl().unwrap();
    let python = tools::sdk_python().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let config = common::mtls_config(
        &pki,
        "",
        "[[access]]\nprincipal = \"spiffe://baton.test/interop\"\nroles = [\"writer\", \"checker\", \"auditor\"]\n",
    );
    baton::pki::issue(&pki, "interop", "spiffe://baton.test/interop", 1).unwrap();
    let config = config.display().to_string();
    let node = Served::start(
        &dir.path().join("node"),
        &vector_trust_root(),
        &["--config", &config],
    );
    assert!(node.tls);
    let grpcurl_with = |name: Option<&str>, args: &[&str]| {
        Command::new(&grpcurl)
            .args(grpcurl_tls(&pki, name))
            .args(args)
            .output()
            .unwrap()
    };

    let listed = grpcurl_with(Some("interop"), &[&node.address, "list"]);
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
    // Reflection (the schema) needs a principal too, with any role.
    let anonymous = grpcurl_with(None, &[&node.address, "list"]);
    assert!(!anonymous.status.success());
    let said = String::from_utf8_lossy(&anonymous.stderr);
    assert!(
        said.contains("code = Unauthenticated") && said.contains("needs a principal with any role"),
        "{said}"
    );
    let described = grpcurl_with(
        Some("interop"),
        &[
            &node.address,
            "describe",
            "baton.v1.RevocationService.Check",
        ],
    );
    assert!(
        String::from_utf8_lossy(&described.stdout)
            .contains("rpc Check ( .baton.v1.CheckRequest ) returns ( .baton.v1.CheckResponse )"),
        "{described:?}"
    );
    // Health answers over TLS without a client certificate (reflection
    // needs one, so grpcurl reads the standard health.proto, as probes do).
    std::fs::write(dir.path().join("health.proto"), HEALTH_PROTO).unwrap();
    let protos = dir.path().display().to_string();
    let health = grpcurl_with(
        None,
        &[
            "-import-path",
            &protos,
            "-proto",
            "health.proto",
            &node.address,
            "grpc.health.v1.Health/Check",
        ],
    );
    assert!(health.status.success(), "{health:?}");
    assert!(String::from_utf8_lossy(&health.stdout).contains("SERVING"));

    let client = Command::new(&python)
        .arg(repo_root().join("tests/interop/client.py"))
        .arg(repo_root())
        .arg(&node.address)
        .args(["--ca", &pki.join("ca.pem").display().to_string()])
        .args(["--cert", &pki.join("interop.pem").display().to_string()])
        .args(["--key", &pki.join("interop.key").display().to_string()])
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
            .any(|l| l == "python client: 10 passed, 0 failed"),
        "{out}"
    );
    let hop = out
        .lines()
        .find_map(|l| l.strip_prefix("hop token: "))
        .expect("the client names its hop token")
        .to_owned();

    // grpcurl calls Check, and reads the chain, of the hop the Python client
    // revoked (via its root); without a client certificate, both are refused.
    let body = format!("{{\"token\": {{\"jti\": \"{hop}\"}}}}");
    // (Reflection needs a certificate too: grpcurl reads proto/ instead.)
    let repo_protos = repo_root().join("proto").display().to_string();
    for (method, proto, needs) in [
        (
            "baton.v1.RevocationService/Check",
            "baton/v1/revocation.proto",
            "role checker",
        ),
        (
            "baton.v1.ProvenanceService/GetChain",
            "baton/v1/provenance.proto",
            "role auditor",
        ),
    ] {
        let refused = grpcurl_with(
            None,
            &[
                "-import-path",
                &repo_protos,
                "-proto",
                proto,
                "-d",
                &body,
                &node.address,
                method,
            ],
        );
        assert!(!refused.status.success(), "{refused:?}");
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(
            said.contains("Code: Unauthenticated")
                && said.contains(needs)
                && said.contains("no client certificate"),
            "{method}: {said}"
        );
    }
    let checked = grpcurl_with(
        Some("interop"),
        &[
            "-d",
            &body,
            &node.address,
            "baton.v1.RevocationService/Check",
        ],
    );
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
    let chain = grpcurl_with(
        Some("interop"),
        &[
            "-d",
            &body,
            &node.address,
            "baton.v1.ProvenanceService/GetChain",
        ],
    );
    assert!(chain.status.success(), "{chain:?}");
    let chain = String::from_utf8(chain.stdout).unwrap();
    assert!(chain.contains("\"eventId\""), "{chain}");
    node.stop();
}

/// A hostile client we did not write (`tests/interop/hostile.py`, Python
/// grpcio signing its own events) tries every class of attack issue 8 found:
/// each is refused with the right code, field and rule, and a legitimate
/// verdict is unchanged.
#[test]
fn a_hostile_python_client_is_refused_at_every_turn() {
    let python = tools::sdk_python().unwrap();
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
            .any(|l| l == "hostile client: 19 passed, 0 failed"),
        "{out}"
    );
    node.stop();
}

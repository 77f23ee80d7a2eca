//! Local callers, as an operator sets a node up on one host: plaintext on
//! loopback makes callers admin only when the operator says so
//! (`--loopback-admin`); otherwise local callers use the node's Unix socket,
//! where each is the user id the kernel reports for it, with the roles of
//! the `[[access]] uid = …` grants. Two real users (root, and `nobody`
//! through `setpriv`) and a client Baton did not write (grpcurl `-unix`).

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output};

use baton_core::SigningKey;
use baton_testkit::tools;
use common::{Served, baton};

/// A trust root made for this test (TEST-ONLY).
fn trust_root() -> String {
    hex::encode(SigningKey::from_seed(&[7; 32]).public_key().to_bytes())
}

const NOBODY: u32 = 65534;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn plaintext_callers_are_admin_only_when_the_operator_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let said = common::serve_refused_with_env(
        &[
            "--listen",
            "127.0.0.1:0",
            "--trust-root",
            &trust_root(),
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
        ],
        &[],
    );
    for needle in ["--loopback-admin", "--unix-listen", "TLS"] {
        assert!(said.contains(needle), "{needle}: {said}");
    }
    // Said, every plaintext caller is admin, and the node logs that it is.
    let node = Served::start_with_env(
        &dir.path().join("data"),
        &trust_root(),
        &[],
        "warn",
        &[("BATON_LOOPBACK_ADMIN", "true")],
    );
    let status = baton()
        .args(["status", "--server", &node.url()])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", text(&status));
    node.wait_for_log(
        "plaintext callers are admin",
        std::time::Duration::from_secs(10),
    );
}

#[test]
fn a_unix_socket_caller_is_its_user_id_with_that_uids_grants() {
    let dir = tempfile::tempdir().unwrap();
    // `nobody` must reach the socket and run grpcurl from here.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let grpcurl = dir.path().join("grpcurl");
    std::fs::copy(tools::grpcurl().unwrap(), &grpcurl).unwrap();
    std::fs::set_permissions(&grpcurl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.path().join("baton.sock");
    let config = dir.path().join("baton.toml");
    std::fs::write(
        &config,
        format!(
            "unix_listen = {socket:?}\n\
             [[access]]\nuid = 0\nroles = [\"admin\"]\n\
             [[access]]\nuid = {NOBODY}\nroles = [\"checker\"]\n"
        ),
    )
    .unwrap();
    let start = || {
        Served::start_with_env(
            &dir.path().join("data"),
            &trust_root(),
            &["--config", config.to_str().unwrap()],
            "warn",
            &[("BATON_LOOPBACK_ADMIN", "false")],
        )
    };
    let node = start();
    assert_eq!(node.unix_path.as_deref(), socket.to_str());
    let on_socket = format!("unix:{}", socket.display());

    // Root (uid 0, admin) over the socket with Baton's own CLI.
    let status = baton()
        .args(["status", "--server", &on_socket])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", text(&status));
    // The same user over plaintext TCP is nobody: no loopback_admin.
    let tcp = baton()
        .args(["status", "--server", &node.url()])
        .output()
        .unwrap();
    assert!(!tcp.status.success());
    assert!(
        text(&tcp).contains("UNAUTHENTICATED") && text(&tcp).contains("loopback_admin"),
        "{}",
        text(&tcp)
    );

    // `nobody` (uid 65534, checker) with grpcurl: it may check (through
    // server reflection, which any role may read), not read the status.
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args([
                "--reuid",
                &NOBODY.to_string(),
                "--regid",
                &NOBODY.to_string(),
                "--clear-groups",
            ])
            .arg(&grpcurl)
            .args(["-plaintext", "-unix"])
            .args(args)
            .env("HOME", dir.path())
            .output()
            .unwrap()
    };
    let checked = as_nobody(&[
        "-d",
        r#"{"token": {"jti": "nobody-knows"}}"#,
        socket.to_str().unwrap(),
        "baton.v1.RevocationService/Check",
    ]);
    assert!(checked.status.success(), "{}", text(&checked));
    assert!(
        text(&checked).contains("TOKEN_STATUS_UNKNOWN"),
        "{}",
        text(&checked)
    );
    let refused = as_nobody(&[socket.to_str().unwrap(), "baton.v1.AdminService/Status"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("PermissionDenied") && text(&refused).contains("unix:uid:65534"),
        "{}",
        text(&refused)
    );

    // One node per socket; a stopped node takes its socket file along, and
    // one a killed node left behind is replaced by the next.
    let second = common::serve_refused(&[
        "--listen",
        "127.0.0.1:0",
        "--trust-root",
        &trust_root(),
        "--data-dir",
        dir.path().join("second").to_str().unwrap(),
        "--unix-listen",
        socket.to_str().unwrap(),
    ]);
    assert!(second.contains("listening on it already"), "{second}");
    node.kill();
    assert!(socket.exists(), "a killed node leaves its socket file");
    let again = start();
    let status = baton()
        .args(["status", "--server", &on_socket])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", text(&status));
    again.stop();
    assert!(!socket.exists(), "a stopped node removes its socket file");
}

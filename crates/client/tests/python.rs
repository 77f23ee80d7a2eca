//! The Python SDK's Checker passes the Rust Checker's scenario suite
//! (`crates/client-python/tests/checker_scenarios.py`) against a real node:
//! every kind of revocation evicts, a cut feed answers UNKNOWN and catches
//! up, expiry is local, bounds are refused, and a seeded random model agrees
//! with the node's own Check at every step.

#![allow(clippy::unwrap_used)]

mod common;

use baton_core::SigningKey;
use baton_testkit::{Fixture, repo_root, tools};
use common::{Node, now_s};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_checker_passes_the_same_scenarios() {
    let python = tools::sdk_python().unwrap();
    // The TEST-ONLY root of proto/testvectors (seed 01..01): the script
    // signs registrations with it.
    let f = Fixture::with_root(SigningKey::from_seed(&[1; 32]), now_s());
    let node = Node::start(&f).await;
    let seed = now_s().to_string();
    let script = repo_root().join("crates/client-python/tests/checker_scenarios.py");
    let address = node.address.to_string();
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&address)
        .arg(&seed)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("seed {seed}\n{stdout}");
    assert!(
        out.status.success(),
        "the Python checker failed (seed {seed}):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("python checker: "))
        .unwrap();
    assert!(summary.ends_with(" passed, 0 failed"), "{summary}");
    let passed: usize = summary
        .trim_start_matches("python checker: ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(passed >= 40, "{summary}");
    node.stop().await;
}

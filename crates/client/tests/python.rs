//! The Python SDK against the same specification as the Rust SDK:
//! - its Checker passes the Rust Checker's scenario suite
//!   (`crates/client-python/tests/checker_scenarios.py`) against a real
//!   node: every kind of revocation evicts, a cut feed answers UNKNOWN and
//!   catches up, expiry is local, bounds are refused, and the shared
//!   scenarios of `proto/testvectors/sdk/checker.json` give the recorded
//!   answers, each the node's own Check at that step;
//! - it passes the shared vectors of `proto/testvectors/sdk/` (the Rust SDK
//!   runs them in `vectors.rs` and the checker's unit tests);
//! - its ASGI middleware guards a Python MCP server (`mcp` 2.x, called by
//!   its own client) whose tools hold no authorization code;
//! - it reads like Python (issue 24): its README's quick start runs as
//!   written against a real node and prints what the README shows; its
//!   enums equal the generated descriptors and `ev:` ids go both ways
//!   (`tests/client_api.py`); it passes `mypy --strict`; and it builds a
//!   wheel whose metadata is complete.

#![allow(clippy::unwrap_used)]

mod common;

use baton_core::SigningKey;
use baton_testkit::{Fixture, readme_snippet, repo_root, shows, tools};
use common::{Node, now_s};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_checker_passes_the_same_scenarios() {
    let python = tools::sdk_python().unwrap();
    // The TEST-ONLY root of proto/testvectors (seed 01..01): the script
    // signs registrations with it.
    let f = Fixture::with_root(SigningKey::from_seed(&[1; 32]), now_s());
    let node = Node::start(&f).await;
    // The scenarios are proto/testvectors/sdk/checker.json's, the ones the
    // Rust Checker passes (`the_checker_passes_the_shared_scenarios`): one
    // check per op and one per scenario's end, besides the named ones.
    let out = tokio::process::Command::new(&python)
        .arg(repo_root().join("crates/client-python/tests/checker_scenarios.py"))
        .arg(node.address.to_string())
        .output()
        .await
        .unwrap();
    assert!(passed("python checker", &out) >= 240);
    node.stop().await;
}

/// The last line of a Python check's output, `{what}: N passed, M failed`,
/// when it says no failure: N.
fn passed(what: &str, out: &std::process::Output) -> usize {
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{what} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let prefix = format!("{what}: ");
    let summary = stdout
        .lines()
        .rev()
        .find(|line| line.starts_with(&prefix))
        .unwrap();
    assert!(summary.ends_with(" passed, 0 failed"), "{summary}");
    summary[prefix.len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn the_python_sdk_passes_the_shared_vectors() {
    let python = tools::sdk_python().unwrap();
    let out = std::process::Command::new(&python)
        .arg(repo_root().join("crates/client-python/tests/vectors.py"))
        .arg(repo_root())
        .output()
        .unwrap();
    assert!(passed("sdk vectors", &out) >= 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_middleware_guards_an_mcp_server_with_no_code_in_its_tools() {
    let python = tools::sdk_python().unwrap();
    let f = Fixture::with_root(SigningKey::from_seed(&[1; 32]), now_s());
    let node = Node::start(&f).await;
    let script = repo_root().join("tests/interop/mcp_middleware.py");
    // README shows the code this runs.
    let source = std::fs::read_to_string(&script).unwrap();
    assert!(shows(&source, &readme_snippet("python-mcp-middleware")));
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(node.address.to_string())
        .output()
        .await
        .unwrap();
    assert!(passed("mcp middleware", &out) >= 20);
    node.stop().await;
}

/// The Python SDK as its README describes it: `Client("http://host:port")`,
/// `issue(..., ttl_s=)`; enums with names, each equal to the generated
/// descriptor's number and taken by the builders; event ids shown as Baton
/// prints them (`ev:…`) and taken so or as bytes, a malformed one refused
/// naming the parameter; typed, frozen, documented answers from `check`
/// and `chain` (`crates/client-python/tests/client_api.py`, against a real
/// node).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_reads_like_its_readme() {
    let python = tools::sdk_python().unwrap();
    let f = Fixture::with_root(SigningKey::from_seed(&[1; 32]), now_s());
    let node = Node::start(&f).await;
    let out = tokio::process::Command::new(&python)
        .arg(repo_root().join("crates/client-python/tests/client_api.py"))
        .arg(node.address.to_string())
        .output()
        .await
        .unwrap();
    assert!(passed("sdk api", &out) >= 78);
    node.stop().await;
}

/// The Python README's quick start, run as written (its address aside) on a
/// real node left as the main README's walkthrough leaves it (`auth.key`
/// in the working directory; `auth.example` and `gateway` registered): it
/// prints what the README shows, and passes `mypy --strict`
/// (`crates/client-python/tests/quickstart.py`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_quick_start_runs_as_its_readme_shows() {
    let python = tools::sdk_python().unwrap();
    let f = Fixture::with_root(SigningKey::from_seed(&[1; 32]), now_s());
    let node = Node::start(&f).await;
    let out = tokio::process::Command::new(&python)
        .arg(repo_root().join("crates/client-python/tests/quickstart.py"))
        .arg(node.address.to_string())
        .output()
        .await
        .unwrap();
    assert!(passed("sdk quickstart", &out) >= 11);
    node.stop().await;
}

/// The SDK type-checks: `mypy --strict` on `crates/client-python/src`
/// (its `[tool.mypy]`), against the message stubs its build generated.
#[test]
fn the_python_sdk_passes_mypy_strict() {
    let python = tools::sdk_python().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&python)
        .args(["-m", "mypy", "--strict", "--cache-dir"])
        .arg(cache.path())
        .current_dir(repo_root().join("crates/client-python"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "mypy failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Success: no issues found in "), "{stdout}");
}

/// `python -m build --wheel` makes a wheel whose METADATA is complete
/// (name, version, summary, license expression, Python version,
/// dependencies and the `mcp` extra, the README as its description,
/// `Typing :: Typed`) and which holds the generated stubs (`.pyi` too),
/// every module and both `py.typed` markers, and nothing else; it installs
/// and imports (`crates/client-python/tests/wheel.py`).
#[test]
fn the_python_sdk_builds_a_complete_wheel() {
    let python = tools::sdk_python().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&python)
        .arg(repo_root().join("crates/client-python/tests/wheel.py"))
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert!(passed("sdk wheel", &out) >= 22);
}

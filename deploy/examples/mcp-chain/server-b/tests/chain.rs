//! The mcp-chain example, run by its one command (`run.sh`) against the
//! binaries under test: a real MCP client (the Python MCP SDK's) calls a tool
//! at server A that calls server B; the middle hop is revoked on the second
//! Baton node and the next call is refused with the spec's 401, with no
//! restart; `baton chain` on B's token shows user → gateway → A → B.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use baton_testkit::{readme_snippet, repo_root, shows, tools};

/// README's "Use Baton from an MCP server" and "Record a token exchange"
/// snippets are the example's code, which the test below runs.
#[test]
fn readme_shows_the_code_the_example_runs() {
    let example = repo_root().join("deploy/examples/mcp-chain");
    let read = |file: &str| std::fs::read_to_string(example.join(file)).unwrap();
    for (snippet, file) in [
        ("rust-mcp-server", "server-b/src/main.rs"),
        ("python-mcp-server", "server_a.py"),
        ("python-exchange", "server_a.py"),
    ] {
        assert!(
            shows(&read(file), &readme_snippet(snippet)),
            "README's {snippet} is not in {file}"
        );
    }
}

#[test]
fn a_real_mcp_chain_is_cut_mid_session_by_a_revocation_on_another_node() {
    let python = tools::sdk_python().unwrap();
    let server_b = env!("CARGO_BIN_EXE_mcp-chain-server-b");
    // The CLI is built by the same `cargo test --workspace` into the same
    // directory.
    let baton = std::path::Path::new(server_b).with_file_name("baton");
    assert!(
        baton.exists(),
        "{} is missing: build the CLI (cargo build -p baton) first",
        baton.display()
    );
    let out = Command::new(repo_root().join("deploy/examples/mcp-chain/run.sh"))
        .env("BATON", &baton)
        .env("SERVER_B", server_b)
        .env("PYTHON", &python)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "run.sh failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.lines().any(|l| l == "mcp chain: 9 passed, 0 failed"),
        "{stdout}"
    );
    let bound = stdout
        .lines()
        .find(|l| l.starts_with("revocation on node 2 -> 401 at server A after "))
        .expect("the time to refusal is printed");
    eprintln!("{bound}");
    // `baton chain` on B's token: every hop, with its subject and performer.
    let chain: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("== baton chain "))
        .skip(1)
        .collect();
    assert_eq!(chain.len(), 3, "{stdout}");
    for (line, hop) in chain.iter().zip([
        "as -> gateway",
        "gateway -> server-a",
        "server-a -> server-b",
    ]) {
        assert!(
            line.contains(&format!("for user:alice@example.com: {hop}")),
            "{line}"
        );
    }
}

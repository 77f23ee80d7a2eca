//! Replays the fuzz corpora committed under `crates/fuzz/corpus` through the
//! same functions the fuzz targets drive (`baton_testkit::fuzz`,
//! `baton::check_config`): every input a fuzzer kept, including any that
//! once crashed, stays a regression test of the normal suite.

#![allow(clippy::unwrap_used)]

use baton_testkit::{fuzz, repo_root};

fn replay(target: &str, run: impl Fn(&[u8])) -> usize {
    let dir = repo_root().join("crates/fuzz/corpus").join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        run(&std::fs::read(&path).unwrap());
        count += 1;
    }
    assert!(count > 0, "no corpus in {}", dir.display());
    count
}

#[test]
fn the_fuzz_corpora_replay_without_a_panic() {
    let counts = [
        ("record", replay("record", fuzz::record)),
        ("bundle", replay("bundle", fuzz::bundle)),
        ("tokens", replay("tokens", fuzz::tokens)),
        ("embedded_log", replay("embedded_log", fuzz::embedded_log)),
        ("gateway", replay("gateway", baton_bridge::fuzz::request)),
        (
            "config",
            replay("config", |data| {
                if let Ok(text) = std::str::from_utf8(data) {
                    let _ = baton::check_config(text);
                }
            }),
        ),
    ];
    eprintln!("replayed {counts:?}");
}

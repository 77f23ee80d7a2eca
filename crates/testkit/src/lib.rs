//! Test harness shared by Baton's tests: a real Apache Kafka started through
//! `deploy/kafka/kafka.sh` (never a mock), and TEST-ONLY fixture keys and
//! delegation chains signed exactly as a writer would sign them.

mod fixture;
pub mod fuzz;
mod kafka;
mod proxy;
pub mod tools;

pub use fixture::{Fixture, FixtureClient, SCOPES, TOOLS};
pub use kafka::{Detour, KafkaCluster};
pub use proxy::Proxy;

/// The repository root, for scripts under `deploy/`.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether `snippet`'s lines (indentation aside) stand together in `source`.
pub fn shows(source: &str, snippet: &str) -> bool {
    let lines = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect()
    };
    let (source, snippet) = (lines(source), lines(snippet));
    !snippet.is_empty()
        && source
            .windows(snippet.len())
            .any(|w| w == snippet.as_slice())
}

/// The fenced block after `<!-- snippet:NAME -->` in README.md: what the
/// tests run or compare, so README shows what was tested.
pub fn readme_snippet(name: &str) -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let marker = format!("<!-- snippet:{name} -->");
    let start = readme
        .find(&marker)
        .unwrap_or_else(|| panic!("README has no {marker}"));
    let mut lines = readme[start..]
        .lines()
        .skip_while(|line| !line.starts_with("```"));
    lines.next().expect("a fenced block after the marker");
    let block: Vec<&str> = lines.take_while(|line| !line.starts_with("```")).collect();
    format!("{}\n", block.join("\n"))
}

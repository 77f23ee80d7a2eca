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

/// The fenced block after `<!-- snippet:NAME -->` in README.md or one of
/// docs/*.md: what the tests run or compare, so README or docs/ shows what was
/// tested. The marker must be in exactly one of those files.
pub fn readme_snippet(name: &str) -> String {
    let marker = format!("<!-- snippet:{name} -->");
    let mut files = vec![repo_root().join("README.md")];
    let mut docs: Vec<std::path::PathBuf> = std::fs::read_dir(repo_root().join("docs"))
        .expect("docs/")
        .map(|entry| entry.expect("an entry of docs/").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut found: Vec<(std::path::PathBuf, String)> = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        if text.contains(&marker) {
            found.push((path, text));
        }
    }
    let readme = match found.as_slice() {
        [(_, text)] => text,
        [] => panic!("neither README.md nor docs/*.md has {marker}"),
        many => panic!(
            "{marker} is in more than one file: {:?}",
            many.iter().map(|(path, _)| path).collect::<Vec<_>>()
        ),
    };
    let start = readme.find(&marker).expect("the marker, just found");
    let mut lines = readme[start..]
        .lines()
        .skip_while(|line| !line.starts_with("```"));
    lines.next().expect("a fenced block after the marker");
    let block: Vec<&str> = lines.take_while(|line| !line.starts_with("```")).collect();
    format!("{}\n", block.join("\n"))
}

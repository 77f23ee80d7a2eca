//! The house's structure, checked: no crate's top-level modules import each
//! other in a circle. An edge `a -> b` is `src/a.rs` (or `src/a/…`) naming
//! `crate::b` outside comments and `#[cfg(test)] mod tests`; each strongly
//! connected component of more than one module is a circle, and fails.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use baton_testkit::repo_root;

/// `text` without `//` comments and without a trailing test module.
fn code(text: &str) -> String {
    let text = text
        .find("#[cfg(test)]\nmod tests")
        .map_or(text, |at| &text[..at]);
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules of a crate's `src` and whom each imports.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files: BTreeMap<String, Vec<std::path::PathBuf>> = BTreeMap::new();
    let mut all = Vec::new();
    sources(src, &mut all);
    for path in all {
        let relative = path.strip_prefix(src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_str().unwrap().trim_end_matches(".rs").to_owned();
        if module != "lib" && module != "main" {
            files.entry(module).or_default().push(path);
        }
    }
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let mut graph = BTreeMap::new();
    for (module, paths) in &files {
        let mut imports = BTreeSet::new();
        for path in paths {
            let text = code(&std::fs::read_to_string(path).unwrap());
            // `crate::b` and `use crate::{b, …}`.
            let mut named: Vec<&str> = text
                .match_indices("crate::")
                .map(|(at, _)| &text[at + "crate::".len()..])
                .collect();
            let grouped: Vec<String> = named
                .iter()
                .filter_map(|rest| rest.strip_prefix('{'))
                .flat_map(|group| {
                    let inside = group.split('}').next().unwrap_or("");
                    inside
                        .split(',')
                        .map(|item| item.trim().to_owned())
                        .collect::<Vec<_>>()
                })
                .collect();
            named.extend(grouped.iter().map(String::as_str));
            for rest in named {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if modules.contains(&name) && &name != module {
                    imports.insert(name);
                }
            }
        }
        graph.insert(module.clone(), imports);
    }
    graph
}

/// The modules that reach each other, in groups of more than one.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reaches = |from: &String| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(module) = todo.pop() {
            for next in &graph[&module] {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reaches(m))).collect();
    let mut circles: Vec<Vec<String>> = Vec::new();
    for module in graph.keys() {
        let circle: Vec<String> = graph
            .keys()
            .filter(|other| {
                *other == module
                    || (reach[module].contains(*other) && reach[other].contains(module))
            })
            .cloned()
            .collect();
        if circle.len() > 1 && !circles.contains(&circle) {
            circles.push(circle);
        }
    }
    circles
}

#[test]
fn no_crate_has_a_module_import_circle() {
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    let mut crates = 0;
    for entry in std::fs::read_dir(repo_root().join("crates")).unwrap() {
        let src = entry.unwrap().path().join("src");
        if !src.is_dir() {
            continue;
        }
        crates += 1;
        let name = src
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        for circle in circles(&graph(&src)) {
            found.push((name.clone(), circle));
        }
    }
    assert!(crates >= 10, "{crates} crates read");
    assert_eq!(found, [], "module import circles (crate, modules)");
}

/// The check sees a circle when there is one.
#[test]
fn a_circle_is_seen() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(m, to)| (m.to_owned(), to.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(circles(&graph), vec![vec!["a", "b", "c"]]);
}

//! The house's structure, checked: the crates stand in layers (core ←
//! access ← server ← cli, read from `cargo tree`: no crate depends on one
//! above it, and none below the server, nor the log, projector and bridge
//! crates beside them, reaches a wire crate), and no crate's
//! top-level modules import each other in a circle. An edge `a -> b` is
//! `src/a.rs` (or `src/a/…`) naming `crate::b` outside comments and
//! `#[cfg(test)] mod tests`; each strongly connected component of more than
//! one module is a circle, and fails.

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

/// The layers, bottom up: each may depend on those below it, never above.
const LAYERS: [&str; 5] = [
    "baton-core",
    "baton-access",
    "baton-node",
    "baton-server",
    "baton",
];

/// What the crates below the server must not reach, even transitively: the
/// transport (gRPC, HTTP).
const WIRE: [&str; 3] = ["tonic", "axum", "hyper"];

/// The crates beside the layers that the node's logic stands on: no wire
/// either (`baton-proto`'s messages come without its `grpc` services).
const BESIDE: [&str; 3] = ["baton-log", "baton-projector", "baton-bridge"];

/// Packages by name, and the normal (not dev, not build) dependencies of
/// each.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// For each layer and each crate beside them, its dependency graph as
/// `cargo tree -p` resolves it for this machine: its own, since features
/// (baton-proto's `grpc`) are resolved for the crate alone.
fn resolved() -> BTreeMap<String, Graph> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut trees = BTreeMap::new();
    for layer in LAYERS.iter().chain(&BESIDE) {
        let mut graph = Graph::new();
        let out = std::process::Command::new(&cargo)
            .args(["tree", "--offline", "--locked", "-e", "normal"])
            .args(["--prefix", "depth", "--format", "{p}", "-p", layer])
            .current_dir(repo_root())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Each line is its depth, then the package: a line's parent is the
        // last line one level up.
        let mut path: Vec<String> = Vec::new();
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let digits = line.chars().take_while(char::is_ascii_digit).count();
            let depth: usize = line[..digits].parse().unwrap();
            let name = line[digits..].split(' ').next().unwrap().to_owned();
            path.truncate(depth);
            if let Some(parent) = path.last() {
                graph
                    .entry(parent.clone())
                    .or_default()
                    .insert(name.clone());
            }
            graph.entry(name.clone()).or_default();
            path.push(name);
        }
        trees.insert((*layer).to_owned(), graph);
    }
    trees
}

/// Everything `from` reaches in `graph`.
fn closure(graph: &Graph, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_owned()];
    while let Some(name) = todo.pop() {
        for next in graph.get(&name).into_iter().flatten() {
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    seen
}

/// Where the layering is broken: a crate reaching a layer above it, a crate
/// below the server reaching a wire crate, or a layer not reaching the one
/// below it.
fn layering_faults(trees: &BTreeMap<String, Graph>) -> Vec<String> {
    let mut faults = Vec::new();
    for beside in BESIDE {
        let reach = closure(&trees[beside], beside);
        for wire in WIRE {
            if reach.contains(wire) {
                faults.push(format!("{beside} reaches {wire}"));
            }
        }
    }
    for (i, layer) in LAYERS.iter().enumerate() {
        let graph = &trees[*layer];
        let reach = closure(graph, layer);
        for above in &LAYERS[i + 1..] {
            if reach.contains(*above) {
                faults.push(format!("{layer} depends on {above}, a layer above it"));
            }
        }
        if let Some(below) = i.checked_sub(1).map(|j| LAYERS[j])
            && !graph.get(*layer).is_some_and(|deps| deps.contains(below))
        {
            faults.push(format!("{layer} does not depend on {below}"));
        }
        if i < LAYERS.iter().position(|l| *l == "baton-server").unwrap() {
            for wire in WIRE {
                if reach.contains(wire) {
                    faults.push(format!("{layer} reaches {wire}"));
                }
            }
        }
    }
    faults
}

#[test]
fn the_crates_stand_in_layers_and_none_below_the_server_has_a_wire() {
    let trees = resolved();
    // The access crate is the core's and nothing else of Baton's.
    let access: BTreeSet<&String> = trees["baton-access"]["baton-access"]
        .iter()
        .filter(|dep| dep.starts_with("baton"))
        .collect();
    assert_eq!(access, BTreeSet::from([&"baton-core".to_owned()]));
    assert_eq!(layering_faults(&trees), Vec::<String>::new());
    // The check sees a fault when there is one: the access and node crates
    // given a wire, the core made to depend on the server, the projector's proto
    // given its services.
    let mut broken = trees.clone();
    let mut add = |root: &str, package: &str, dependency: &str| {
        broken
            .get_mut(root)
            .unwrap()
            .get_mut(package)
            .unwrap()
            .insert(dependency.to_owned());
    };
    add("baton-access", "baton-access", "tonic");
    add("baton-node", "baton-node", "axum");
    add("baton-core", "baton-core", "baton-server");
    add("baton-projector", "baton-proto", "tonic");
    let faults = layering_faults(&broken);
    for fault in [
        "baton-access reaches tonic",
        "baton-node reaches axum",
        "baton-core depends on baton-server, a layer above it",
        "baton-projector reaches tonic",
    ] {
        assert!(faults.iter().any(|f| f == fault), "{fault}: {faults:?}");
    }
}

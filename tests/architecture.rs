//! The module graph stays as `docs/ARCHITECTURE.md` draws it: the top-level modules of `src/`
//! import each other (`crate::x` outside test code) without a loop, and the layers below the
//! edge import neither the edge, the composition root nor a process.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules below the edge, and what none of them may import.
const LOWER: &[&str] = &[
    "domain", "clock", "metrics", "health", "meta", "storage", "lock", "hooks", "media", "upload",
];
const ABOVE: &[&str] = &[
    "http",
    "app",
    "server",
    "worker",
    "commands",
    "config",
    "cli",
    "upload_cli",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Test code does not count: test files, suites, and what follows `#[cfg(test)]`.
fn is_test_file(rel: &Path) -> bool {
    let name = rel.file_name().unwrap().to_string_lossy();
    name == "tests.rs"
        || name == "suite.rs"
        || rel
            .components()
            .any(|c| c.as_os_str() == "suite" || c.as_os_str() == "tests")
}

/// The names that follow `crate::` in `text`, including those in `use crate::{a, b::c}`.
fn referenced(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find(';').unwrap_or(group.len())];
            let mut depth = 0;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        out.insert(ident(&group[j..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in files {
        let rel = path.strip_prefix(&src).unwrap();
        if is_test_file(rel) {
            continue;
        }
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        if module == "main" || module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let refs = referenced(code);
        let entry = edges.entry(module.clone()).or_default();
        entry.extend(refs.into_iter().filter(|r| *r != module));
    }
    let modules: BTreeSet<String> = edges.keys().cloned().collect();
    for targets in edges.values_mut() {
        targets.retain(|t| modules.contains(t));
    }
    edges
}

/// A loop through `from`, if there is one: the modules on it.
fn loop_through(
    edges: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    at: &str,
    path: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    for next in &edges[at] {
        if next == from {
            let mut found = path.clone();
            found.push(from.to_owned());
            return Some(found);
        }
        if seen.insert(next.clone()) {
            path.push(next.clone());
            if let Some(found) = loop_through(edges, from, next, path, seen) {
                return Some(found);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn no_top_level_module_is_in_an_import_loop() {
    let edges = graph();
    assert!(edges.len() > 10, "the source tree was not found: {edges:?}");
    for module in edges.keys() {
        let mut path = vec![module.clone()];
        let found = loop_through(&edges, module, module, &mut path, &mut BTreeSet::new());
        assert!(
            found.is_none(),
            "import loop: {}",
            found.unwrap().join(" -> ")
        );
    }
}

#[test]
fn layers_below_the_edge_import_nothing_above_them() {
    let edges = graph();
    for lower in LOWER {
        let Some(targets) = edges.get(*lower) else {
            panic!("no module {lower} in src/: update this test with the tree");
        };
        for above in ABOVE {
            assert!(
                !targets.contains(*above),
                "{lower} imports {above}, which is above it (docs/ARCHITECTURE.md)"
            );
        }
    }
}

#[test]
fn the_reader_finds_grouped_imports() {
    let refs = referenced("use crate::{a::B, c, d::{e, f}};\nlet x = crate::g::h();");
    let names: Vec<&str> = refs.iter().map(String::as_str).collect();
    assert_eq!(names, ["a", "c", "d", "g"]);
}

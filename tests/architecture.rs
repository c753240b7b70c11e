//! The shape stays as `docs/ARCHITECTURE.md` draws it: the top-level modules of `src/` import
//! each other (`crate::x` outside test code) without a loop, the layers below the edge import
//! neither the edge, the composition root nor a process, and no function outside test code is
//! longer than `LONGEST_FN` lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules below the edge, and what none of them may import.
const LOWER: &[&str] = &[
    "domain", "clock", "metrics", "health", "meta", "storage", "lock", "hooks", "media", "upload",
    "auth", "space", "host",
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

/// The most lines a function outside test code may take, from `fn` to its closing brace.
const LONGEST_FN: usize = 80;

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

/// `line` without string and char literals and `//` comments, for counting braces.
fn code_only(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            // A char literal ('{', '\''), not a lifetime ('a).
            '\'' => {
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with('\\') {
                    chars.nth(2);
                } else if rest.chars().nth(1) == Some('\'') {
                    chars.nth(1);
                }
            }
            '/' if chars.peek() == Some(&'/') => break,
            c => out.push(c),
        }
    }
    out
}

/// Whether `line` starts a function: `fn name`, after any visibility and qualifiers.
fn starts_fn(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "async ",
        "const ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    for prefix in ["async ", "const ", "unsafe "] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    rest.strip_prefix("fn ")
}

/// The functions of `text` (test code cut off) longer than `most` lines: (line, name, length).
fn long_functions(text: &str, most: usize) -> Vec<(usize, String, usize)> {
    let code = text.split("#[cfg(test)]").next().unwrap();
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = starts_fn(line) else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let (mut depth, mut opened) = (0i64, false);
        for (j, l) in lines[i..].iter().enumerate() {
            let l = code_only(l);
            for c in l.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            if !opened && l.trim_end().ends_with(';') {
                break;
            }
            if opened && depth == 0 {
                if j + 1 > most {
                    found.push((i + 1, name.clone(), j + 1));
                }
                break;
            }
        }
    }
    found
}

#[test]
fn no_function_outside_tests_is_longer_than_the_limit() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut long = Vec::new();
    for path in files {
        let rel = path.strip_prefix(&src).unwrap();
        if is_test_file(rel) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (line, name, len) in long_functions(&text, LONGEST_FN) {
            long.push(format!("src/{}:{line} {name}: {len} lines", rel.display()));
        }
    }
    assert!(
        long.is_empty(),
        "functions longer than {LONGEST_FN} lines; split them along their seams:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_length_counter_sees_braces_in_code_only() {
    let text = "fn a() {\n    let s = \"}{\";\n    let c = '{';\n    // }\n    x(|y: &'static str| y);\n}\nfn b();\n";
    assert_eq!(long_functions(text, 5), vec![(1, "a".to_owned(), 6)]);
    assert!(long_functions(text, 6).is_empty());
}

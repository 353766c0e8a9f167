//! The house rule for imports, checked: children may use their parents and
//! parents their children, but no two sibling modules may use each other,
//! directly or round a longer loop. A cycle means two rooms that cannot be
//! read apart; this test names it so the next change that makes one knows
//! where it is.
//!
//! It reads `crate::` and `super::` paths in the source text (`use` lines
//! and inline paths alike, test modules excluded), which is all the crates
//! here use to reach each other's modules.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

type ModPath = Vec<String>;

/// Every `.rs` file under `src`, by its module path.
fn modules(src: &Path) -> BTreeMap<ModPath, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("reading the source tree") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).expect("under src");
                let mut module: ModPath = rel
                    .with_extension("")
                    .iter()
                    .map(|c| c.to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    module.last().map(String::as_str),
                    Some("mod" | "lib" | "main")
                ) {
                    module.pop();
                }
                let text = std::fs::read_to_string(&path).expect("reading a source file");
                out.insert(module, without_tests(&strip_comments(&text)));
            }
        }
    }
    out
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Test modules sit at the end of a file and may use anything.
fn without_tests(text: &str) -> String {
    match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_string(),
        None => text.to_string(),
    }
}

fn ident_at(s: &[u8], mut i: usize) -> (String, usize) {
    let start = i;
    while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'_') {
        i += 1;
    }
    (String::from_utf8_lossy(&s[start..i]).into_owned(), i)
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The paths a use tree starting at `i` names: `a::b`, `a::{b, c::{d}}`.
fn use_tree(s: &[u8], i: usize, prefix: &ModPath, out: &mut Vec<ModPath>) -> usize {
    let mut path = prefix.clone();
    let mut i = skip_ws(s, i);
    loop {
        if s.get(i) == Some(&b'{') {
            i += 1;
            loop {
                i = skip_ws(s, i);
                match s.get(i) {
                    Some(b'}') => return i + 1,
                    Some(b',') => i += 1,
                    Some(_) => i = use_tree(s, i, &path, out),
                    None => return i,
                }
            }
        }
        // A glob names the module it is in: `a::*` refers to `a`.
        if s.get(i) == Some(&b'*') {
            out.push(path);
            return i + 1;
        }
        let (ident, next) = ident_at(s, i);
        if ident.is_empty() {
            out.push(path);
            return i.max(next);
        }
        if ident != "self" {
            path.push(ident);
        }
        i = next;
        if s[i..].starts_with(b"::") {
            i += 2;
        } else {
            out.push(path);
            return i;
        }
    }
}

/// Absolute module paths that `module`'s text refers to.
fn references(module: &ModPath, text: &str) -> Vec<ModPath> {
    let s = text.as_bytes();
    let mut out = Vec::new();
    for (anchor, base) in [
        ("crate::", ModPath::new()),
        ("super::", {
            let mut parent = module.clone();
            parent.pop();
            parent
        }),
    ] {
        let mut from = 0;
        while let Some(at) = text[from..].find(anchor) {
            let start = from + at;
            from = start + anchor.len();
            let boundary = start == 0 || {
                let c = s[start - 1];
                !(c.is_ascii_alphanumeric() || c == b'_' || c == b':')
            };
            if boundary {
                use_tree(s, from, &base, &mut out);
            }
        }
    }
    out
}

/// Edges between sibling modules (under their nearest common parent).
fn sibling_edges(mods: &BTreeMap<ModPath, String>) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let mut edges: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (module, text) in mods {
        for path in references(module, text) {
            let Some(target) = (1..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| mods.contains_key(p))
            else {
                continue;
            };
            let common = module
                .iter()
                .zip(&target)
                .take_while(|(a, b)| a == b)
                .count();
            // Ancestors and descendants may use each other.
            if common == module.len() || common == target.len() {
                continue;
            }
            edges
                .entry(module[..=common].to_vec())
                .or_default()
                .insert(target[..=common].to_vec());
        }
    }
    edges
}

/// One cycle, if the graph has any.
fn find_cycle(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Option<Vec<ModPath>> {
    fn visit(
        node: &ModPath,
        edges: &BTreeMap<ModPath, BTreeSet<ModPath>>,
        stack: &mut Vec<ModPath>,
        done: &mut BTreeSet<ModPath>,
    ) -> Option<Vec<ModPath>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|start| visit(start, edges, &mut Vec::new(), &mut done))
}

fn crate_src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(name)
        .join("src")
}

fn assert_acyclic(name: &str) {
    let mods = modules(&crate_src(name));
    assert!(mods.len() > 1, "no modules read under {name}/src");
    if let Some(cycle) = find_cycle(&sibling_edges(&mods)) {
        let names: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
        panic!("{name}: modules import each other: {}", names.join(" -> "));
    }
}

#[test]
fn monitor_modules_import_one_way() {
    assert_acyclic("monitor");
}

#[test]
fn common_and_kernel_modules_import_one_way() {
    assert_acyclic("monitor-common");
    assert_acyclic("monitor-ebpf");
}

/// The checker itself finds a cycle when there is one, through a `use`
/// group and through an inline `super::` path, and reads globs.
#[test]
fn a_cycle_is_found() {
    let mods: BTreeMap<ModPath, String> = [
        (vec![], String::new()),
        (
            vec!["a".into()],
            "use crate::{x, b::{Thing, other::More}};".into(),
        ),
        (vec!["b".into()], "fn f() { super::c::g() }".into()),
        (vec!["c".into()], "use crate::{a::self, b::*};".into()),
        (vec!["b".into(), "other".into()], String::new()),
    ]
    .into_iter()
    .collect();
    let cycle = find_cycle(&sibling_edges(&mods)).expect("a -> b -> c -> a");
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    let mut acyclic = mods.clone();
    acyclic.insert(vec!["c".into()], String::new());
    assert_eq!(find_cycle(&sibling_edges(&acyclic)), None);
}

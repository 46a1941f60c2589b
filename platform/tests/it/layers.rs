//! The platform's modules use only those below them: identity, context, jsonrpc -> config ->
//! telemetry -> http, client -> mcp, tasks -> stack -> app. Read from the sources: a `use` against the flow,
//! or a cycle between two files, fails here; so does a cycle among the conformance example's modules.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::Path,
};

/// Each top-level module's layer; a module may use its own layer and those below.
const LAYERS: &[(&str, u8)] = &[
    ("identity", 0),
    ("context", 0),
    ("jsonrpc", 0),
    ("config", 1),
    ("telemetry", 2),
    ("http", 3),
    ("client", 3),
    ("mcp", 4),
    ("tasks", 4),
    ("stack", 5),
    ("app", 6),
];

fn layer(module: &str) -> u8 {
    let top = module.split("::").next().unwrap_or_default();
    LAYERS
        .iter()
        .find(|(name, _)| *name == top)
        .map(|(_, layer)| *layer)
        .unwrap_or_else(|| panic!("module {top} has no layer: add it to LAYERS and lib.rs's doc"))
}

/// `src/http/auth/mod.rs` -> `http::auth`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .filter(|c| c != "mod")
        .collect();
    parts.join("::")
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `a::{b::{c, d}, e}` -> `a::b::c`, `a::b::d`, `a::e`.
fn expand(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else {
        return vec![tree.to_owned()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(p).into_iter().map(move |e| format!("{prefix}{e}")))
        .collect()
}

/// The modules among `known_top` that a file's non-test code names: `crate::a::b` and `super::x`
/// paths, in `use` trees and inline.
fn imports(module: &str, text: &str, known_top: &BTreeSet<&str>) -> BTreeSet<String> {
    let code: String = text
        .split("#[cfg(test)]")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut paths: Vec<String> = Vec::new();
    // `use` items: from a line starting `use`/`pub use`/`pub(...) use` to its `;`.
    let mut item: Option<String> = None;
    for line in code.lines() {
        let trimmed = line.trim_start();
        let visible = trimmed.strip_prefix("pub").map_or(trimmed, |rest| {
            rest.trim_start_matches(|c: char| c != ' ').trim_start()
        });
        if item.is_none() && visible.starts_with("use ") {
            item = Some(String::new());
        }
        if let Some(text) = &mut item {
            // The tree after `use`, whitespace dropped.
            text.push_str(if text.is_empty() { &visible[4..] } else { line });
            if let Some(end) = text.find(';') {
                let tree: String = text[..end].chars().filter(|c| !c.is_whitespace()).collect();
                paths.extend(expand(&tree));
                item = None;
            }
        }
    }
    paths.extend(
        code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .filter(|w| w.contains("::"))
            .map(str::to_owned),
    );
    let own: Vec<&str> = module.split("::").collect();
    let mut found = BTreeSet::new();
    for word in &paths {
        let path: Vec<&str> = word.split("::").filter(|p| !p.is_empty()).collect();
        let target: Vec<&str> = match path.first() {
            Some(&"crate") => path[1..].to_vec(),
            Some(&"super") => {
                let mut base = own[..own.len().saturating_sub(1)].to_vec();
                base.extend(&path[1..]);
                base
            }
            Some(&"self") => {
                let mut base = own.clone();
                base.extend(&path[1..]);
                base
            }
            _ => continue,
        };
        let Some(top) = target.first() else { continue };
        if !known_top.contains(top) {
            continue;
        }
        // Down to the file that defines it: two levels at most in this crate.
        found.insert(target[..target.len().min(2)].join("::"));
    }
    found.remove(module);
    found
}

#[test]
fn modules_use_only_the_layers_below_them_and_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for file in &all {
        let module = module_of(&src, file);
        if module == "lib" {
            continue;
        }
        let text = fs::read_to_string(file).unwrap();
        let used = imports(&module, &text, &layered_modules());
        for target in &used {
            if layer(target) > layer(&module) {
                wrong.push(format!("{module} uses {target}"));
            }
        }
        graph.insert(module, used);
    }
    assert!(wrong.is_empty(), "imports against the flow: {wrong:#?}");

    assert_no_cycle(&graph);
}

fn layered_modules() -> BTreeSet<&'static str> {
    LAYERS.iter().map(|(name, _)| *name).collect()
}

/// Fails naming the first cycle of `graph` (module -> the modules it uses).
fn assert_no_cycle(graph: &BTreeMap<String, BTreeSet<String>>) {
    if let Some(cycle) = cycle_in(graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

/// One cycle of `graph`, as a path that ends where it starts.
fn cycle_in(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    // A module path names a file or the folder's mod.rs; `a::b` depends on `a` only through it.
    let nodes: BTreeSet<String> = graph.keys().cloned().collect();
    let resolve = |target: &str| -> Option<String> {
        if nodes.contains(target) {
            return Some(target.to_owned());
        }
        let top = target.split("::").next()?;
        nodes.contains(top).then(|| top.to_owned())
    };
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        resolve: &dyn Fn(&str) -> Option<String>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            // A folder's mod.rs re-exports its children; edges into the folder's own files are
            // not cycles of the child.
            let Some(next) = resolve(next) else { continue };
            if next == node || node.starts_with(&format!("{next}::")) {
                continue;
            }
            if let Some(cycle) = visit(&next, graph, resolve, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &resolve, &mut Vec::new(), &mut done))
}

/// The conformance example's modules (one file each beside `main.rs`, its root) use each other
/// without a cycle: what several share lives in a module below them.
#[test]
fn the_conformance_examples_modules_form_no_cycle() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/conformance");
    let mut all = Vec::new();
    files(&dir, &mut all);
    let modules: Vec<(String, String)> = all
        .iter()
        .map(|file| (module_of(&dir, file), fs::read_to_string(file).unwrap()))
        .filter(|(module, _)| module != "main")
        .collect();
    let known: BTreeSet<&str> = modules.iter().map(|(m, _)| m.as_str()).collect();
    assert!(
        known.contains("handler") && known.contains("server"),
        "{known:?}"
    );
    let graph: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|(module, text)| (module.clone(), imports(module, text, &known)))
        .collect();
    assert!(
        graph["handler"].contains("server::Conformance"),
        "{graph:?}"
    );
    assert_no_cycle(&graph);
}

#[test]
fn the_check_sees_a_cycle() {
    let graph = |edges: &[(&str, &str)]| {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            graph
                .entry((*from).into())
                .or_default()
                .insert((*to).into());
            graph
                .entry(to.split("::").next().unwrap().into())
                .or_default();
        }
        graph
    };
    let circle = graph(&[("handler", "content::X"), ("content", "handler::Y")]);
    assert_eq!(
        cycle_in(&circle),
        Some(vec!["content".into(), "handler".into(), "content".into()])
    );
    assert_eq!(
        cycle_in(&graph(&[("a", "b::X"), ("b", "c"), ("a", "c")])),
        None
    );
}

#[test]
fn the_check_sees_an_upward_import() {
    let used = imports(
        "http::shed",
        "use crate::{\n    context::RequestFacts,\n    mcp::{McpServer, observe},\n};\nfn f() { crate::stack::x(); }",
        &layered_modules(),
    );
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        [
            "context::RequestFacts",
            "mcp::McpServer",
            "mcp::observe",
            "stack::x"
        ]
    );
    assert!(layer("mcp::observe") > layer("http::shed"));
}

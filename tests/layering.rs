//! The module layers of `src/lib.rs` hold: no module imports one of its own layer or above
//! (other than itself), so there is no import cycle between the top-level modules. A new upward
//! import fails here with the file, the line and the two layers.

use syncline_test_support as common;

/// Top-level modules by layer, lowest first (the same list as `src/lib.rs`'s doc).
const LAYERS: &[&[&str]] = &[
    &["duration", "failure", "allocator", "faults", "telemetry"],
    &["schema", "api"],
    &["xref"],
    &["adapters"],
    &["transforms"],
    &["config"],
    &["kafka"],
    &["runtime"],
    &["ops"],
    &["samples"],
    &["contract"],
    &["app"],
    &["cli"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a line refers to through `crate::NAME` or `crate::{NAME, ...}`.
fn referenced(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group.split('}').next().unwrap_or("").split(',').collect(),
            None => vec![rest],
        };
        for n in names {
            let name: String = n
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn no_module_imports_its_own_layer_or_above() {
    let src = common::repo_path("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = Vec::new();
    let mut unknown = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let Some(own) = layer(&top) else {
            unknown.push(format!("src/{} (module `{top}` is in no layer)", rel.display()));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for used in referenced(line) {
                if used == top {
                    continue;
                }
                match layer(&used) {
                    Some(l) if l < own => {}
                    Some(l) => upward.push(format!(
                        "src/{}:{}: `{top}` (layer {own}) uses `{used}` (layer {l})",
                        rel.display(),
                        n + 1
                    )),
                    None => unknown.push(format!("src/{}:{}: `crate::{used}`", rel.display(), n + 1)),
                }
            }
        }
    }
    assert!(unknown.is_empty(), "modules missing from LAYERS: {unknown:#?}");
    assert!(upward.is_empty(), "imports against the layers: {upward:#?}");
}

#[test]
fn the_layer_list_matches_lib_rs() {
    let lib = std::fs::read_to_string(common::repo_path("src/lib.rs")).unwrap();
    for (i, modules) in LAYERS.iter().enumerate() {
        let line = lib
            .lines()
            .find(|l| l.starts_with(&format!("//! {i}. ")))
            .unwrap_or_else(|| panic!("lib.rs names no layer {i}"));
        for m in *modules {
            assert!(line.contains(&format!("`{m}`")), "lib.rs layer {i} lacks `{m}`: {line}");
        }
    }
}

/// A source file over 400 lines says in its module doc why it is that long (#18).
#[test]
fn large_files_say_why_they_are_large() {
    let src = common::repo_path("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut silent = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let lines = text.lines().count();
        let doc: String = text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .collect::<Vec<_>>()
            .join(" ");
        if lines > 400 && !(doc.contains("lines") && (doc.contains("Why") || doc.contains("because"))) {
            silent.push(format!(
                "{} ({lines} lines)",
                file.strip_prefix(&src).unwrap().display()
            ));
        }
    }
    assert!(silent.is_empty(), "over 400 lines without saying why: {silent:?}");
}

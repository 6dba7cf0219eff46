//! Every public item of the Rust API outside the system layer (`src/sys`)
//! and the C ABI (`src/ffi`) is shown in use by code that runs: some
//! doctest of the crate (a code block in a `///` or `//!` comment, or in
//! README.md, which the crate includes as doctests) or some example program
//! (`examples/`) names it. What its doc comment says is not the test: a
//! sentence pointing elsewhere shows nothing.
//!
//! The scan reads the sources as text: a line that declares a `pub` item
//! (`fn`, `struct`, `enum`, `trait`, `const`, `static`, `type`, methods in
//! `impl` blocks included; `pub(crate)` and the like are not public). A
//! type, function, constant or trait is covered when its name appears as a
//! word in that code; a method (an indented `pub fn`) when the code calls it
//! (`.name(`, `::name(`, or passes it as `Type::name`).

use std::fs;
use std::path::{Path, PathBuf};

/// The directories (or files) under `src/` whose items are not the Rust
/// API or are checked apart: the system layer (crate-private), the C ABI
/// (documented in the header), and the system's plain values that every
/// layer names (`os.rs`, re-exported: see the last test).
const OUT_OF_SCOPE: [&str; 3] = ["sys", "ffi", "os"];

/// Item kinds that follow `pub` (after `const`, `unsafe` or `extern "C"`).
const KINDS: [&str; 7] = [
    "fn ", "struct ", "enum ", "trait ", "const ", "static ", "type ",
];

/// Public items no doctest or example names yet (each is used only
/// implicitly: a returned type, a trait bound, a method reached through
/// another). Their doc comments are to get examples; the test fails when
/// one of them is shown, so that it leaves this list.
const NOT_YET_SHOWN: [&str; 0] = [];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, skip: &[&str], files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read a source folder") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !skip.contains(&name) {
                rust_files(&path, skip, files);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let stem = path.file_stem().and_then(|n| n.to_str()).unwrap_or("");
            if !skip.contains(&stem) {
                files.push(path);
            }
        }
    }
}

/// The name a line declares, and whether it is a method (indented `fn`),
/// when it declares a public item.
fn public_item(line: &str) -> Option<(String, bool)> {
    let indented = line.starts_with(char::is_whitespace);
    let mut rest = line.trim_start().strip_prefix("pub ")?;
    for prefix in ["const fn ", "unsafe fn ", "extern \"C\" fn "] {
        if rest.starts_with(prefix) {
            rest = &rest[prefix.len() - 3..];
        }
    }
    let kind = KINDS.iter().find(|k| rest.starts_with(**k))?;
    let name: String = rest[kind.len()..]
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some((name, indented && *kind == "fn "))
}

/// The code of the fenced blocks that run, in `lines`: each line's text,
/// or `None` for a line that ends any block (code outside a comment).
fn fenced_code<'a>(
    lines: impl Iterator<Item = Option<&'a str>>,
    runs: impl Fn(&str) -> bool,
) -> String {
    let mut code = String::new();
    // Inside a block: whether it runs.
    let mut block: Option<bool> = None;
    for line in lines {
        let Some(line) = line else {
            block = None;
            continue;
        };
        if let Some(info) = line.trim_start().strip_prefix("```") {
            block = match block {
                None => Some(runs(info)),
                Some(_) => None,
            };
        } else if block == Some(true) {
            code.push_str(line);
            code.push('\n');
        }
    }
    code
}

/// The code of the fenced blocks in documentation comments (`///`, `//!`)
/// of a Rust source, as the doctests see it (`# ` hidden lines included);
/// `ignore`, `text` and `compile_fail` blocks do not run.
fn doc_code(source: &str) -> String {
    let lines = source.lines().map(|line| {
        let trimmed = line.trim_start();
        let doc = trimmed
            .strip_prefix("///")
            .or_else(|| trimmed.strip_prefix("//!"))?;
        Some(doc.strip_prefix(' ').unwrap_or(doc))
    });
    fenced_code(lines, |info| {
        !["ignore", "text", "compile_fail"]
            .iter()
            .any(|w| info.contains(w))
    })
}

/// The Rust blocks of a Markdown page that run as doctests (info string
/// `rust` or none).
fn markdown_rust(text: &str) -> String {
    fenced_code(text.lines().map(Some), |info| {
        info.is_empty() || info == "rust"
    })
}

/// All the code that runs and can show an item in use: the crate's
/// doctests and its example programs.
fn code_in_use() -> String {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &[], &mut files);
    let mut code: String = files
        .iter()
        .map(|f| doc_code(&fs::read_to_string(f).expect("read source")))
        .collect();
    code.push_str(&markdown_rust(
        &fs::read_to_string(root().join("README.md")).expect("README.md"),
    ));
    let mut examples = Vec::new();
    rust_files(&root().join("examples"), &["target"], &mut examples);
    for file in examples {
        code.push_str(&fs::read_to_string(file).expect("read example"));
    }
    code
}

/// Whether `code` holds `name` where `before` accepts the code before it,
/// and no word character follows it.
fn occurs(code: &str, name: &str, before: impl Fn(&str) -> bool) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(name)
        .any(|(at, _)| before(&code[..at]) && !code[at + name.len()..].starts_with(word))
}

/// Whether `code` holds `name` as a whole word.
fn has_word(code: &str, name: &str) -> bool {
    occurs(code, name, |before| {
        !before.ends_with(|c: char| c.is_alphanumeric() || c == '_')
    })
}

/// Whether `code` calls the method `name` or names it as a path.
fn calls(code: &str, name: &str) -> bool {
    occurs(code, name, |before| {
        before.ends_with('.') || before.ends_with("::")
    })
}

/// Whether an item declared on `line` (after `before`) sits in a module
/// named `sealed`: the sealed-trait pattern, public so that a public trait
/// can name it as a supertrait, but unreachable from outside the crate.
fn sealed(before: &[&str], line: &str) -> bool {
    let indent = |l: &str| l.len() - l.trim_start().len();
    before
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty() && indent(l) < indent(line))
        .is_some_and(|l| l.trim_end().ends_with("mod sealed {"))
}

/// The public items of `files` that `wanted` accepts, as `path:line: name`
/// with whether `code` shows each in use.
fn items(files: &[PathBuf], wanted: impl Fn(&str) -> bool, code: &str) -> Vec<(String, bool)> {
    let mut found = Vec::new();
    for file in files {
        let text = fs::read_to_string(file).expect("read source");
        let lines: Vec<&str> = text.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            let Some((name, method)) = public_item(line).filter(|_| wanted(line)) else {
                continue;
            };
            // An item that exists only while doctests are built is not API.
            let doctest_only = lines[..index]
                .iter()
                .rev()
                .map(|l| l.trim_start())
                .take_while(|l| l.starts_with("///") || l.starts_with("#[") || l.starts_with("//"))
                .any(|l| l.starts_with("#[cfg(doctest)]"));
            if doctest_only || sealed(&lines[..index], line) {
                continue;
            }
            let shown = if method {
                calls(code, &name)
            } else {
                has_word(code, &name)
            };
            let at = file.strip_prefix(root()).unwrap_or(file);
            found.push((format!("{}:{}: {name}", at.display(), index + 1), shown));
        }
    }
    found
}

#[test]
fn the_scan_finds_names_and_calls_as_words() {
    assert_eq!(
        public_item("pub fn pmap<F>(f: F)"),
        Some(("pmap".into(), false))
    );
    assert_eq!(
        public_item("    pub const fn new() -> Self"),
        Some(("new".into(), true))
    );
    assert_eq!(public_item("pub(crate) fn hidden()"), None);
    assert!(has_word("let q = Queue::new();", "Queue"));
    assert!(!has_word("let q = MyQueue::new();", "Queue"));
    assert!(calls("channel.receive_vec()?", "receive_vec"));
    assert!(!calls("channel.receive_vec()?", "receive"));
    assert!(calls("items.map(Outcome::is_ok)", "is_ok"));
    let module = [
        "pub(super) mod sealed {",
        "    /// Docs.",
        "    pub trait Storage {}",
    ];
    assert!(sealed(&module[..2], module[2]));
    assert!(!sealed(&["pub mod open {"], "    pub trait Storage {}"));
    let docs = "/// Text.\n/// ```\n/// let x = shown();\n/// ```\n/// ```ignore\n/// hidden();\n/// ```\nfn f() {}\n";
    assert!(has_word(&doc_code(docs), "shown") && !has_word(&doc_code(docs), "hidden"));
}

#[test]
fn every_public_item_is_shown_in_use_by_a_doctest_or_an_example() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &OUT_OF_SCOPE, &mut files);
    files.sort();
    let code = code_in_use();
    let found = items(&files, |_| true, &code);
    // The scan itself works: the API has well over a hundred public items.
    assert!(
        found.len() > 150,
        "only {} public items found: the scan is broken",
        found.len()
    );
    let name = |item: &str| item.rsplit(' ').next().unwrap_or("").to_string();
    let missing: Vec<&str> = found
        .iter()
        .filter(|(item, shown)| !shown && !NOT_YET_SHOWN.contains(&name(item).as_str()))
        .map(|(item, _)| item.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} public items are named by no doctest or example: show each in use \
         (a code block in its docs, or in the docs of what it belongs to):\n{}",
        missing.len(),
        found.len(),
        missing.join("\n")
    );
    let now_shown: Vec<&str> = NOT_YET_SHOWN
        .iter()
        .copied()
        .filter(|listed| {
            found
                .iter()
                .all(|(item, shown)| name(item) != *listed || *shown)
        })
        .collect();
    assert!(
        now_shown.is_empty(),
        "shown in use now: take {now_shown:?} off NOT_YET_SHOWN"
    );
}

/// The names `src/lib.rs` re-exports from the system's plain values
/// (`pub use os::{...};`): public API declared in `src/os.rs`.
fn reexported_from_os(lib: &str) -> Vec<String> {
    let start = lib
        .find("pub use os::{")
        .expect("lib.rs re-exports from os")
        + "pub use os::{".len();
    let end = start + lib[start..].find('}').expect("closing brace");
    lib[start..end]
        .split(',')
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .collect()
}

#[test]
fn the_system_types_the_crate_re_exports_are_shown_in_use_too() {
    let names =
        reexported_from_os(&fs::read_to_string(root().join("src/lib.rs")).expect("read lib.rs"));
    assert!(!names.is_empty());
    let files = vec![root().join("src/os.rs")];
    // Their declarations: an unindented `pub <kind> <Name>`.
    let declares = |line: &str| {
        !line.starts_with(char::is_whitespace)
            && public_item(line).is_some_and(|(name, _)| names.contains(&name))
    };
    let found = items(&files, declares, &code_in_use());
    assert_eq!(
        found.len(),
        names.len(),
        "each of {names:?} declared once in src/os.rs"
    );
    let missing: Vec<&str> = found
        .iter()
        .filter(|(_, shown)| !shown)
        .map(|(item, _)| item.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "re-exported from src/os.rs and named by no doctest or example:\n{}",
        missing.join("\n")
    );
}

//! Every public item of the Rust API outside the system layer (`src/sys`)
//! and the C ABI (`src/ffi`) shows how it is used: its documentation holds
//! a code block (a doctest, run by `cargo test --doc`), or it points to one
//! with an intra-doc link in a sentence that says so ("See the example on
//! [`Exchange`]").
//!
//! The scan reads the sources as text: a line that declares a `pub` item
//! (`fn`, `struct`, `enum`, `trait`, `const`, `static`, `type`, methods in
//! `impl` blocks included; `pub(crate)` and the like are not public) and the
//! `///` lines and attributes right above it.

use std::fs;
use std::path::{Path, PathBuf};

/// The directories under `src/` whose items are not the Rust API: the
/// system layer (crate-private) and the C ABI (documented in the header).
const OUT_OF_SCOPE: [&str; 2] = ["sys", "ffi"];

/// Item kinds that follow `pub` (after `const`, `unsafe` or `extern "C"`).
const KINDS: [&str; 7] = [
    "fn ", "struct ", "enum ", "trait ", "const ", "static ", "type ",
];

fn rust_files(dir: &Path, skip: &[&str], files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !skip.contains(&name) {
                rust_files(&path, skip, files);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// The item a line declares, when it declares a public one.
fn public_item(line: &str) -> Option<&str> {
    let rest = line.trim_start().strip_prefix("pub ")?;
    let mut kind = rest;
    for prefix in ["const fn ", "unsafe fn ", "extern \"C\" fn "] {
        if rest.starts_with(prefix) {
            kind = &rest[prefix.len() - 3..];
        }
    }
    KINDS.iter().any(|k| kind.starts_with(k)).then_some(rest)
}

/// Whether a doc comment shows its item in use, or links to where it is.
fn shows_use(doc: &str) -> bool {
    if doc.contains("```") {
        return true;
    }
    // A link in a sentence that names an example: "See the example on
    // [`Exchange`]", "as in [`Map`]'s example", "[`start`]'s example".
    let lower = doc.to_lowercase();
    lower.contains("example") && doc.contains("[`")
}

/// How many public items of `files` that `wanted` accepts there are, and
/// those (as `path:line: declaration`) whose docs show no use.
fn items_without_examples(
    files: &[PathBuf],
    wanted: impl Fn(&str) -> bool,
) -> (usize, Vec<String>) {
    let (mut scanned, mut missing) = (0, Vec::new());
    for file in files {
        let text = fs::read_to_string(file).expect("read source");
        let lines: Vec<&str> = text.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            let Some(item) = public_item(line).filter(|_| wanted(line)) else {
                continue;
            };
            let mut doc = Vec::new();
            let mut doctest_only = false;
            for above in lines[..index].iter().rev() {
                let above = above.trim_start();
                if let Some(text) = above.strip_prefix("///") {
                    doc.push(text);
                } else if above.starts_with("#[") {
                    doctest_only |= above.starts_with("#[cfg(doctest)]");
                } else if !above.starts_with("//") {
                    break;
                }
            }
            if doctest_only {
                // Exists only while doctests are built: not part of the API.
                continue;
            }
            scanned += 1;
            doc.reverse();
            if !shows_use(&doc.join("\n")) {
                missing.push(format!(
                    "{}:{}: pub {}",
                    file.display(),
                    index + 1,
                    item.trim_end_matches('{').trim()
                ));
            }
        }
    }
    (scanned, missing)
}

#[test]
fn every_public_item_has_an_example_or_links_to_one() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &OUT_OF_SCOPE, &mut files);
    files.sort();
    let (scanned, missing) = items_without_examples(&files, |_| true);
    // The scan itself works: the API has well over a hundred public items.
    assert!(
        scanned > 150,
        "only {scanned} public items found: the scan is broken"
    );
    assert!(
        missing.is_empty(),
        "{} public items have neither a code block in their docs nor a link to an example \
         (\"See the example on [`Item`]\"):\n{}",
        missing.len(),
        missing.join("\n")
    );
}

/// The names `src/lib.rs` re-exports from the system layer
/// (`pub use sys::{...};`): public API declared in `src/sys`.
fn reexported_from_sys(lib: &str) -> Vec<String> {
    let start = lib
        .find("pub use sys::{")
        .expect("lib.rs re-exports from sys")
        + "pub use sys::{".len();
    let end = start + lib[start..].find('}').expect("closing brace");
    lib[start..end]
        .split(',')
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .collect()
}

#[test]
fn the_system_types_the_crate_re_exports_have_examples_too() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let names =
        reexported_from_sys(&fs::read_to_string(root.join("src/lib.rs")).expect("read lib.rs"));
    assert!(!names.is_empty());
    let mut files = Vec::new();
    rust_files(&root.join("src/sys"), &[], &mut files);
    files.sort();
    // Their declarations: an unindented `pub <kind> <Name>`.
    let declares = |line: &str| {
        names.iter().any(|name| {
            KINDS.iter().any(|kind| {
                line.strip_prefix("pub ")
                    .and_then(|rest| rest.strip_prefix(kind))
                    .is_some_and(|rest| {
                        rest.starts_with(name.as_str())
                            && !rest[name.len()..]
                                .starts_with(|c: char| c.is_alphanumeric() || c == '_')
                    })
            })
        })
    };
    let (scanned, missing) = items_without_examples(&files, declares);
    assert_eq!(
        scanned,
        names.len(),
        "each of {names:?} declared once in src/sys"
    );
    assert!(
        missing.is_empty(),
        "re-exported from src/sys without an example:\n{}",
        missing.join("\n")
    );
}

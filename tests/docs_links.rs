//! README.md and the pages of docs/ hold together: every relative link and
//! anchor resolves, every test a page cites as `file::test_name` exists,
//! the C error table lists every code, and no page but the generated
//! benchmark page tells the story of past work (that is CHANGELOG.md's and
//! git's).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Pages that other branches of this project's work write, linked before
/// they arrive. While one is absent, links to it are not checked; once it
/// exists, the test fails until it leaves this list, so that its links are
/// checked like any other.
const PROVIDED_BY_OTHER_BRANCHES: [&str; 0] = [];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and docs/*.md.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    let docs: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .expect("a docs/ folder")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.extend(docs);
    pages.sort();
    pages
}

/// The text of a page outside fenced blocks and inline code spans, line by
/// line (code may hold anything, links included, that is not a link).
fn prose(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            lines.push(String::new());
            continue;
        }
        if in_block {
            lines.push(String::new());
            continue;
        }
        let mut out = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                out.push_str(part);
            } else {
                out.push_str("``");
            }
        }
        lines.push(out);
    }
    lines
}

/// The anchors a page's headings get on a code host: lower case, letters,
/// digits, `-` and `_` kept, spaces made `-`, the rest dropped; a repeated
/// anchor gets `-1`, `-2`, ...
fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut found = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let slug: String = title
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let count = seen.entry(slug.clone()).or_insert(0);
        found.push(if *count == 0 {
            slug.clone()
        } else {
            format!("{slug}-{count}")
        });
        *count += 1;
    }
    found
}

/// The targets of the Markdown links `[text](target)` in a page's prose.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in prose(text).iter().enumerate() {
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            found.push((n + 1, after[..end].trim().to_string()));
            rest = &after[end..];
        }
    }
    found
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let pages = pages();
    assert!(
        pages.len() >= 7,
        "README.md and docs/*.md: only {pages:?} found"
    );
    let mut checked = 0;
    let mut broken = Vec::new();
    for page in &pages {
        let text = fs::read_to_string(page).unwrap();
        let dir = page.parent().unwrap();
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let file = if path.is_empty() {
                page.clone()
            } else {
                dir.join(path)
            };
            let at = format!("{}:{line}: ({target})", page.display());
            let pending = PROVIDED_BY_OTHER_BRANCHES
                .iter()
                .any(|p| root().join(p) == file && !file.exists());
            if pending {
                continue;
            }
            if !file.exists() {
                broken.push(format!("{at}: no {}", file.display()));
                continue;
            }
            if let Some(anchor) = anchor {
                let target_text = fs::read_to_string(&file).unwrap_or_default();
                if !anchors(&target_text).iter().any(|a| a == anchor) {
                    broken.push(format!("{at}: no heading #{anchor} in {}", file.display()));
                }
            }
        }
    }
    assert!(
        checked > 30,
        "only {checked} relative links found: the scan is broken"
    );
    let arrived: Vec<&str> = PROVIDED_BY_OTHER_BRANCHES
        .iter()
        .copied()
        .filter(|p| root().join(p).exists())
        .collect();
    assert!(
        arrived.is_empty(),
        "{arrived:?} exist now: take them off PROVIDED_BY_OTHER_BRANCHES"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn headings_give_the_anchors_a_code_host_gives_them() {
    let text = "# pprocess in a `#![no_std]` binary\n## Two commands\n## Two commands\n\
                ```sh\n# not a heading\n```\n## C++ and `pp_*`\n";
    assert_eq!(
        anchors(text),
        [
            "pprocess-in-a-no_std-binary",
            "two-commands",
            "two-commands-1",
            "c-and-pp_"
        ]
    );
    assert_eq!(
        links("[a](x.md#y) `[b](not-a-link)` [c](https://example.org)"),
        [
            (1, "x.md#y".to_string()),
            (1, "https://example.org".to_string())
        ]
    );
}

/// The test functions a page cites as `tests/file.rs::name` or
/// `c-tests/file.c::name`, as (page, file, name).
fn cited_tests(page: &Path, text: &str) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for span in text.split('`').skip(1).step_by(2) {
        let Some((file, name)) = span.split_once("::") else {
            continue;
        };
        if (file.starts_with("tests/") || file.starts_with("c-tests/"))
            && name.chars().all(|c| c.is_alphanumeric() || c == '_')
        {
            found.push((
                page.display().to_string(),
                file.to_string(),
                name.to_string(),
            ));
        }
    }
    found
}

#[test]
fn every_test_a_page_cites_exists() {
    let mut cited = Vec::new();
    for page in pages() {
        cited.extend(cited_tests(&page, &fs::read_to_string(&page).unwrap()));
    }
    assert!(
        cited.len() >= 20,
        "only {} cited tests found: the scan is broken",
        cited.len()
    );
    let missing: Vec<String> = cited
        .iter()
        .filter(|(_, file, name)| {
            let source = fs::read_to_string(root().join(file)).unwrap_or_default();
            let rust = format!("fn {name}(");
            let c = format!("{name}(void)");
            !(source.contains(&rust) || source.contains(&c))
        })
        .map(|(page, file, name)| format!("{page}: {file}::{name}"))
        .collect();
    assert!(
        missing.is_empty(),
        "cited tests that do not exist:\n{}",
        missing.join("\n")
    );
}

/// The library codes the C header defines, as `(NAME, value)`: each
/// `#define PP_E<NAME> (<value>)` line (the C ABI's unit test checks them
/// against the Rust table).
fn header_codes() -> Vec<(String, i32)> {
    let header = fs::read_to_string(root().join("include/pprocess.h")).unwrap();
    header
        .lines()
        .filter_map(|line| {
            let (name, value) = line.strip_prefix("#define PP_E")?.split_once(' ')?;
            let value = value.strip_prefix('(')?.strip_suffix(')')?.parse().ok()?;
            Some((name.to_string(), value))
        })
        .collect()
}

/// docs/c.md's error table lists every library code with its value
/// (`PP_<NAME>` followed by the number), as the C header defines them.
#[test]
fn the_c_error_table_lists_every_library_code() {
    let text = fs::read_to_string(root().join("docs/c.md")).unwrap();
    let codes = header_codes();
    // The scan itself works: the header defines a code for each of
    // `pprocess::error::code`'s constants, from CLOSED to THREADS.
    assert!(codes.contains(&("CLOSED".to_string(), pprocess::error::code::CLOSED)));
    assert!(codes.contains(&("THREADS".to_string(), pprocess::error::code::THREADS)));
    let missing: Vec<String> = codes
        .iter()
        .map(|(name, value)| format!("| `PP_E{name}` ({value}) |"))
        .filter(|row| !text.contains(row.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/c.md's error table lacks: {missing:?}"
    );
}

/// Phrases of a work log, which belong to CHANGELOG.md and git.
const NARRATIVE: [&str; 8] = [
    "before this work",
    "this session",
    "another engineer",
    "other engineers",
    "load average",
    "issue 1",
    "issue #",
    "the commit before",
];

/// A word that looks like a commit hash: 7 to 40 hexadecimal digits with
/// both a letter and a digit.
fn looks_like_a_hash(word: &str) -> bool {
    (7..=40).contains(&word.len())
        && word
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        && word.chars().any(|c| c.is_ascii_digit())
        && word.chars().any(|c| c.is_ascii_alphabetic())
}

#[test]
fn no_page_tells_the_story_of_past_work() {
    let mut found = Vec::new();
    for page in pages() {
        if page.ends_with("docs/benchmarks.md") {
            continue; // generated: its notes state the machine's load
        }
        let text = fs::read_to_string(&page).unwrap();
        for (n, line) in prose(&text).iter().enumerate() {
            let lower = line.to_lowercase();
            for phrase in NARRATIVE {
                if lower.contains(phrase) {
                    found.push(format!("{}:{}: {phrase:?}", page.display(), n + 1));
                }
            }
            for word in line.split(|c: char| !c.is_alphanumeric()) {
                if looks_like_a_hash(word) {
                    found.push(format!("{}:{}: {word} (a commit?)", page.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "history in the docs:\n{}",
        found.join("\n")
    );
    assert!(looks_like_a_hash("b2f7022") && !looks_like_a_hash("deadbeef"));
}

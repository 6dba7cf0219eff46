//! The README's code is the tested code. Every fenced block in README.md is
//! run by a test (the inventory below says which, and fails when a block is
//! added or removed without it): the two commands, the Rust quick start as
//! the new project it describes (and the Rust blocks of docs/*.md in that
//! same project), the C quick start built with the strict flags and its
//! build commands as written, the C persistent example of
//! docs/persistent.md, and the figures `benches/report.py` writes.
#![cfg(feature = "std")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;
use common::{block, blocks, c_lib, readme, root, run, run_ok, scratch, section, SYSLIBS};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Cargo builds of a whole project: minutes on a loaded machine.
const BUILD_TIMEOUT: Duration = Duration::from_secs(900);

/// A page of docs/.
fn doc(name: &str) -> String {
    std::fs::read_to_string(root().join("docs").join(name))
        .unwrap_or_else(|e| panic!("docs/{name}: {e}"))
}

/// Writes `program` as `{name}.c` in a scratch directory and builds it with
/// the strict flags against this run's static library.
fn build_c(program: &str, name: &str) -> PathBuf {
    let dir = scratch("readme");
    let source = dir.join(format!("{name}.c"));
    std::fs::write(&source, program).unwrap();
    let binary = dir.join(name);
    let built = Command::new("cc")
        .args([
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Wpedantic",
            "-Werror",
            "-I",
        ])
        .arg(root().join("include"))
        .arg(&source)
        .arg("-o")
        .arg(&binary)
        .arg(c_lib().join("libpprocess.a"))
        .args(SYSLIBS)
        .output()
        .expect("cc runs");
    assert!(
        built.status.success(),
        "{name}.c does not build:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    binary
}

/// The first `sh` block of a section.
fn first_sh(section: &str) -> String {
    blocks(section, "sh")
        .into_iter()
        .next()
        .expect("a sh block")
}

/// The fenced blocks of a Markdown text, as (the `## ` section they are
/// in, their info string), in order.
fn fenced_blocks(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut heading = String::new();
    let mut in_block = false;
    for line in text.lines() {
        if let Some(info) = line.strip_prefix("```") {
            if !in_block {
                found.push((heading.clone(), info.to_string()));
            }
            in_block = !in_block;
        } else if !in_block && line.starts_with("## ") {
            heading = line.to_string();
        }
    }
    assert!(!in_block, "an unclosed fenced block");
    found
}

/// Every fenced block of the README: its section, its info string, and the
/// test that runs it (or the output a test compares).
const README_BLOCKS: &[(&str, &str, &str)] = &[
    (
        "## Two commands",
        "sh",
        "the_two_commands_are_cargo_run_and_cargo_test (the second is CI's `cargo test`)",
    ),
    (
        "## Rust quick start",
        "sh",
        "the_rust_quick_start_builds_and_runs_as_a_new_project_beside_the_clone",
    ),
    (
        "## Rust quick start",
        "rust",
        "the_rust_quick_start_builds_and_runs_as_a_new_project_beside_the_clone, and a doctest",
    ),
    (
        "## C quick start",
        "c",
        "the_c_quick_start_builds_strictly_and_prints_what_the_readme_says",
    ),
    (
        "## C quick start",
        "text",
        "the_c_quick_start_builds_strictly_and_prints_what_the_readme_says",
    ),
    (
        "## C quick start",
        "sh",
        "the_c_quick_start_build_commands_work_as_written",
    ),
    ("## Using pprocess from C", "sh", "tests/install.rs"),
    ("## Using pprocess from C", "sh", "tests/install.rs"),
    ("## Using pprocess from Python", "python", "tests/python.rs"),
    ("## Using pprocess from Python", "text", "tests/python.rs"),
    ("## Using pprocess from Python", "python", "tests/python.rs"),
    ("## Using pprocess from Python", "python", "tests/python.rs"),
    (
        "## Testing code that uses pprocess",
        "rust",
        "tests/new_project.rs (as a test of a new project), and a doctest",
    ),
];

#[test]
fn every_readme_block_is_one_a_test_runs() {
    let found = fenced_blocks(&readme());
    let expected: Vec<(String, String)> = README_BLOCKS
        .iter()
        .map(|(heading, info, _)| (heading.to_string(), info.to_string()))
        .collect();
    assert_eq!(
        found, expected,
        "the README's fenced blocks changed: give each new one a test that runs it, \
         and list it in README_BLOCKS"
    );
}

#[test]
fn the_c_quick_start_builds_strictly_and_prints_what_the_readme_says() {
    let binary = build_c(&block(&readme(), "## C quick start", "c"), "quickstart");
    let ran = run_ok(&mut Command::new(&binary), TIMEOUT);
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        block(section(&readme(), "## C quick start"), "It prints", "text")
    );
}

/// The C quick start's shell block, as written, in a directory laid out as
/// the repository root: `quickstart.c`, `include/` and `target/release`
/// (where `make` put the libraries; here `c_lib()` ran that `make`).
#[test]
fn the_c_quick_start_build_commands_work_as_written() {
    let readme = readme();
    let section = section(&readme, "## C quick start");
    let commands = first_sh(section);
    let mut lines = commands.lines();
    assert_eq!(lines.next(), Some("make"), "the block starts with `make`");
    let rest: Vec<&str> = lines.collect();
    let dir = scratch("readme-c-commands");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("target")).unwrap();
    std::os::unix::fs::symlink(root().join("include"), dir.join("include")).unwrap();
    std::os::unix::fs::symlink(c_lib(), dir.join("target/release")).unwrap();
    std::fs::write(
        dir.join("quickstart.c"),
        block(&readme, "## C quick start", "c"),
    )
    .unwrap();
    let ran = run_ok(
        Command::new("sh")
            .args(["-e", "-c", &rest.join("\n")])
            .current_dir(&dir),
        TIMEOUT,
    );
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        block(section, "It prints", "text")
    );
}

#[test]
fn the_c_persistent_example_collects_in_one_run_or_in_the_next() {
    let page = doc("persistent.md");
    let binary = build_c(&block(&page, "## In C", "c"), "background");
    let expected = block(&page, "Either way it prints", "text");
    let dir = scratch("readme-background");
    let socket = dir.join("squares.socket");
    let _ = std::fs::remove_file(&socket);
    // Both in one run.
    let once = run_ok(Command::new(&binary).current_dir(&dir), TIMEOUT);
    assert_eq!(String::from_utf8_lossy(&once.stdout), expected);
    assert!(
        !socket.exists(),
        "the background process removes its socket"
    );
    // Started by one run, collected by the next.
    let started = run_ok(
        Command::new(&binary).arg("--start").current_dir(&dir),
        TIMEOUT,
    );
    assert!(socket.exists(), "the background process is listening");
    let collected = run_ok(
        Command::new(&binary).arg("--collect").current_dir(&dir),
        TIMEOUT,
    );
    let both = [started.stdout, collected.stdout].concat();
    assert_eq!(String::from_utf8_lossy(&both), expected);
    assert!(
        !socket.exists(),
        "the background process removes its socket"
    );
}

/// The two commands are `cargo run ...` and `cargo test`; the first, run as
/// written (with quick calculations), prints the grid the README describes.
#[test]
fn the_two_commands_are_cargo_run_and_cargo_test() {
    let readme = readme();
    let section = section(&readme, "## Two commands");
    let commands = first_sh(section);
    let lines: Vec<&str> = commands.lines().collect();
    let [first, "cargo test"] = lines.as_slice() else {
        panic!("the block is not two commands, the second `cargo test`: {lines:?}");
    };
    assert!(
        section.contains(
            "then prints the numbers 0 to 99, ten\nto a line in order, and `Time taken:`"
        ),
        "the README no longer says what the first command prints"
    );
    for reuse in [false, true] {
        let mut command = Command::new("sh");
        command
            .args(["-e", "-c", first])
            .current_dir(root())
            .env("PP_DELAY", "0.01");
        if reuse {
            command.env("PP_REUSE", "1");
        }
        let out = run_ok(&mut command, BUILD_TIMEOUT);
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 11, "{text}");
        for (i, line) in lines[..10].iter().enumerate() {
            let want: Vec<String> = (0..10).map(|j| (i * 10 + j).to_string()).collect();
            assert_eq!(*line, want.join(" "), "row {i} (reuse={reuse})");
        }
        assert!(lines[10].starts_with("Time taken: "), "{}", lines[10]);
    }
}

/// What a Rust code block of a page says it prints: the text of
/// "It prints `...`" after the block.
fn said_to_print(after_block: &str) -> Option<&str> {
    let start = after_block.find("It prints `")? + "It prints `".len();
    let len = after_block[start..].find('`')?;
    Some(&after_block[start..start + len])
}

/// The Rust blocks of docs/*.md (complete programs; `rust,ignore` blocks
/// are shown files that other tests build, and blocks with `#[test]`
/// functions are test code that tests/new_project.rs runs), with what each
/// says it prints.
fn docs_rust_programs() -> Vec<(String, String, String)> {
    let mut programs = Vec::new();
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap();
        let name = page
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .replace('-', "_");
        let fence = "```rust\n";
        let mut rest = text.as_str();
        let mut n = 0;
        while let Some(start) = rest.find(fence) {
            let body = &rest[start + fence.len()..];
            let len = body.find("```").expect("a closing fence");
            let after = &body[len + 3..];
            if body[..len].contains("#[test]") {
                // Test code, not a program: tests/new_project.rs runs it
                // with `cargo test` in a new project.
                rest = after;
                continue;
            }
            let printed =
                said_to_print(after.split("```").next().unwrap_or("")).unwrap_or_else(|| {
                    panic!("docs/{name}.md: a Rust block without \"It prints `...`\" after it")
                });
            programs.push((
                format!("{name}_{n}"),
                body[..len].to_string(),
                printed.to_string(),
            ));
            n += 1;
            rest = after;
        }
    }
    programs
}

#[test]
fn the_rust_quick_start_builds_and_runs_as_a_new_project_beside_the_clone() {
    let readme = readme();
    let section = section(&readme, "## Rust quick start");
    let commands = first_sh(section);
    let program = &blocks(section, "rust")[0];
    // The layout the README describes: the clone in pprocess/ (here a link to
    // this repository), and the project the commands make beside it.
    let dir = scratch("outside-project");
    let clone = dir.join("pprocess");
    let hello = dir.join("hello");
    let _ = std::fs::remove_file(&clone);
    let _ = std::fs::remove_dir_all(&hello);
    std::os::unix::fs::symlink(root(), &clone).unwrap();
    // The commands as written; offline, since the dependency is a path.
    run_ok(
        Command::new("sh")
            .args(["-e", "-c", &commands])
            .current_dir(&dir)
            .env("CARGO_NET_OFFLINE", "true")
            .env_remove("CARGO_TARGET_DIR"),
        TIMEOUT,
    );
    // The line `cargo add` wrote is the one the README quotes; the project
    // is then built with the README's shorter line in its place.
    let manifest = std::fs::read_to_string(hello.join("Cargo.toml")).unwrap();
    let added = manifest
        .split_once("[dependencies]\n")
        .expect("a [dependencies] table")
        .1
        .lines()
        .find(|line| line.starts_with("pprocess = "))
        .expect("cargo add wrote a pprocess line");
    assert!(
        section.contains(&format!("`{added}`")),
        "the README does not quote the line `cargo add` wrote: {added}"
    );
    let short = "pprocess = { path = \"../pprocess\" }";
    assert!(section.contains(&format!("`{short}`")));
    std::fs::write(hello.join("Cargo.toml"), manifest.replace(added, short)).unwrap();
    std::fs::write(hello.join("src/main.rs"), program).unwrap();
    // The Rust programs of docs/ are built in the same project, as examples.
    let docs = docs_rust_programs();
    std::fs::create_dir_all(hello.join("examples")).unwrap();
    for (name, source, _) in &docs {
        std::fs::write(hello.join("examples").join(format!("{name}.rs")), source).unwrap();
    }
    // The repository's lock, so that the same dependency versions build.
    std::fs::copy(root().join("Cargo.lock"), hello.join("Cargo.lock")).unwrap();
    let target = dir.join("target");
    let cargo = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO"));
        command
            .current_dir(&hello)
            .env("CARGO_NET_OFFLINE", "true")
            .args(args)
            .arg("--target-dir")
            .arg(&target);
        command
    };
    let ran = run_ok(&mut cargo(&["run", "--quiet"]), BUILD_TIMEOUT);
    let printed = String::from_utf8_lossy(&ran.stdout);
    let said = format!("It prints `{}`", printed.trim());
    assert!(
        section.contains(&said),
        "the Rust quick start printed {printed:?}, not what the README says"
    );
    for (name, _, expected) in &docs {
        let ran = run_ok(
            &mut cargo(&["run", "--quiet", "--example", name]),
            BUILD_TIMEOUT,
        );
        assert_eq!(
            String::from_utf8_lossy(&ran.stdout).trim(),
            expected,
            "the Rust block {name} of docs/ printed something else"
        );
    }
}

/// The README's table of figures and the figures in README.md and docs/
/// are what `benches/report.py` renders from docs/benchmarks.csv, and so is
/// docs/benchmarks.md: a hand edit of any of them fails here.
#[test]
fn the_figures_are_what_the_benchmark_script_renders() {
    let script = root().join("benches/report.py");
    let checked = run(
        Command::new("python3")
            .arg(&script)
            .arg("check")
            .current_dir(root()),
        TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("python3 benches/report.py check: {e}"));
    assert!(
        checked.status.success(),
        "benches/report.py check:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    // The check itself looks: the README has the generated table.
    let readme = readme();
    let table = readme
        .split_once("<!-- begin benches/report.py: headline -->")
        .and_then(|(_, rest)| rest.split_once("<!-- end benches/report.py: headline -->"))
        .map(|(table, _)| table)
        .expect("the README's headline markers");
    assert!(
        table.lines().filter(|l| l.starts_with('|')).count() > 5,
        "the headline table is empty:\n{table}"
    );
    assert!(Path::new(&script).is_file());
}

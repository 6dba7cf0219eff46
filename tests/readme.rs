//! The README's quick starts are the tested code: the C program is extracted,
//! built with the strict flags and run; the Rust quick start is built as the
//! new project it describes, beside the clone, and run (it also runs as a
//! doctest); the Rust example binary is run.
#![cfg(feature = "std")]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

mod common;
use common::{block, blocks, c_lib, readme, root, run_ok, scratch, section, SYSLIBS};

/// Extracts the first C block under `heading`, builds it with the strict
/// flags against this run's static library, and returns the program.
fn build_readme_c(heading: &str, name: &str) -> PathBuf {
    let program = block(&readme(), heading, "c");
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
        "the README's C block under {heading:?} does not build:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    binary
}

const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn the_c_quick_start_builds_strictly_and_prints_what_the_readme_says() {
    let binary = build_readme_c("## C quick start", "quickstart");
    let ran = run_ok(&mut Command::new(&binary), TIMEOUT);
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        block(section(&readme(), "## C quick start"), "It prints", "text")
    );
}

#[test]
fn the_c_background_quick_start_collects_in_one_run_or_in_the_next() {
    let binary = build_readme_c("## Background processes", "background");
    let expected = block(&readme(), "Either way it prints", "text");
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

#[test]
fn the_rust_example_prints_the_grid_in_order() {
    for reuse in [false, true] {
        let mut command = Command::new(env!("CARGO"));
        command
            .current_dir(root())
            .args(["run", "--quiet", "--example", "pmap"])
            .env("PP_DELAY", "0.01");
        if reuse {
            command.env("PP_REUSE", "1");
        }
        let out = command.output().expect("cargo runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
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

#[test]
fn the_rust_quick_start_builds_and_runs_as_a_new_project_beside_the_clone() {
    let readme = readme();
    let section = section(&readme, "## Rust quick start");
    let dependency = &blocks(section, "toml")[0];
    let program = &blocks(section, "rust")[0];
    // The layout the README describes: the clone in pprocess/ (here a link to
    // this repository), the new project in hello/ beside it, as `cargo new
    // hello` makes it, with the README's lines added.
    let dir = scratch("outside-project");
    let clone = dir.join("pprocess");
    let _ = std::fs::remove_file(&clone);
    std::os::unix::fs::symlink(root(), &clone).unwrap();
    let hello = dir.join("hello");
    std::fs::create_dir_all(hello.join("src")).unwrap();
    let manifest = "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n";
    std::fs::write(hello.join("Cargo.toml"), format!("{manifest}{dependency}")).unwrap();
    std::fs::write(hello.join("src/main.rs"), program).unwrap();
    // The repository's lock, so that the same dependency versions build.
    std::fs::copy(root().join("Cargo.lock"), hello.join("Cargo.lock")).unwrap();
    let ran = run_ok(
        Command::new(env!("CARGO"))
            .current_dir(&hello)
            .args(["run", "--quiet", "--target-dir"])
            .arg(dir.join("target")),
        Duration::from_secs(600),
    );
    let printed = String::from_utf8_lossy(&ran.stdout);
    let said = format!("It prints `{}`", printed.trim());
    assert!(
        section.contains(&said),
        "the Rust quick start printed {printed:?}, not what the README says"
    );
}

/// The README's C error-code table lists every library code with its value
/// (`PP_<NAME>` followed by the number), as `pprocess::error::ALL_CODES` has them.
#[test]
fn the_readme_error_table_lists_every_library_code() {
    let text = readme();
    let missing: Vec<String> = pprocess::error::ALL_CODES
        .iter()
        .map(|(name, value)| format!("| `PP_E{name}` ({value}) |"))
        .filter(|row| !text.contains(row.as_str()))
        .collect();
    assert!(missing.is_empty(), "README error table lacks: {missing:?}");
}

//! The README's quick starts are the tested code: the C program is extracted,
//! built with the strict flags and run; the Rust example binary is run. (The
//! Rust quick start itself runs as a doctest.)
#![cfg(feature = "std")]

use std::path::PathBuf;
use std::process::Command;

mod common;
use common::{block, lib_dir, root, SYSLIBS};

#[test]
fn the_c_quick_start_builds_strictly_and_prints_what_the_readme_says() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let program = block(&readme, "## C quick start", "c");
    let expected = block(&readme, "It prints", "text");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("readme");
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("quickstart.c");
    std::fs::write(&source, program).unwrap();
    let binary = dir.join("quickstart");
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
        .arg(lib_dir().join("libpprocess.a"))
        .args(SYSLIBS)
        .output()
        .expect("cc runs");
    assert!(
        built.status.success(),
        "the README's C quick start does not build:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let ran = Command::new(&binary)
        .output()
        .expect("the quick start runs");
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ran.stdout), expected);
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

//! The core builds as `#![no_std]`: without an allocator (sys, wire,
//! channel, process, the fixed-capacity exchange), and with `alloc` alone;
//! and examples/nostd-minimal, an outside `#![no_std]` `#![no_main]` crate
//! that depends on the root manifest with `default-features = false`, builds
//! with nothing else, runs and stays small.
//!
//! The builds are packaging checks (named packaging_*: each builds the
//! crate again), which `cargo test -- --skip packaging_` leaves out.

mod skip;
use skip::skip_expected;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

mod common;
use common::{blocks, describe, root, run, run_ok, scratch, section};

fn build_core(features: &[&str]) {
    let root = env!("CARGO_MANIFEST_DIR");
    let target = concat!(env!("CARGO_TARGET_TMPDIR"), "/no-std");
    let mut command = Command::new(env!("CARGO"));
    command
        .current_dir(root)
        .args(["build", "--quiet", "--lib", "--no-default-features"])
        .args(["--target-dir", target]);
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    let out = command.output().expect("cargo runs");
    assert!(
        out.status.success(),
        "no_std build with features {features:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn packaging_the_core_builds_without_std_or_alloc() {
    build_core(&[]);
}

#[test]
fn packaging_the_core_builds_with_alloc_but_without_std() {
    build_core(&["alloc"]);
}

/// Stripped size budget of examples/nostd-minimal.
const NOSTD_MINIMAL_MAX_BYTES: u64 = 32 * 1024;

/// examples/nostd-minimal, or `None` (with a note) where it is absent: the
/// published crate leaves it out, as cargo leaves out every nested package.
fn example() -> Option<PathBuf> {
    let example = root().join("examples/nostd-minimal");
    if example.join("Cargo.toml").is_file() {
        Some(example)
    } else {
        skip_expected(&format!(
            "{} is not here (a packaged crate)",
            example.display()
        ));
        None
    }
}

#[test]
fn packaging_an_outside_no_std_crate_builds_against_the_root_manifest_runs_and_stays_small() {
    let Some(example) = example() else { return };
    let timeout = Duration::from_secs(300);
    let dir = scratch("nostd-minimal");
    let manifest = example.join("Cargo.toml");
    run_ok(
        Command::new(env!("CARGO"))
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(dir.join("target")),
        timeout,
    );
    let binary = dir.join("target/release/nostd-minimal");

    // It exits with the sum of its four children's answers: 1 + 4 + 9 + 16.
    let output = run(&mut Command::new(&binary), timeout).unwrap();
    assert_eq!(output.status.code(), Some(30), "{}", describe(&output));

    let stripped = dir.join("nostd-minimal.stripped");
    std::fs::copy(&binary, &stripped).unwrap();
    run_ok(Command::new("strip").arg(&stripped), timeout);
    let size = std::fs::metadata(&stripped).unwrap().len();
    println!("examples/nostd-minimal: {size} bytes stripped");
    assert!(
        size <= NOSTD_MINIMAL_MAX_BYTES,
        "examples/nostd-minimal is {size} bytes stripped, over its {NOSTD_MINIMAL_MAX_BYTES}-byte budget \
         (see what takes the space with `nm --size-sort -S`)"
    );
}

#[test]
fn docs_no_std_shows_the_no_std_example_as_it_is() {
    let Some(example) = example() else { return };
    let page = std::fs::read_to_string(root().join("docs/no_std.md")).unwrap();
    let section = section(&page, "## The minimal binary");
    for (language, file) in [("toml", "Cargo.toml"), ("rust,ignore", "src/main.rs")] {
        let shown = blocks(section, language);
        let actual = std::fs::read_to_string(example.join(file)).unwrap();
        assert_eq!(
            shown.first(),
            Some(&actual),
            "docs/no_std.md must show examples/nostd-minimal/{file} as it is"
        );
    }
}

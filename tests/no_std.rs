//! The core builds as `#![no_std]`: without an allocator (sys, wire,
//! channel, process, the fixed-capacity exchange), and with `alloc` alone.

use std::process::Command;

fn build_core(features: &[&str]) {
    let root = env!("CARGO_MANIFEST_DIR");
    let target = concat!(env!("CARGO_TARGET_TMPDIR"), "/no-std");
    let mut command = Command::new(env!("CARGO"));
    command
        .current_dir(root)
        // A staticlib or cdylib needs a panic handler, which a no_std library
        // cannot provide; a no_std user links the rlib.
        .args(["rustc", "--quiet", "--lib", "--crate-type", "rlib"])
        .args(["--no-default-features", "--target-dir", target]);
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
fn the_core_builds_without_std_or_alloc() {
    build_core(&[]);
}

#[test]
fn the_core_builds_with_alloc_but_without_std() {
    build_core(&["alloc"]);
}

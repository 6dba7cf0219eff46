//! Release hygiene: the manifest's `rust-version` is one the locked
//! dependencies accept, the licence files it names exist, and the published
//! crate holds what its own tests and its C build need (and not CI's script).

use std::process::Command;
use std::time::Duration;

mod common;
mod skip;
use common::{root, run_ok};
use skip::skip_expected;

const TIMEOUT: Duration = Duration::from_secs(120);

/// "1.87" or "1.87.0" as numbers, for comparing.
fn version(text: &str) -> Vec<u32> {
    let mut parts: Vec<u32> = text.split('.').map(|n| n.parse().unwrap()).collect();
    parts.resize(3, 0);
    parts
}

/// Lists "rust-version name version" for every package that building the
/// crate (default features) compiles, from `cargo metadata`: the packages
/// reachable from the root through normal and build dependencies.
///
/// The metadata is filtered to the host platform: unfiltered, cargo needs
/// the manifest of every locked package, including wasm-only crates that no
/// build on this machine downloads, and an offline run on a fresh machine
/// fails on them.
const REACHABLE: &str = r#"
import json, sys
meta = json.load(sys.stdin)
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
root = meta["resolve"]["root"]
seen, todo = set(), [root]
while todo:
    node = todo.pop()
    if node in seen:
        continue
    seen.add(node)
    for dep in nodes[node]["deps"]:
        if any(kind["kind"] in (None, "build") for kind in dep["dep_kinds"]):
            todo.append(dep["pkg"])
for node in sorted(seen - {root}):
    p = packages[node]
    if p.get("rust_version"):
        print(p["rust_version"], p["name"], p["version"])
"#;

#[test]
fn packaging_the_declared_rust_version_covers_every_locked_dependency() {
    let declared = env!("CARGO_PKG_RUST_VERSION");
    let host = run_ok(Command::new("rustc").arg("-vV"), TIMEOUT);
    let host = String::from_utf8(host.stdout).unwrap();
    let host = host
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .expect("rustc -vV names the host");
    let metadata = run_ok(
        Command::new(env!("CARGO")).current_dir(root()).args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--offline",
            "--filter-platform",
            host,
        ]),
        TIMEOUT,
    );
    let metadata_file = common::scratch("package").join("metadata.json");
    std::fs::write(&metadata_file, &metadata.stdout).unwrap();
    let listed = run_ok(
        Command::new("python3")
            .args(["-c", REACHABLE])
            .stdin(std::fs::File::open(&metadata_file).unwrap()),
        TIMEOUT,
    );
    let listed = String::from_utf8(listed.stdout).unwrap();
    let newest = listed
        .lines()
        .map(|line| line.split_once(' ').unwrap())
        .max_by_key(|(needs, _)| version(needs))
        .expect("some dependency declares a rust-version");
    assert!(
        version(declared) >= version(newest.0),
        "Cargo.toml says rust-version = {declared:?}, but the locked {} needs Rust {}",
        newest.1,
        newest.0
    );
}

#[test]
fn the_licence_files_the_manifest_names_are_there() {
    assert_eq!(env!("CARGO_PKG_LICENSE"), "MIT OR Apache-2.0");
    for (file, text) in [
        (
            "LICENSE-MIT",
            "Permission is hereby granted, free of charge",
        ),
        (
            "LICENSE-APACHE",
            "Apache License\n                           Version 2.0",
        ),
    ] {
        let body =
            std::fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(body.contains(text), "{file} is not the standard text");
    }
}

#[test]
fn packaging_the_published_crate_holds_what_its_tests_and_c_build_need() {
    if root().join("Cargo.toml.orig").exists() {
        return skip_expected("this is the published crate, which cargo does not package again");
    }
    let listed = run_ok(
        Command::new(env!("CARGO")).current_dir(root()).args([
            "package",
            "--list",
            "--allow-dirty",
            "--offline",
        ]),
        TIMEOUT,
    );
    let listed = String::from_utf8(listed.stdout).unwrap();
    let files: Vec<&str> = listed.lines().collect();
    for needed in [
        "LICENSE-MIT",
        "LICENSE-APACHE",
        "CHANGELOG.md",
        "README.md",
        "Makefile",
        "pprocess.pc.in",
        "include/pprocess.h",
        "abi/pprocess.symbols",
        "cbindgen.toml",
        "c-examples/Makefile",
        "c-tests/Makefile",
        "examples/pmap.rs",
    ] {
        assert!(files.contains(&needed), "the package lacks {needed}");
    }
    assert!(
        !files.iter().any(|file| file.starts_with(".ci/")),
        "the package ships CI's script"
    );
}

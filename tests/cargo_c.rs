//! cargo-c's way, as the README's "Using pprocess from C" gives it:
//! `cargo cinstall --release --prefix=...` installs the static library, the
//! shared library with its SONAME and links, the header and a pkg-config
//! file, and pkg-config then builds the C quick start against it. Skips, with
//! a note, where cargo-c is not installed (`.ci/run` installs it).
//!
//! Debian's cargo-c (0.9.14) carries its own cargo (0.66, of Rust 1.65),
//! which reads neither crates.io's sparse index nor manifests of the 2024
//! edition, and some of the locked dev and build dependencies (through
//! cbindgen, tempfile and plotters) are 2024-edition crates. So the test
//! installs from a copy of the crate that keeps only what cargo-c builds
//! (the manifest without dev and build dependencies, benchmarks and the
//! `header` feature; src, include, build.rs), with its dependencies vendored
//! by this toolchain's cargo from its cache, the lock file written as
//! version 3, and a CARGO_HOME whose config.toml points crates.io at them.
#![cfg(feature = "std")]

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;
mod skip;
use common::{
    assert_versioned_shared_library, block, describe, readme, root, run, run_ok, scratch, section,
};
use skip::skip;

const TIMEOUT: Duration = Duration::from_secs(600);

/// The manifest without the sections cargo-c does not need: dev and build
/// dependencies and the targets other than the library (a published crate's
/// manifest lists its tests, examples and benchmarks one by one).
fn manifest_for_cargo_c(manifest: &str) -> String {
    const LEFT_OUT: [&str; 5] = [
        "[dev-dependencies",
        "[build-dependencies",
        "[[bench]]",
        "[[test]]",
        "[[example]]",
    ];
    let mut kept = String::new();
    let mut keep = true;
    for line in manifest.lines() {
        if line.starts_with('[') {
            keep = !LEFT_OUT.iter().any(|section| line.starts_with(section));
        }
        if keep && !line.starts_with("header = ") {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn packaging_cargo_cinstall_installs_what_pkg_config_builds_the_quick_start_with() {
    let probe = Command::new("cargo")
        .args(["cinstall", "--version"])
        .output();
    if !probe.is_ok_and(|out| out.status.success()) {
        return skip("cargo-c is not installed (apt-get install cargo-c)");
    }
    let dir = scratch("cargo-c");
    let crate_dir = dir.join("pprocess");
    let _ = fs::remove_dir_all(&crate_dir);
    for sub in ["src", "include"] {
        copy_tree(&root().join(sub), &crate_dir.join(sub));
    }
    for file in ["build.rs", "Cargo.lock", "README.md"] {
        fs::copy(root().join(file), crate_dir.join(file)).unwrap();
    }
    let manifest = fs::read_to_string(root().join("Cargo.toml")).unwrap();
    fs::write(
        crate_dir.join("Cargo.toml"),
        manifest_for_cargo_c(&manifest),
    )
    .unwrap();

    // The dependencies, vendored from this toolchain's cache, and a cargo home
    // that uses them.
    let vendor = dir.join("vendor");
    let _ = fs::remove_dir_all(&vendor);
    run_ok(
        Command::new(env!("CARGO"))
            .current_dir(&crate_dir)
            .args(["vendor", "--offline", "--quiet"])
            .arg(&vendor),
        TIMEOUT,
    );
    // cargo 0.66 reads lock files up to version 3, which differs from 4 only
    // in how git sources are written (pprocess has none).
    let lock = fs::read_to_string(crate_dir.join("Cargo.lock")).unwrap();
    let lock = lock.replacen("\nversion = 4\n", "\nversion = 3\n", 1);
    fs::write(crate_dir.join("Cargo.lock"), lock).unwrap();
    let home = dir.join("cargo-home");
    fs::create_dir_all(&home).unwrap();
    fs::write(
        home.join("config.toml"),
        format!(
            "[source.crates-io]\nreplace-with = \"vendored\"\n\n\
             [source.vendored]\ndirectory = \"{}\"\n",
            vendor.display()
        ),
    )
    .unwrap();

    // The README's command, with the scratch prefix.
    let prefix = dir.join("prefix");
    let _ = fs::remove_dir_all(&prefix);
    let install = section(&readme(), "## Using pprocess from C")
        .lines()
        .find_map(|line| {
            let (command, _) = line.trim().strip_prefix('`')?.split_once('`')?;
            command
                .starts_with("cargo cinstall")
                .then(|| command.to_string())
        })
        .expect("the README gives a `cargo cinstall` command");
    let install = install.replace("$HOME/.local", &prefix.display().to_string());
    let installed = run(
        Command::new("sh")
            .args(["-e", "-c", &install])
            .current_dir(&crate_dir)
            .env("CARGO_HOME", &home)
            .env_remove("CARGO_TARGET_DIR"),
        TIMEOUT,
    )
    .unwrap();
    assert!(
        installed.status.success(),
        "{install}: {}",
        describe(&installed)
    );

    let lib = prefix.join("lib");
    assert_versioned_shared_library(&lib);
    assert!(lib.join("libpprocess.a").is_file());
    assert_eq!(
        fs::read(prefix.join("include/pprocess.h")).unwrap(),
        fs::read(root().join("include/pprocess.h")).unwrap(),
        "cargo cinstall installs the checked-in header"
    );

    // The shared build of the quick start, with cargo-c's pprocess.pc.
    let work = dir.join("work");
    fs::create_dir_all(&work).unwrap();
    fs::write(
        work.join("quickstart.c"),
        block(&readme(), "## C quick start", "c"),
    )
    .unwrap();
    run_ok(
        Command::new("sh")
            .args([
                "-e",
                "-c",
                "cc quickstart.c $(pkg-config --cflags --libs pprocess) -o quickstart",
            ])
            .current_dir(&work)
            .env("PKG_CONFIG_PATH", lib.join("pkgconfig")),
        TIMEOUT,
    );
    let ran = run_ok(
        Command::new(work.join("quickstart")).env("LD_LIBRARY_PATH", &lib),
        TIMEOUT,
    );
    let expected = block(section(&readme(), "## C quick start"), "It prints", "text");
    assert_eq!(String::from_utf8_lossy(&ran.stdout), expected);
}

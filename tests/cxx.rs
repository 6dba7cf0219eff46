//! C++ users include the same header: every program in c-examples/ and
//! c-tests/, and the README's C quick start, compiles as C++17 with
//! `-Wall -Wextra -Werror` and links against this run's static library; a
//! few of them are run to be sure the result works.
#![cfg(feature = "std")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

mod common;
use common::{block, c_lib, describe, readme, root, run, run_ok, scratch, SYSLIBS};

const TIMEOUT: Duration = Duration::from_secs(120);

/// The C sources to compile: every .c file in c-examples/ and c-tests/, and
/// the README's C quick start (written out to `dir`).
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut sources = Vec::new();
    for folder in ["c-examples", "c-tests"] {
        for entry in std::fs::read_dir(root().join(folder)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "c") {
                sources.push(path);
            }
        }
    }
    let quickstart = dir.join("readme_quickstart.c");
    std::fs::write(&quickstart, block(&readme(), "## C quick start", "c")).unwrap();
    sources.push(quickstart);
    sources.sort();
    sources
}

/// Compiles and links one C source as C++; the program, or g++'s complaint.
fn compile_as_cxx(source: &Path, dir: &Path) -> Result<PathBuf, String> {
    let binary = dir.join(source.file_stem().unwrap());
    let mut command = Command::new("g++");
    command
        .args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-O1"])
        .arg(format!(
            "-DPP_CARGO_VERSION=\"{}\"",
            env!("CARGO_PKG_VERSION")
        ))
        .arg("-I")
        .arg(root().join("include"))
        .arg("-I")
        .arg(source.parent().unwrap())
        .args(["-x", "c++"])
        .arg(source)
        .args(["-x", "none", "-o"])
        .arg(&binary)
        .arg(c_lib().join("libpprocess.a"))
        .args(SYSLIBS);
    let output = run(&mut command, TIMEOUT)?;
    if output.status.success() {
        Ok(binary)
    } else {
        Err(format!("{}:\n{}", source.display(), describe(&output)))
    }
}

#[test]
fn every_c_program_compiles_and_links_as_cxx() {
    let dir = scratch("cxx");
    let sources = sources(&dir);
    let results: Vec<Result<PathBuf, String>> = thread::scope(|scope| {
        let handles: Vec<_> = sources
            .iter()
            .map(|source| scope.spawn(|| compile_as_cxx(source, &dir)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} C programs do not compile as C++:\n{}",
        failures.len(),
        sources.len(),
        failures
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Built as C++, they still work: a C test program and an example.
    let macros = run_ok(&mut Command::new(dir.join("test_macros")), TIMEOUT);
    let summary = String::from_utf8_lossy(&macros.stdout);
    assert!(summary.ends_with(" passed, 0 failed\n"), "{summary}");
    let example = run_ok(
        Command::new(dir.join("simple_pmap")).env("PP_DELAY", "0.01"),
        TIMEOUT,
    );
    let grid = String::from_utf8_lossy(&example.stdout);
    assert!(grid.starts_with("0 1 2 3 4 5 6 7 8 9\n10 11 12"), "{grid}");
    assert!(grid.contains("\n90 91 92 93 94 95 96 97 98 99\n"), "{grid}");
}

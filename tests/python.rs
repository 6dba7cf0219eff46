//! Python through ctypes: the binding's own tests (bindings/python) and the
//! README's Python quick start, run by python3 against the libpprocess.so
//! this `cargo test` run built.
#![cfg(feature = "std")]

use std::process::Command;
use std::time::Duration;

mod common;
use common::{block, blocks, c_lib, describe, readme, root, run, run_ok, scratch, section};

const TIMEOUT: Duration = Duration::from_secs(120);

/// The binding's tests: bindings/python/test_*.py.
const UNITTEST: &[&str] = &["-m", "unittest", "discover", "-v", "-s", "bindings/python"];

/// python3 with the binding importable, loading this run's library, and
/// writing no bytecode into the source tree.
fn python() -> Command {
    let mut command = Command::new("python3");
    command
        .env("PYTHONPATH", root().join("bindings/python"))
        .env("PPROCESS_LIB", c_lib().join("libpprocess.so"))
        .env("PYTHONDONTWRITEBYTECODE", "1");
    command
}

#[test]
fn the_python_binding_passes_its_tests() {
    let output =
        run(python().current_dir(root()).args(UNITTEST), TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && log.contains("\nOK"),
        "the Python binding's tests failed: {}",
        describe(&output)
    );
}

#[test]
fn the_readme_python_quick_start_prints_what_it_says() {
    let readme = readme();
    let section = section(&readme, "## Using pprocess from Python");
    let program = blocks(section, "python")
        .into_iter()
        .next()
        .expect("a python block");
    let expected = block(section, "It prints", "text");
    let script = scratch("python").join("quickstart.py");
    std::fs::write(&script, program).unwrap();
    let output = run_ok(python().arg(&script), TIMEOUT);
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected);
}

//! The Python package (bindings/python), as a new user gets it: a fresh
//! virtual environment under target/, `pip install ./bindings/python` (which
//! builds the C library into the package), then the package's own tests
//! (bindings/python/tests, with pytest and mypy installed from PyPI).
//!
//! It needs python3 with its `venv` module and pip's access to PyPI (for the
//! build tools, pytest and mypy). Without them it fails and says what is
//! missing. It skips only in the published crate, which does not carry
//! bindings/python (cargo leaves out every folder with a manifest of its
//! own).
#![cfg(feature = "std")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

mod common;
mod skip;
use common::{describe, root, run, scratch};
use skip::skip_expected;

/// Building the C library takes minutes on a loaded machine.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(1200);
const TEST_TIMEOUT: Duration = Duration::from_secs(900);

/// Runs a setup step; a failure explains what the step needs.
fn step(what: &str, needs: &str, command: &mut Command, timeout: Duration) {
    match run(command, timeout) {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!("{what} failed ({needs}): {}", describe(&output)),
        Err(error) => panic!("{what} could not run ({needs}): {error}"),
    }
}

/// A fresh virtual environment with the package installed from the
/// working tree, and pytest and mypy.
fn fresh_venv() -> PathBuf {
    let venv = root().join("target/python-venv");
    if venv.exists() {
        std::fs::remove_dir_all(&venv).unwrap();
    }
    step(
        "creating a virtual environment (python3 -m venv)",
        "python3 and its venv module: Debian's python3-venv",
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        TEST_TIMEOUT,
    );
    let python = venv.join("bin/python");
    step(
        "pip install ./bindings/python",
        "network access to PyPI for setuptools-rust, and cargo on PATH",
        Command::new(&python)
            .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
            .arg(root().join("bindings/python"))
            // The package's own cargo build stays under target/.
            .env("CARGO_TARGET_DIR", root().join("target/python-build")),
        INSTALL_TIMEOUT,
    );
    step(
        "pip install pytest mypy",
        "network access to PyPI",
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "pytest",
            "mypy",
        ]),
        INSTALL_TIMEOUT,
    );
    venv
}

fn pytest(venv: &Path) -> Command {
    let mut command = Command::new(venv.join("bin/python"));
    // Run from a scratch folder, so that the source tree's pprocess/ is not
    // imported in place of the installed package.
    command
        .current_dir(scratch("python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTHONPATH")
        .args(["-m", "pytest", "-p", "no:cacheprovider", "-rA", "-q"])
        .arg(root().join("bindings/python/tests"));
    command
}

/// `pip wheel` from the same pyproject.toml (cargo's build is reused): the
/// wheel is platform-tagged and holds the package, its C library and
/// py.typed.
fn check_wheel(venv: &Path) {
    let wheels = root().join("target/python-wheels");
    if wheels.exists() {
        std::fs::remove_dir_all(&wheels).unwrap();
    }
    step(
        "pip wheel ./bindings/python",
        "network access to PyPI for setuptools-rust, and cargo on PATH",
        Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--disable-pip-version-check",
                "-q",
            ])
            .arg("-w")
            .arg(&wheels)
            .arg(root().join("bindings/python"))
            .env("CARGO_TARGET_DIR", root().join("target/python-build")),
        INSTALL_TIMEOUT,
    );
    let wheel = std::fs::read_dir(&wheels)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .expect("pip wheel wrote a wheel");
    let name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("pprocess-") && name.contains("linux") && !name.contains("none-any"),
        "the wheel is not tagged for this platform: {name}"
    );
    let listing = run(
        Command::new(venv.join("bin/python"))
            .args([
                "-c",
                "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))",
            ])
            .arg(&wheel),
        TEST_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let files = String::from_utf8_lossy(&listing.stdout);
    for needed in [
        "pprocess/__init__.py",
        "pprocess/py.typed",
        "pprocess/_pprocess_capi",
    ] {
        assert!(
            files.lines().any(|file| file.starts_with(needed)),
            "the wheel lacks {needed}: {files}"
        );
    }
}

#[test]
fn the_python_package_installs_and_passes_its_tests() {
    if root().join("Cargo.toml.orig").exists() {
        skip_expected("bindings/python is not in the published crate (a package of its own)");
        return;
    }
    let venv = fresh_venv();
    check_wheel(&venv);
    let output = run(&mut pytest(&venv), TEST_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && log.contains(" passed") && !log.contains(" skipped"),
        "the Python package's tests failed: {}",
        describe(&output)
    );
}

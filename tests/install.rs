//! Installing for C users, as the README's "Using pprocess from C" shows it:
//! its install command puts the libraries, the header and pprocess.pc under
//! $HOME/.local (here a scratch directory), and its build commands compile
//! the README's C quick start with pkg-config against the shared library and
//! statically, and run both.
#![cfg(feature = "std")]

use std::fs;
use std::process::Command;
use std::time::Duration;

mod common;
use common::{
    assert_versioned_shared_library, block, blocks, c_lib, readme, root, run, run_ok, scratch,
    section,
};

const TIMEOUT: Duration = Duration::from_secs(120);

/// `sh -e -c script` with HOME set to `home`.
fn shell(script: &str, home: &std::path::Path) -> Command {
    let mut command = Command::new("sh");
    command
        .args(["-e", "-c", script])
        .env("HOME", home)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("PKG_CONFIG_PATH");
    command
}

#[test]
fn packaging_make_install_then_pkg_config_builds_the_quick_start_shared_and_static() {
    let readme = readme();
    let commands = blocks(section(&readme, "## Using pprocess from C"), "sh");
    let [install, build] = commands.as_slice() else {
        panic!("expected two sh blocks (install, build) in \"Using pprocess from C\"");
    };
    let home = scratch("install");
    let _ = fs::remove_dir_all(home.join(".local"));
    let work = home.join("work");
    fs::create_dir_all(&work).unwrap();
    fs::write(
        work.join("quickstart.c"),
        block(&readme, "## C quick start", "c"),
    )
    .unwrap();

    // The install command, from the repository root, building in this run's
    // target directory (TARGET_DIR), where c_lib() has built the libraries.
    let target = c_lib().parent().unwrap();
    run_ok(
        shell(install, &home)
            .current_dir(root())
            .env("TARGET_DIR", target),
        TIMEOUT,
    );
    let prefix = home.join(".local");
    for file in [
        "lib/libpprocess.a",
        "include/pprocess.h",
        "lib/pkgconfig/pprocess.pc",
    ] {
        assert!(prefix.join(file).is_file(), "make install made no {file}");
    }
    assert_versioned_shared_library(&prefix.join("lib"));
    let version = run_ok(
        Command::new("pkg-config")
            .args(["--modversion", "pprocess"])
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")),
        TIMEOUT,
    );
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        env!("CARGO_PKG_VERSION")
    );

    // The build commands: each way prints what the quick start prints.
    let built = run_ok(shell(build, &home).current_dir(&work), TIMEOUT);
    let expected = block(section(&readme, "## C quick start"), "It prints", "text");
    assert_eq!(
        String::from_utf8_lossy(&built.stdout),
        expected.repeat(2),
        "shared, then static"
    );

    // The shared build needs libpprocess.so at run time; the static one does not.
    let mut without_path = Command::new(work.join("quickstart"));
    without_path.env_remove("LD_LIBRARY_PATH");
    let shared = run(&mut without_path, TIMEOUT).unwrap();
    assert!(
        !shared.status.success()
            && String::from_utf8_lossy(&shared.stderr).contains("libpprocess.so"),
        "quickstart ran without finding libpprocess.so: is it linked statically?"
    );
    let linked_statically = run_ok(&mut Command::new(work.join("quickstart-static")), TIMEOUT);
    assert_eq!(String::from_utf8_lossy(&linked_statically.stdout), expected);
}

//! Helpers shared by the tests that build and run C programs: where the
//! sources are, the C libraries built by `make`, the README's code blocks, and
//! running a program with a timeout.
#![allow(dead_code)] // each test binary uses a different part

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// What the Rust standard library needs when linking libpprocess.a
/// (`cargo rustc -- --print native-static-libs`).
pub const SYSLIBS: &[&str] = &["-lpthread", "-ldl", "-lm", "-lrt", "-lutil", "-lgcc_s"];

/// The crate's root directory.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding libpprocess.a and libpprocess.so, built by the root
/// Makefile's `make` exactly as a C user builds them (release, feature
/// `capi`), in this run's target directory; once per test binary, and cargo
/// rebuilds only what changed.
pub fn c_lib() -> &'static Path {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("CARGO_TARGET_TMPDIR is <target>/tmp");
        let mut make = Command::new("make");
        make.arg("-C")
            .arg(root())
            .arg("--no-print-directory")
            .arg(format!("TARGET_DIR={}", target.display()))
            .arg(format!("CARGO={}", env!("CARGO")));
        let output = run(&mut make, Duration::from_secs(900))?;
        if output.status.success() {
            Ok(target.join("release"))
        } else {
            Err(describe(&output))
        }
    });
    match built {
        Ok(dir) => dir,
        Err(log) => panic!("`make` (the C libraries) failed:\n{log}"),
    }
}

/// Checks the shared library in `dir` as `make`, `make install` and cargo-c
/// leave it: the file libpprocess.so.<version> with the SONAME
/// libpprocess.so.<major>, and the links libpprocess.so.<major> and
/// libpprocess.so (the name `-lpprocess` finds) leading to it.
pub fn assert_versioned_shared_library(dir: &Path) {
    let soname = format!("libpprocess.so.{}", env!("CARGO_PKG_VERSION_MAJOR"));
    let versioned = format!("libpprocess.so.{}", env!("CARGO_PKG_VERSION"));
    let file = dir.join(&versioned);
    assert!(
        !file.is_symlink() && file.is_file(),
        "no file {}",
        file.display()
    );
    for link in ["libpprocess.so", &soname] {
        let link = dir.join(link);
        assert!(link.is_symlink(), "{} is not a link", link.display());
        assert_eq!(
            std::fs::canonicalize(&link).ok(),
            std::fs::canonicalize(&file).ok(),
            "{} does not lead to {versioned}",
            link.display()
        );
    }
    let readelf = run_ok(
        Command::new("readelf").arg("-d").arg(&file),
        Duration::from_secs(60),
    );
    let dynamic = String::from_utf8_lossy(&readelf.stdout);
    assert!(
        dynamic.contains(&format!("Library soname: [{soname}]")),
        "{} has no SONAME {soname}:\n{dynamic}",
        file.display()
    );
}

/// A scratch directory for one test, under cargo's target/tmp.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The README's text.
pub fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).unwrap()
}

/// The first fenced block of `language` after the heading `heading`.
pub fn block(readme: &str, heading: &str, language: &str) -> String {
    let after = readme
        .split_once(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"))
        .1;
    let first = blocks(after, language).into_iter().next();
    first.unwrap_or_else(|| panic!("no {language} block after {heading:?}"))
}

/// The README's section under `heading` ("## ..."), up to the next "## " heading.
pub fn section<'a>(readme: &'a str, heading: &str) -> &'a str {
    let after = readme
        .split_once(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no section {heading:?}"))
        .1;
    after
        .split_once("\n## ")
        .map_or(after, |(section, _)| section)
}

/// Every fenced block of `language` in `text` (the fence's info string is
/// exactly `language`), in order.
pub fn blocks(text: &str, language: &str) -> Vec<String> {
    let fence = format!("```{language}\n");
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&fence) {
        let body = &rest[start + fence.len()..];
        let len = body.find("```").expect("a closing fence");
        found.push(body[..len].to_string());
        rest = &body[len + 3..];
    }
    found
}

/// Runs a command to completion within `timeout`, capturing its output. The
/// command leads a new process group, so that on timeout its children (the
/// processes pprocess created) are killed too.
pub fn run(command: &mut Command, timeout: Duration) -> Result<Output, String> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let pid = child.id() as i32;
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stdout = thread::spawn(move || read_all(&mut stdout));
    let stderr = thread::spawn(move || read_all(&mut stderr));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            // SAFETY: kill has no memory-safety preconditions; -pid names the group.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = child.wait();
            return Err(format!("{command:?} timed out after {timeout:?}"));
        }
        thread::sleep(Duration::from_millis(10));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    })
}

/// [`run`], panicking unless the command ran and succeeded.
pub fn run_ok(command: &mut Command, timeout: Duration) -> Output {
    let output = run(command, timeout).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        describe(&output)
    );
    output
}

fn read_all(stream: &mut impl std::io::Read) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    bytes
}

/// An output for a failure message: status, stdout and stderr.
pub fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

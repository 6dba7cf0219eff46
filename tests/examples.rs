//! examples/pmap.rs, the README's first command: it says at once what it
//! does and how long it takes, and a PP_DELAY or an argument it cannot use
//! gets the variable's or argument's name and a usage line (exit status 2),
//! never a Debug dump or a worker's panic. Exact stderr.

mod common;

use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const USAGE: &str = "usage: cargo run --example pmap  (no arguments; the environment: \
                     PP_DELAY=<seconds per cell, default 1>, PP_REUSE=1 to reuse worker processes)\n";

/// The example, built by `cargo build --example pmap` (once per run).
fn example() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let output = common::run_ok(
                Command::new(env!("CARGO"))
                    .current_dir(common::root())
                    .args([
                        "build",
                        "--quiet",
                        "--example",
                        "pmap",
                        "--message-format=json",
                    ]),
                Duration::from_secs(900),
            );
            // The executable's path, from cargo's own report.
            let stdout = String::from_utf8_lossy(&output.stdout);
            let line = stdout
                .lines()
                .find(|l| l.contains("\"executable\":\"") && l.contains("examples/pmap"))
                .unwrap_or_else(|| panic!("no executable in:\n{stdout}"));
            let path = line.split("\"executable\":\"").nth(1).unwrap();
            PathBuf::from(&path[..path.find('"').unwrap()])
        })
        .clone()
}

#[test]
fn the_example_names_what_it_rejects() {
    let delay = |value: &str| {
        format!("PP_DELAY: expected seconds from 0 to 3600 (e.g. 0.01), got {value:?}\n{USAGE}")
    };
    let cases = [
        (vec![], Some("abc"), delay("abc")),
        (vec![], Some("-1"), delay("-1")),
        (vec![], Some("NaN"), delay("NaN")),
        (
            vec!["--help"],
            None,
            format!("unexpected argument \"--help\"\n{USAGE}"),
        ),
    ];
    for (args, pp_delay, expected) in cases {
        let mut command = Command::new(example());
        command.args(&args).env_remove("PP_DELAY");
        if let Some(value) = pp_delay {
            command.env("PP_DELAY", value);
        }
        let output = common::run(&mut command, Duration::from_secs(120)).unwrap();
        let what = format!("{args:?} PP_DELAY={pp_delay:?}");
        assert_eq!(
            output.status.code(),
            Some(2),
            "{what}: {}",
            common::describe(&output)
        );
        assert_eq!(String::from_utf8_lossy(&output.stderr), expected, "{what}");
        assert!(output.stdout.is_empty(), "{what}");
    }
}

#[test]
fn the_example_says_at_once_what_it_does_and_for_how_long() {
    // The default run takes about 10 s: its first line is read, then it is
    // stopped with its workers.
    let mut child = Command::new(example())
        .env_remove("PP_DELAY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut first = String::new();
    let read = std::io::BufReader::new(child.stderr.take().unwrap()).read_line(&mut first);
    // SAFETY: kill has no memory-safety preconditions; -pid names the
    // example's own group, its process not yet collected.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    child.wait().unwrap();
    read.unwrap();
    assert_eq!(
        first,
        "100 calculations of 1 s each in 10 worker processes: about 10.0 s \
         (PP_DELAY=0.01 for a quick run)\n"
    );

    let output = common::run_ok(
        Command::new(example()).env("PP_DELAY", "0.01"),
        Duration::from_secs(120),
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "100 calculations of 0.01 s each in 10 worker processes: about 0.1 s \
         (PP_DELAY=0.01 for a quick run)\n"
    );
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("0 1 2 3 4 5 6 7 8 9\n"));
}

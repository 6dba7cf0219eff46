//! The C side: builds c-examples/ and c-tests/ with make against the static
//! library this `cargo test` run built, runs every example and checks its
//! output, and runs every C test program.
#![cfg(feature = "std")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;
use std::{fs, thread};

mod common;
use common::{c_lib, describe, root, run as run_for};

/// A program still running after this long fails its test (and is killed).
const TIMEOUT: Duration = Duration::from_secs(120);

/// Each example with the lines it prints before the grid, as the Python
/// original does. Every program in c-examples/ must be listed here.
const EXAMPLES: &[(&str, &[&str])] = &[
    (
        "simple_background_two_way",
        &[
            "Started the background process.",
            "Sending work.",
            "Waiting for answers",
        ],
    ),
    (
        "simple_background_queue",
        &[
            "Discarded the callable.",
            "Opening a queue.",
            "Waiting for persistent results",
        ],
    ),
    (
        "simple_continuous_queue",
        &["Calculating...", "Finishing..."],
    ),
    ("simple_create", &["Calculating...", "Finishing..."]),
    ("simple_create_map", &["Calculating..."]),
    ("simple_create_queue", &["Calculating...", "Finishing..."]),
    ("simple_managed", &["Calculating...", "Finishing..."]),
    ("simple_managed_map", &["Calculating..."]),
    ("simple_managed_map_reusable", &["Calculating..."]),
    ("simple_managed_queue", &["Calculating...", "Finishing..."]),
    (
        "simple_persistent_managed",
        &[
            "Closed original exchange.",
            "Opening new exchange.",
            "Waiting for persistent results",
        ],
    ),
    (
        "simple_persistent_queue",
        &[
            "Discarded the callable.",
            "Opening a queue.",
            "Waiting for persistent results",
        ],
    ),
    ("simple_pmap", &[]),
    ("simple_pmap_iter", &[]),
    ("simple_start", &["Calculating...", "Finishing..."]),
    ("simple_start_queue", &["Finishing..."]),
];

/// The examples that leave work in background processes: what each prints
/// with `--start` (all of it), and the lines before the grid with
/// `--reconnect`. Without an option they print both, as listed in EXAMPLES.
const PERSISTENT_EXAMPLES: &[(&str, &str, &[&str])] = &[
    (
        "simple_background_queue",
        "Discarded the callable.",
        &["Opening a queue.", "Waiting for persistent results"],
    ),
    (
        "simple_persistent_managed",
        "Closed original exchange.",
        &["Opening new exchange.", "Waiting for persistent results"],
    ),
    (
        "simple_persistent_queue",
        "Discarded the callable.",
        &["Opening a queue.", "Waiting for persistent results"],
    ),
];

/// Builds one directory with make, once per test run; panics with make's
/// output if that failed. Returns where the programs are: under the target
/// directory, so they are relinked whenever this library changes.
fn build(dir: &'static str) -> PathBuf {
    static EXAMPLES_BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    static TESTS_BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let once = match dir {
        "c-examples" => &EXAMPLES_BUILT,
        "c-tests" => &TESTS_BUILT,
        _ => unreachable!("unknown directory {dir}"),
    };
    let out = c_build().join(dir);
    if let Err(log) = once.get_or_init(|| make(&root().join(dir), &out, &[])) {
        panic!("building {dir} failed:\n{log}");
    }
    out
}

/// Where the C programs are built: under the target directory, so that they
/// are relinked whenever the library changes.
fn c_build() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-build")
}

/// Runs make in `dir`, putting the programs in `out`; `extra` are more
/// make arguments (variables such as CFLAGS, or options).
fn make(dir: &Path, out: &Path, extra: &[String]) -> Result<(), String> {
    let lib = c_lib();
    let mut command = Command::new("make");
    command
        .arg("-C")
        .arg(dir)
        .arg(format!("LIBDIR={}", lib.display()))
        .arg(format!("INCDIR={}", root().join("include").display()))
        .arg(format!("BUILD={}", out.display()))
        .args(extra);
    let output = run(&mut command)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(describe(&output))
    }
}

/// A fresh, empty working directory for one run of an example: the
/// persistent examples put their socket files in the current directory.
fn workdir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("c-examples")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Asserts that a run left nothing (no socket file) in its directory.
fn assert_empty(name: &str, dir: &Path) {
    let left: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{name} left {left:?} behind");
}

/// [`common::run`] with this file's timeout.
fn run(command: &mut Command) -> Result<Output, String> {
    run_for(command, TIMEOUT)
}

/// The programs built from `dir`/*.c, by name.
fn programs(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root().join(dir))
        .unwrap()
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            Some(name.strip_suffix(".c")?.to_string())
        })
        .collect();
    names.sort();
    names
}

/// The grid every example prints: rows of i*N + j, space-separated.
fn grid() -> String {
    (0..10)
        .map(|i| {
            let row: Vec<String> = (0..10).map(|j| (i * 10 + j).to_string()).collect();
            row.join(" ") + "\n"
        })
        .collect()
}

/// Checks an example's stdout: its header lines, the grid, and a last line
/// "Time taken: <seconds>" (the only part allowed to vary).
fn check_example_output(name: &str, header: &[&str], stdout: &str) {
    let body = stdout.strip_suffix('\n').unwrap_or(stdout);
    let (body, time_line) = body.rsplit_once('\n').unwrap_or(("", body));
    let seconds = time_line
        .strip_prefix("Time taken: ")
        .and_then(|s| s.parse::<f64>().ok());
    assert!(
        matches!(seconds, Some(s) if s.is_finite() && s >= 0.0) && stdout.ends_with('\n'),
        "{name}: expected a last line \"Time taken: <seconds>\", got {time_line:?}\n{stdout}"
    );
    let expected: String = header
        .iter()
        .map(|line| format!("{line}\n"))
        .collect::<String>()
        + &grid();
    assert_eq!(format!("{body}\n"), expected, "{name}: wrong output");
}

#[test]
fn every_example_is_checked() {
    let listed: Vec<&str> = EXAMPLES.iter().map(|(name, _)| *name).collect();
    for name in programs("c-examples") {
        assert!(
            listed.contains(&name.as_str()),
            "c-examples/{name}.c has no expected output in tests/c.rs (EXAMPLES)"
        );
    }
}

#[test]
fn examples_print_the_grid() {
    let build = build("c-examples");
    for (name, header) in EXAMPLES {
        let dir = workdir(name);
        let output = run(Command::new(build.join(name))
            .current_dir(&dir)
            .env("PP_DELAY", "0.01"))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            output.status.success(),
            "{name} failed: {}",
            describe(&output)
        );
        let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
        check_example_output(name, header, &stdout);
        assert_empty(name, &dir);
    }
}

#[test]
fn persistent_examples_start_in_one_run_and_collect_in_the_next() {
    let build = build("c-examples");
    for (name, started, header) in PERSISTENT_EXAMPLES {
        let dir = workdir(&format!("{name}-split"));
        let run_with = |option: &str| {
            let output = run(Command::new(build.join(name))
                .arg(option)
                .current_dir(&dir)
                .env("PP_DELAY", "0.01"))
            .unwrap_or_else(|e| panic!("{name} {option}: {e}"));
            assert!(
                output.status.success(),
                "{name} {option} failed: {}",
                describe(&output)
            );
            String::from_utf8(output.stdout).expect("UTF-8 output")
        };
        // The first run exits and leaves the work to background processes...
        assert_eq!(
            run_with("--start"),
            format!("{started}\n"),
            "{name} --start"
        );
        // ...which a second run collects; they then remove their sockets.
        check_example_output(name, header, &run_with("--reconnect"));
        assert_empty(name, &dir);
    }
}

#[test]
fn c_tests_pass() {
    let build = build("c-tests");
    let names = programs("c-tests");
    assert!(!names.is_empty(), "no C tests found in c-tests/");
    for name in names {
        let output =
            run(&mut Command::new(build.join(&name))).unwrap_or_else(|e| panic!("{name}: {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.ends_with(" passed, 0 failed\n"),
            "C test {name} failed: {}",
            describe(&output)
        );
    }
}

#[test]
fn example_output_check_rejects_a_wrong_grid() {
    let header = ["Calculating...", "Finishing..."];
    let good = format!("Calculating...\nFinishing...\n{}Time taken: 0.1\n", grid());
    check_example_output("good", &header, &good);
    let swapped = good.replacen("0 1 2", "0 2 1", 1);
    let mut lines: Vec<&str> = good.lines().collect();
    lines.swap(3, 4); // rows 1 and 2
    let reordered = lines.join("\n") + "\n";
    let no_time = good.replace("Time taken: 0.1\n", "");
    for bad in [swapped, reordered, no_time] {
        let result = std::panic::catch_unwind(|| check_example_output("bad", &header, &bad));
        assert!(result.is_err(), "accepted:\n{bad}");
    }
}

/// What an example says to a command line or environment it cannot use: the
/// variable or option it rejects and a usage line (exit status 2), or the
/// address it could not connect to (exit status 1). Exact stderr.
#[test]
fn examples_name_what_they_reject() {
    use std::os::unix::process::CommandExt;
    let build = build("c-examples");
    let usage = "usage: PP_DELAY=<seconds> <example>  (each calculation's delay, default 1)\n";
    let delay = |value: &str| {
        format!("PP_DELAY: expected seconds from 0 to 3600 (e.g. 0.01), got \"{value}\"\n{usage}")
    };
    let plain =
        "usage: simple_pmap  (PP_DELAY=<seconds> sets each calculation's delay, default 1)\n";
    let persistent = "usage: simple_persistent_queue [--start | --reconnect]  (PP_DELAY=<seconds> \
                      sets each calculation's delay, default 1)\n";
    let connect = |call: &str, address: &str| {
        format!(
            "{call}: cannot connect to \"{address}\": No such file or directory (is a process \
             started with --start serving it?)\n"
        )
    };
    // (example, arguments, PP_DELAY, exit status, stderr)
    type Case<'a> = (&'a str, &'a [&'a str], Option<&'a str>, i32, String);
    let cases: &[Case] = &[
        (
            "simple_pmap",
            &["--help"],
            None,
            2,
            format!("simple_pmap: unknown option \"--help\"\n{plain}"),
        ),
        ("simple_pmap", &[], Some("abc"), 2, delay("abc")),
        ("simple_pmap", &[], Some("-1"), 2, delay("-1")),
        ("simple_pmap", &[], Some("1e9"), 2, delay("1e9")),
        (
            "simple_persistent_queue",
            &["--bogus"],
            None,
            2,
            format!("simple_persistent_queue: unknown option \"--bogus\"\n{persistent}"),
        ),
        (
            "simple_persistent_queue",
            &["--start", "--reconnect"],
            None,
            2,
            format!(
                "simple_persistent_queue: only one option may be given, not also \
                 \"--reconnect\"\n{persistent}"
            ),
        ),
        (
            "simple_persistent_queue",
            &["--reconnect"],
            None,
            1,
            connect("pp_exchange_connect", "task-0.socket"),
        ),
        (
            "simple_background_queue",
            &["--reconnect"],
            None,
            1,
            connect("pp_exchange_connect", "task.socket"),
        ),
        (
            "simple_persistent_managed",
            &["--reconnect"],
            None,
            1,
            connect("pp_exchange_connect", "task.socket"),
        ),
    ];
    for (name, args, pp_delay, status, expected) in cases {
        let work = workdir(&format!("rejects-{name}"));
        let mut command = Command::new(build.join(name));
        command
            .arg0(name)
            .args(*args)
            .current_dir(&work)
            .env_remove("PP_DELAY");
        if let Some(value) = pp_delay {
            command.env("PP_DELAY", value);
        }
        let output = run(&mut command).unwrap();
        let what = format!("{name} {args:?} PP_DELAY={pp_delay:?}");
        assert_eq!(
            output.status.code(),
            Some(*status),
            "{what}: {}",
            describe(&output)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            expected.as_str(),
            "{what}"
        );
        assert_empty(name, &work);
    }
}

/// How the C programs are built for AddressSanitizer (with LeakSanitizer)
/// and UndefinedBehaviorSanitizer: every finding is fatal.
const SANITIZE: &str =
    "-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all";

/// Runs every program of `build`/c-tests and `build`/c-examples, two at a
/// time, each as `command(program)` gives it, and checks each one's output
/// as the plain runs do, and that its stderr has no line `report` finds.
fn run_all_clean(
    build: &Path,
    command: impl Fn(&Path) -> Command + Sync,
    timeout: Duration,
    report: impl Fn(&str) -> bool + Sync,
) {
    let mut jobs: Vec<(&str, String)> = programs("c-tests")
        .into_iter()
        .map(|name| ("c-tests", name))
        .collect();
    jobs.extend(
        EXAMPLES
            .iter()
            .map(|(name, _)| ("c-examples", name.to_string())),
    );
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((dir, name)) = jobs.get(i) else {
                    return;
                };
                let work = workdir(&format!("checked-{name}"));
                let program = build.join(dir).join(name);
                let mut cmd = command(&program);
                cmd.current_dir(&work).env("PP_DELAY", "0.01");
                let checked = run_for(&mut cmd, timeout).and_then(|output| {
                    let stdout = String::from_utf8_lossy(&output.stdout);
                    let stderr = String::from_utf8_lossy(&output.stderr);
                    let ok = output.status.success()
                        && !stderr.lines().any(&report)
                        && match EXAMPLES.iter().find(|(example, _)| *example == name) {
                            Some((_, header)) if *dir == "c-examples" => {
                                std::panic::catch_unwind(|| {
                                    check_example_output(name, header, &stdout);
                                    assert_empty(name, &work);
                                })
                                .is_ok()
                            }
                            _ => stdout.ends_with(" passed, 0 failed\n"),
                        };
                    if ok {
                        Ok(())
                    } else {
                        Err(describe(&output))
                    }
                });
                if let Err(why) = checked {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("{dir}/{name}: {why}"));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn c_programs_run_clean_under_address_and_undefined_behavior_sanitizers() {
    let build = c_build().join("sanitized");
    for dir in ["c-examples", "c-tests"] {
        // Built afresh: make does not see a change of CFLAGS.
        let _ = fs::remove_dir_all(build.join(dir));
        if let Err(log) = make(
            &root().join(dir),
            &build.join(dir),
            &[format!("CFLAGS={SANITIZE}")],
        ) {
            panic!("building {dir} with sanitizers failed:\n{log}");
        }
    }
    run_all_clean(
        &build,
        |program| {
            let mut command = Command::new(program);
            command
                .env("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1")
                .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1");
            command
        },
        TIMEOUT,
        |line| line.contains("Sanitizer") || line.contains("runtime error:"),
    );
}

/// Slow (minutes): `.ci/run` runs it with `cargo test --test c -- --ignored`.
#[test]
#[ignore = "minutes under valgrind: run by .ci/run"]
fn c_programs_run_clean_under_valgrind() {
    // Built as the plain runs are, except that a C test may take longer.
    let build = c_build().join("valgrind");
    for dir in ["c-examples", "c-tests"] {
        let _ = fs::remove_dir_all(build.join(dir));
        let slow = ["CPPFLAGS=-DTEST_TIMEOUT_SECONDS=900".to_string()];
        if let Err(log) = make(&root().join(dir), &build.join(dir), &slow) {
            panic!("building {dir} failed:\n{log}");
        }
    }
    let suppressions = root().join("c-tests").join("valgrind.supp");
    run_all_clean(
        &build,
        |program| {
            let mut command = Command::new("valgrind");
            command
                .args(["-q", "--error-exitcode=1", "--leak-check=full"])
                .args(["--num-callers=40", "--track-fds=no"])
                .arg(format!("--suppressions={}", suppressions.display()))
                .arg(program);
            command
        },
        Duration::from_secs(900),
        // With -q, memcheck writes only its findings, each line "==pid== ...".
        |line| line.starts_with("=="),
    );
}

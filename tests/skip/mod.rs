//! Tests that cannot run here say why, in one form that CI counts.
//!
//! A skip prints `skipped: <reason>` on stderr (shown with `cargo test --
//! --nocapture`) and appends the same line to the file named by
//! `PP_SKIP_LOG`, if set: `.ci/run` sets it and prints the count and the
//! lines at the end (the line is also written from a process a test
//! created, whose output the harness never shows). With `PP_REQUIRE_ALL=1`
//! (`.ci/run` sets it) a skip of a test that must run on CI fails that test
//! instead, unless its reason contains one of the comma-separated words of
//! `PP_ALLOW_SKIP` (`.ci/run` allows `CAP_SYS_RESOURCE` on a machine that
//! lacks it, and says so); [`skip_expected`] is for the skips the
//! configuration itself explains (the published crate leaves out files),
//! which never fail.
#![allow(dead_code)] // each test binary uses a different part

use std::io::Write;

/// Notes a skip (see the module documentation): `Err` under
/// `PP_REQUIRE_ALL=1`, for the test to fail with.
pub fn skip_result(reason: &str) -> Result<(), String> {
    let allowed = std::env::var("PP_ALLOW_SKIP").unwrap_or_default();
    if let Some(word) = allowed
        .split(',')
        .find(|word| !word.is_empty() && reason.contains(word))
    {
        note(&format!("{reason} (allowed: PP_ALLOW_SKIP={word})"));
        return Ok(());
    }
    note(reason);
    match std::env::var("PP_REQUIRE_ALL").as_deref() {
        Ok("1") => Err(format!(
            "skipped, and PP_REQUIRE_ALL=1 requires this test to run: {reason}"
        )),
        _ => Ok(()),
    }
}

/// Notes a skip; panics under `PP_REQUIRE_ALL=1`.
pub fn skip(reason: &str) {
    if let Err(failure) = skip_result(reason) {
        panic!("{failure}");
    }
}

/// Notes a skip that is expected where it happens; never fails.
pub fn skip_expected(reason: &str) {
    note(&format!("{reason} (expected here)"));
}

fn note(reason: &str) {
    let line = format!("skipped: {reason}\n");
    eprint!("{line}");
    if let Some(path) = std::env::var_os("PP_SKIP_LOG") {
        // One write of the whole line to a file opened for appending: lines
        // from tests running at once do not interleave.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path);
        if let Err(e) = log.and_then(|mut log| log.write_all(line.as_bytes())) {
            eprintln!("cannot append to PP_SKIP_LOG={path:?}: {e}");
        }
    }
}

//! A user's first test: a new cargo project (made here, depending on this
//! crate by path, offline) whose `#[test]` calls pmap through
//! `pprocess::testing::in_new_process` passes under plain `cargo test`,
//! and its test that calls pmap without it gets `Error::Threads`, whose
//! message names the helper. The README's own block (section "Testing code
//! that uses pprocess") is one of its tests, as written.
//!
//! A packaging check (it builds the crate again): `cargo test -- --skip
//! packaging_` leaves it out.

mod common;

use std::process::Command;
use std::time::Duration;

const MANIFEST: &str = r#"[package]
name = "uses-pprocess"
version = "0.1.0"
edition = "2021"

[dependencies]
pprocess = { path = "ROOT" }
"#;

const LIB: &str = r#"/// Squares in worker processes.
pub fn squares(inputs: &[u64]) -> pprocess::Result<Vec<u64>> {
    pprocess::pmap_records(|x: &u64| Ok(x * x), inputs, 2)
}

#[cfg(test)]
mod tests {
    use super::squares;
    use pprocess::testing::in_new_process;

    #[test]
    fn squares_in_workers() {
        in_new_process(|| {
            assert_eq!(squares(&[1, 2, 3]).unwrap(), [1, 4, 9]);
        });
    }

    #[test]
    fn without_the_helper_pmap_refuses() {
        let refused = squares(&[1]).unwrap_err();
        assert_eq!(refused, pprocess::Error::Threads);
        println!("refused: {refused}");
    }
}

/// The README's block, as written.
#[cfg(test)]
mod readme {
README_BLOCK
}

/// docs/testing.md's block, as written.
mod testing_page {
TESTING_BLOCK
}
"#;

#[test]
fn packaging_a_new_project_tests_pmap_through_in_new_process() {
    let dir = common::scratch("new_project");
    let project = dir.join("uses-pprocess");
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(project.join("src")).unwrap();
    let root = common::root().to_str().unwrap();
    std::fs::write(project.join("Cargo.toml"), MANIFEST.replace("ROOT", root)).unwrap();
    let readme = common::readme();
    let block = common::section(&readme, "## Testing code that uses pprocess")
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README's testing section has a rust block");
    assert!(
        block.contains("in_new_process"),
        "the README's block: {block}"
    );
    let page = std::fs::read_to_string(common::root().join("docs/testing.md")).unwrap();
    let page_block = page
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/testing.md has a rust block");
    std::fs::write(
        project.join("src/lib.rs"),
        LIB.replace("README_BLOCK", block)
            .replace("TESTING_BLOCK", page_block),
    )
    .unwrap();
    // The versions this crate is tested with, all already downloaded.
    std::fs::copy(
        common::root().join("Cargo.lock"),
        project.join("Cargo.lock"),
    )
    .unwrap();
    let output = common::run_ok(
        Command::new(env!("CARGO"))
            .args(["test", "--offline", "--", "--nocapture"])
            .current_dir(&project)
            // A target directory kept between runs, outside the project.
            .env("CARGO_TARGET_DIR", dir.join("target")),
        Duration::from_secs(900),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "test tests::squares_in_workers ... ok",
        "test tests::without_the_helper_pmap_refuses ... ok",
        "test readme::squares_in_workers ... ok",
        "test testing_page::tests::squares_in_workers ... ok",
        "test testing_page::tests::a_worker_answers ... ok",
        "refused: refused to fork: the process has other threads (in a #[test], run its body \
         with pprocess::testing::in_new_process",
        "test result: ok. 5 passed; 0 failed",
    ] {
        assert!(
            stdout.contains(expected),
            "no {expected:?} in:\n{}",
            common::describe(&output)
        );
    }
}

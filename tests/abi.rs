//! The shared library's ABI guard. `make` gives libpprocess.so the SONAME
//! libpprocess.so.<major> and a versioned file with its links, and the library
//! exports exactly the symbols listed in abi/pprocess.symbols, which are
//! exactly the functions include/pprocess.h declares: an unintended addition
//! or removal fails here.

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;
use std::time::Duration;

mod common;
use common::{assert_versioned_shared_library, c_lib, root, run_ok};

const TIMEOUT: Duration = Duration::from_secs(60);

/// The checked-in list: one symbol a line; `#` starts a comment line.
fn listed() -> BTreeSet<String> {
    let list = fs::read_to_string(root().join("abi/pprocess.symbols")).unwrap();
    list.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(String::from)
        .collect()
}

/// What the built shared library exports (`nm -D --defined-only`).
fn exported() -> BTreeSet<String> {
    let nm = run_ok(
        Command::new("nm")
            .args(["-D", "--defined-only"])
            .arg(c_lib().join("libpprocess.so")),
        TIMEOUT,
    );
    let text = String::from_utf8(nm.stdout).unwrap();
    // "address type name" per line.
    let names = text
        .lines()
        .filter_map(|line| line.split_whitespace().nth(2));
    names.map(String::from).collect()
}

/// The functions the header declares: declarations start a line, comments
/// do not.
fn declared() -> BTreeSet<String> {
    let header = fs::read_to_string(root().join("include/pprocess.h")).unwrap();
    let mut names = BTreeSet::new();
    for line in header.lines() {
        if !line.starts_with(|c: char| c.is_ascii_alphabetic()) || line.starts_with("typedef") {
            continue;
        }
        if let Some(open) = line.find('(') {
            let before = &line[..open];
            let mut words = before.rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
            if let Some(name) = words.next().filter(|name| name.starts_with("pp_")) {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// "added: ..., removed: ..." between an expected and an actual set.
fn difference(expected: &BTreeSet<String>, actual: &BTreeSet<String>) -> String {
    let added: Vec<_> = actual.difference(expected).collect();
    let removed: Vec<_> = expected.difference(actual).collect();
    format!("added: {added:?}; removed: {removed:?}")
}

#[test]
fn the_shared_library_has_its_soname_and_a_versioned_file_with_links() {
    assert_versioned_shared_library(c_lib());
}

#[test]
fn the_shared_library_exports_exactly_the_listed_symbols() {
    let listed = listed();
    let exported = exported();
    assert!(
        listed == exported,
        "libpprocess.so's exports differ from abi/pprocess.symbols ({}). A new function \
         belongs in the list (and the header); a removed or changed one breaks C programs \
         and needs a new PP_VERSION_MAJOR.",
        difference(&listed, &exported)
    );
}

#[test]
fn the_symbol_list_is_what_the_header_declares() {
    let listed = listed();
    let declared = declared();
    assert!(
        listed == declared,
        "include/pprocess.h declares other functions than abi/pprocess.symbols lists ({})",
        difference(&listed, &declared)
    );
}

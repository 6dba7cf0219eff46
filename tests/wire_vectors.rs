//! The test vectors of docs/wire.md, the wire format's specification,
//! checked against the crate's own encoder and decoder: each header decodes
//! to what the page says (or is rejected with the error it names) and
//! encodes back to the same bytes; each error and batch payload decodes as
//! the page says, and a batch encodes back; the whole frames at the end are
//! well formed.
#![cfg(feature = "alloc")]

use pprocess::wire::{
    decode_batch, decode_error, encode_batch, Header, Kind, DEFAULT_MAX_MESSAGE, HEADER_LEN,
};

fn page() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/wire.md");
    std::fs::read_to_string(path).expect("docs/wire.md")
}

/// Hexadecimal digits, spaces allowed between them.
fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex: {text:?}");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).expect("hex"))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Table {
    Headers,
    Errors,
    Batches,
}

/// The vectors of the page's "Test vectors" section: (table, bytes,
/// expectation), from rows "| `hex` | expectation |".
fn vectors() -> Vec<(Table, Vec<u8>, String)> {
    let page = page();
    let section = page
        .split_once("\n## Test vectors\n")
        .expect("a Test vectors section")
        .1;
    let mut table = Table::Headers;
    let mut found = Vec::new();
    for line in section.lines() {
        if line.starts_with("Error payloads") {
            table = Table::Errors;
        } else if line.starts_with("Batch payloads") {
            table = Table::Batches;
        }
        let Some(row) = line.strip_prefix("| `") else {
            continue;
        };
        let (bytes, rest) = row.split_once("` |").expect("| `hex` | expectation |");
        let expectation = rest.trim().trim_end_matches('|').trim();
        found.push((table, unhex(bytes), expectation.to_string()));
    }
    found
}

fn kind(value: u8) -> Kind {
    [
        Kind::Data,
        Kind::Error,
        Kind::Ack,
        Kind::Args,
        Kind::Stop,
        Kind::End,
        Kind::Batch,
    ]
    .into_iter()
    .find(|k| *k as u8 == value)
    .unwrap_or_else(|| panic!("no kind {value}"))
}

/// "kind=1 flags=0x0003 length=5 seq=1 task=9" as a header.
fn parse_header(text: &str) -> Header {
    let field = |name: &str| -> u64 {
        let value = text
            .split_whitespace()
            .find_map(|part| part.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {text:?}"));
        match value.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).unwrap(),
            None => value.parse().unwrap(),
        }
    };
    Header::new(
        kind(field("kind") as u8),
        field("flags") as u16,
        field("length") as u32,
        field("seq") as u32,
    )
    .for_task(field("task"))
}

/// The vectors of one table, at least `min` of them: (bytes, expectation).
fn vectors_of(wanted: Table, min: usize) -> Vec<(Vec<u8>, String)> {
    let found: Vec<_> = vectors()
        .into_iter()
        .filter(|(table, _, _)| *table == wanted)
        .map(|(_, bytes, expected)| (bytes, expected))
        .collect();
    assert!(
        found.len() >= min,
        "only {} {wanted:?} vectors",
        found.len()
    );
    found
}

#[test]
fn every_header_vector_decodes_and_encodes_as_the_specification_says() {
    let headers = vectors_of(Table::Headers, 16);
    let mut kinds = Vec::new();
    let mut rejected = 0;
    for (bytes, expected) in &headers {
        let bytes: [u8; HEADER_LEN] = bytes.as_slice().try_into().expect("24 bytes");
        let decoded = Header::decode(&bytes, DEFAULT_MAX_MESSAGE);
        match expected.strip_prefix("rejected: ") {
            Some(error) => {
                rejected += 1;
                assert_eq!(
                    decoded.map_err(|e| format!("{e:?}")),
                    Err(error.to_string()),
                    "{}",
                    hex(&bytes)
                );
            }
            None => {
                let header = parse_header(expected);
                assert_eq!(decoded, Ok(header), "{}", hex(&bytes));
                assert_eq!(hex(&header.encode()), hex(&bytes), "{expected}");
                kinds.push(header.kind as u8);
            }
        }
    }
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds, [1, 2, 3, 4, 5, 6, 7], "a valid vector of every kind");
    assert!(rejected >= 8, "only {rejected} rejected headers");
}

#[test]
fn every_error_payload_vector_decodes_as_the_specification_says() {
    let errors = vectors_of(Table::Errors, 3);
    for (bytes, expected) in &errors {
        let decoded = decode_error(bytes)
            .map(|(code, message)| format!("code={code} message={message}"))
            .map_err(|e| format!("rejected: {e:?}"));
        assert_eq!(&decoded.unwrap_or_else(|e| e), expected, "{}", hex(bytes));
    }
}

#[test]
fn every_batch_payload_vector_decodes_and_encodes_as_the_specification_says() {
    let batches = vectors_of(Table::Batches, 4);
    for (bytes, expected) in &batches {
        match decode_batch(bytes) {
            Ok(tasks) => {
                let tasks: Vec<(u64, &[u8])> = tasks.collect();
                let shown: Vec<String> = tasks
                    .iter()
                    .map(|(tag, args)| format!("{tag}:{}", hex(args)))
                    .collect();
                assert_eq!(&format!("tasks={}", shown.join(",")), expected);
                let mut encoded = Vec::new();
                encode_batch(&mut encoded, tasks.len() as u32, tasks.iter().copied());
                assert_eq!(hex(&encoded), hex(bytes));
            }
            Err(e) => assert_eq!(&format!("rejected: {e:?}"), expected, "{}", hex(bytes)),
        }
    }
}

#[test]
fn the_whole_frames_are_well_formed() {
    let page = page();
    let section = page.split_once("\n## Test vectors\n").unwrap().1;
    let frames = section
        .split_once("```text\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("a text block of whole frames")
        .0;
    let mut seen = 0;
    for line in frames.lines() {
        let bytes = unhex(line);
        let (head, payload) = bytes.split_at(HEADER_LEN);
        let header = Header::decode(head.try_into().unwrap(), DEFAULT_MAX_MESSAGE)
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(header.length as usize, payload.len(), "{line}");
        assert_eq!(hex(&header.encode()), hex(head));
        seen += 1;
    }
    assert_eq!(seen, 2);
}

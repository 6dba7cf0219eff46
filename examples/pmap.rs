//! A port of pprocess's examples/simple_pmap.py: an N x N grid of slow
//! calculations mapped over worker processes, printed in order.
//!
//!     cargo run --release --example pmap            (1 second per cell)
//!     PP_DELAY=0.01 cargo run --example pmap
//!     PP_REUSE=1 cargo run --example pmap           (reused workers)

use std::time::{Duration, Instant};

use pprocess::{pmap, Options, RemoteError};

const N: u32 = 10;
const LIMIT: usize = 10;

/// The input of one calculation: its cell and how long it takes.
fn encode(i: u32, j: u32, delay: f64) -> Vec<u8> {
    [&i.to_le_bytes()[..], &j.to_le_bytes(), &delay.to_le_bytes()].concat()
}

/// A plain function, run in another process: waits, then returns i * N + j.
fn calculate(input: &[u8]) -> Result<Vec<u8>, RemoteError> {
    let field = |at: usize| u32::from_le_bytes(input[at..at + 4].try_into().unwrap());
    let delay = f64::from_le_bytes(input[8..16].try_into().unwrap());
    std::thread::sleep(Duration::from_secs_f64(delay));
    Ok((field(0) * N + field(4)).to_le_bytes().to_vec())
}

const USAGE: &str = "usage: cargo run --example pmap  (no arguments; the environment: \
PP_DELAY=<seconds per cell, default 1>, PP_REUSE=1 to reuse worker processes)";

/// Exits with `problem` and the usage line (status 2, as for a usage error).
fn usage_error(problem: &str) -> ! {
    eprintln!("{problem}\n{USAGE}");
    std::process::exit(2)
}

/// The delay of one calculation: PP_DELAY seconds, or 1.
fn delay() -> f64 {
    let Some(text) = std::env::var_os("PP_DELAY") else {
        return 1.0;
    };
    let text = text.to_string_lossy();
    match text.parse::<f64>() {
        Ok(seconds) if (0.0..=3600.0).contains(&seconds) => seconds,
        _ => usage_error(&format!(
            "PP_DELAY: expected seconds from 0 to 3600 (e.g. 0.01), got {text:?}"
        )),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Some(argument) = std::env::args().nth(1) {
        usage_error(&format!("unexpected argument {argument:?}"));
    }
    let delay = delay();
    let options = Options {
        reuse: std::env::var_os("PP_REUSE").is_some(),
        ..Options::default()
    };
    // Said at once, on stderr (stdout is the grid): the run is slow on purpose.
    let cells = N * N;
    eprintln!(
        "{cells} calculations of {delay} s each in {LIMIT} worker processes: about {:.1} s \
         (PP_DELAY=0.01 for a quick run)",
        f64::from(cells) * delay / LIMIT as f64
    );
    let started = Instant::now();
    let inputs = (0..N).flat_map(|i| (0..N).map(move |j| encode(i, j, delay)));
    let results = pmap(calculate, inputs, LIMIT, options)?;
    let mut row = Vec::new();
    for outcome in results {
        let value = u32::from_le_bytes(outcome?[..4].try_into()?);
        row.push(value.to_string());
        if row.len() == N as usize {
            println!("{}", row.join(" "));
            row.clear();
        }
    }
    println!("Time taken: {}", started.elapsed().as_secs_f64());
    Ok(())
}

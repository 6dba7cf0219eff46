//! The reused-worker workload of `benches/pprocess.rs`'s `pp_reused_queue`,
//! as a program of its own, so that `benches/ab/run.sh` can build it against
//! an older commit of the library and against the working tree, and run the
//! two alternated: `n` tiny tasks (an 8-byte square) through a Queue with
//! reuse at limit 2, results taken as they come once 4096 wait.
//!
//! Prints one line per repetition: `rate <tasks per second>`.

use pprocess::Options;

fn tiny(x: u64) -> u64 {
    x.wrapping_mul(x) ^ 0x9e37_79b9
}

fn le_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().expect("an 8-byte answer"))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(1_000_000, |a| a.parse().expect("a task count"));
    let reps: usize = args.next().map_or(1, |a| a.parse().expect("a repetition count"));
    let expected = (0..n as u64).map(tiny).fold(0, u64::wrapping_add);
    for _ in 0..reps {
        let started = std::time::Instant::now();
        let reuse = Options {
            reuse: true,
            ..Options::default()
        };
        let mut queue = pprocess::Queue::with_options(2, reuse);
        let square =
            queue.manage_function(|x: &[u8]| Ok(tiny(le_u64(x)).to_le_bytes().to_vec()));
        let mut sum = 0u64;
        let mut add = |outcome: pprocess::Outcome| {
            sum = sum.wrapping_add(le_u64(&outcome.expect("task result")));
        };
        for x in 0..n as u64 {
            square.call(&mut queue, &x.to_le_bytes()).expect("call");
            while queue.waiting() > 4096 {
                add(queue.next_result(-1).expect("a result").1);
            }
        }
        while let Ok((_, outcome)) = queue.next_result(-1) {
            add(outcome);
        }
        drop(queue);
        let rate = n as f64 / started.elapsed().as_secs_f64();
        assert_eq!(sum, expected, "wrong results");
        println!("rate {rate:.0}");
    }
}

//! Reused workers take tasks in windows that shrink as the work runs out, so
//! a worker busy with a long task does not hold the last tasks while
//! another worker is idle (issue 13's head-of-line blocking).

mod fork_contract;

use pprocess::{Map, Options, RemoteError};

#[test]
fn the_last_task_does_not_wait_behind_a_long_one() {
    // Task 0 waits (up to 20 s) for the last task to have run; the others
    // take 50 ms. With two workers, a fixed window puts every other task,
    // the last one included, behind task 0.
    let flag = std::env::temp_dir().join(format!("pp-balance-flag-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let marker = flag.clone();
    let task = move |input: &[u8]| -> Result<Vec<u8>, RemoteError> {
        match input[0] {
            0 => {
                for _ in 0..2000 {
                    if marker.exists() {
                        return Ok(vec![0]);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(RemoteError::new(1, "the last task waited behind task 0"))
            }
            10 => {
                std::fs::write(&marker, b"10").map_err(|_| RemoteError::new(2, "write"))?;
                Ok(vec![10])
            }
            n => {
                std::thread::sleep(std::time::Duration::from_millis(50));
                Ok(vec![n])
            }
        }
    };
    let options = Options {
        reuse: true,
        ..Options::default()
    };
    let mut map = Map::with_options(2, options);
    // One callable, bound once: all its tasks share its two workers.
    let task = map.manage_function(task);
    for n in 0..=10u8 {
        task.call(&mut map, &[n]).unwrap();
    }
    let results: Vec<Vec<u8>> = map.by_ref().map(|outcome| outcome.unwrap()).collect();
    let _ = std::fs::remove_file(&flag);
    assert_eq!(results, (0..=10u8).map(|n| vec![n]).collect::<Vec<_>>());
}

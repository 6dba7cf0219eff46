//! Runs a test's body in a process of its own, made with `create`: the
//! body may then wait for "any child", change its own limits, or die, and
//! no other test sees it.

use pprocess::{create, exit, Created};

/// Runs `body` in a new process: `Ok` if it succeeded (exit status 0), its
/// message or how the process ended otherwise (an abort is a signal).
pub fn run(body: fn() -> Result<(), String>) -> Result<(), String> {
    match create().map_err(|e| e.to_string())? {
        Created::Child(mut channel) => {
            let status = match body() {
                Ok(()) => 0,
                Err(why) => {
                    // If the creator is gone, the exit status still says it.
                    let _unsent = channel.send(why.as_bytes());
                    1
                }
            };
            exit(channel, status)
        }
        Created::Parent(mut channel) => {
            let why = channel.receive_vec().ok();
            let status = channel.wait().map_err(|e| e.to_string())?;
            let why = why.map(|w| String::from_utf8_lossy(&w).into_owned());
            match status.success() {
                true => Ok(()),
                false => Err(format!("{status}: {why:?}")),
            }
        }
    }
}

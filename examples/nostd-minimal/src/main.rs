//! pprocess in a `#![no_std]`, `#![no_main]` binary, without an allocator:
//! it creates four processes, sends each a fixed-layout question, and
//! collects their answers through a fixed-capacity exchange. It exits with
//! the sum of the answers, 1 + 4 + 9 + 16 = 30, or 1 if anything failed.
#![no_std]
#![no_main]

use core::ffi::{c_char, c_int};

use bytemuck::{Pod, Zeroable};
use pprocess::exchange::Fixed;
use pprocess::{create, exit, Channel, Created, Error, Exchange, Options, StoreData, TaskId};

/// What the creator asks: the square of `x`.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Question {
    x: u32,
}

/// What a created process answers.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Answer {
    x: u32,
    square: u32,
}

/// Adds up the answers as they arrive (pprocess's `store_data`).
#[derive(Default)]
struct Total {
    sum: u32,
    right: u32,
}

impl StoreData for Total {
    fn store_data(&mut self, channel: &mut Channel, _task: TaskId) -> pprocess::Result<()> {
        let answer: Answer = channel.receive_value()?;
        self.sum += answer.square;
        self.right += u32::from(answer.square == answer.x * answer.x);
        Ok(())
    }
}

/// A created process: answers one question, then exits.
fn answer(mut channel: Channel) -> ! {
    let answered = channel
        .receive_value::<Question>()
        .and_then(|Question { x }| channel.send_value(&Answer { x, square: x * x }));
    exit(channel, if answered.is_ok() { 0 } else { 1 })
}

fn run() -> Result<Total, Error> {
    // Room for four channels, held inline.
    let mut exchange: Exchange<Fixed<4>, Total> =
        Exchange::new(4, Options::default(), Total::default());
    for x in 1..=4 {
        let mut channel = match create()? {
            Created::Child(channel) => answer(channel),
            Created::Parent(channel) => channel,
        };
        channel.send_value(&Question { x })?;
        exchange.add(channel).map_err(|_| Error::Busy)?;
    }
    exchange.finish()?;
    Ok(core::mem::take(exchange.handler_mut()))
}

/// The C entry point: there is no Rust runtime to call a Rust `main`.
#[no_mangle]
pub extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    match run() {
        Ok(total) if total.right == 4 => total.sum as c_int,
        _ => 1,
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: abort has no preconditions; it ends the process.
    unsafe { libc::abort() }
}

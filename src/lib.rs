//! # pprocess
//!
//! An IPC kernel in the style of Paul Boddie's Python library *pprocess*:
//! processes created with [`create`] (fork-style) or [`start`] (run a
//! callable in a new process) talk to their creator over a [`Channel`] that
//! carries length-prefixed [frames](wire).
//!
//! ```
//! use pprocess::{start, Options, Queue};
//!
//! // A process running a closure, with a channel to it.
//! let mut channel = start(|channel| {
//!     let question: u32 = channel.receive_value()?;
//!     Ok(channel.send_value(&(question * 2))?)
//! })?;
//! channel.send_value(&21u32)?;
//! assert_eq!(channel.receive_value::<u32>()?, 42);
//! assert!(channel.wait()?.success());
//!
//! // Many processes, at most 2 at a time, results as they arrive.
//! let mut queue = Queue::with_options(2, Options::default());
//! for word in ["a", "b", "c"] {
//!     queue.start(move |channel| Ok(channel.send(word.to_uppercase().as_bytes())?))?;
//! }
//! let mut words: Vec<Vec<u8>> = queue.collect::<Result<_, _>>()?;
//! words.sort();
//! assert_eq!(words, [b"A", b"B", b"C"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The core (`wire`, `channel`, `process` and the fixed-capacity
//! [`Exchange`]) is `#![no_std]` and needs no allocator; the `alloc` feature
//! adds growable collections ([`Queue`], [`Map`], [`pmap`], persistent
//! processes), and `std` (the default) adds panic catching and
//! `std::error::Error`. The `capi` feature adds the C ABI
//! (`include/pprocess.h`): the functions exported from the C libraries that
//! `make` or cargo-c build; it adds nothing to the Rust API.
//!
//! Linux only: the crate uses `fork`, `socketpair`, `poll`, UNIX sockets and
//! `SO_PEERCRED` directly.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod channel;
pub mod error;
pub mod exchange;
mod os;
#[cfg(feature = "alloc")]
pub mod persistent;
pub mod process;
pub(crate) mod sys;
#[cfg(feature = "std")]
pub mod testing;
pub mod wire;

// The C ABI: exported from libpprocess.a and libpprocess.so by symbol name,
// never reachable as Rust API.
#[cfg(feature = "capi")]
mod ffi;

pub use channel::Channel;
pub use error::{Error, RemoteError, Result, REMOTE_MESSAGE_MAX};
#[cfg(feature = "alloc")]
pub use exchange::records::pmap_records;
#[cfg(feature = "alloc")]
pub use exchange::{pmap, records, Managed, Map, Outcome, Queue, TaskError};
pub use exchange::{Exchange, Limit, Options, StoreData, TaskId};
pub use os::{Errno, Pid, WaitStatus};
#[cfg(feature = "alloc")]
pub use persistent::{
    close_streams, connect_persistent, create_persistent, start_persistent, AsAddress, ConnectError,
};
pub use process::{
    allow_fork_with_threads, create, create_unchecked, exit, number_of_cores, start,
    start_unchecked, waitall, Created,
};

/// Safe Rust cannot reach the C ABI or the system layer: neither compiles
/// (the `pp_*` functions exist only as the C libraries' exports).
///
/// ```compile_fail
/// let version = pprocess::ffi::pp_version();
/// ```
///
/// ```compile_fail,E0603
/// let forked = pprocess::sys::fork();
/// ```
#[cfg(doctest)]
pub struct PrivateModules;

/// The README's Rust code blocks, compiled and run as doctests so that the
/// quick start cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

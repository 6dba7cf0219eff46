//! # pprocess
//!
//! An IPC kernel in the style of Paul Boddie's Python library *pprocess*:
//! processes created with [`create`] (fork-style) or [`start`] (run a
//! callable in a new process) talk to their creator over a [`Channel`] that
//! carries length-prefixed [frames](wire).
//!
//! The core (`sys`, `wire`, `channel`, `process`) is `#![no_std]` and needs
//! no allocator; the `alloc` feature adds growable collections, and `std`
//! (the default) adds panic catching and the C ABI (`include/pprocess.h`).
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
#[cfg(feature = "alloc")]
pub mod persistent;
pub mod process;
pub mod sys;
pub mod wire;

#[cfg(feature = "std")]
pub mod ffi;

pub use channel::Channel;
pub use error::{Error, RemoteError, Result, REMOTE_MESSAGE_MAX};
#[cfg(feature = "alloc")]
pub use exchange::{pmap, Map, Outcome, Queue, TaskError};
pub use exchange::{Exchange, Options, StoreData, TaskId};
#[cfg(feature = "alloc")]
pub use persistent::{connect_persistent, create_persistent, start_persistent, AsAddress};
pub use process::{
    allow_fork_with_threads, create, create_unchecked, exit, number_of_cores, start,
    start_unchecked, waitall, Created,
};
pub use sys::{Pid, WaitStatus};

/// The README's Rust code blocks, compiled and run as doctests so that the
/// quick start cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

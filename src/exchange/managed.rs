//! Reusable callables by explicit handle (pprocess's
//! `exchange.manage(MakeReusable(fn))`), needs `alloc`.
//!
//! A [`Managed`] callable is bound once and then called many times; with
//! [`Options::reuse`](super::Options::reuse) its tasks share its workers,
//! and only its own. Two handles never share a worker, even for closures of
//! one type with different captures: each handle is its own callable.

use alloc::rc::Rc;
use alloc::vec::Vec;

use bytemuck::Pod;

use super::jobs::{Body, Key};
use super::{Exchange, Slots, StoreData, TaskId};
use crate::channel::Channel;
use crate::error::{RemoteError, Result};

/// A callable bound once for many tasks, made by [`Exchange::manage`] or
/// [`Exchange::manage_function`]: each [`Managed::call`] runs it as a new
/// task. With [`Options::reuse`](super::Options::reuse), the tasks of one
/// handle run in that handle's reused workers.
///
/// ```
/// use pprocess::{Options, Queue};
///
/// let mut queue = Queue::with_options(2, Options { reuse: true, ..Options::default() });
/// let triple = queue.manage_function(|x: &[u8]| Ok(vec![x[0] * 3]));
/// for n in 1..=4u8 {
///     triple.call(&mut queue, &[n])?;
/// }
/// let mut results: Vec<u8> = queue.map(|r| r.map(|bytes| bytes[0])).collect::<Result<_, _>>()?;
/// results.sort();
/// assert_eq!(results, [3, 6, 9, 12]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Managed {
    body: Rc<Body>,
}

impl core::fmt::Debug for Managed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Managed").field("key", &self.key()).finish()
    }
}

impl Managed {
    fn new(body: Rc<Body>) -> Managed {
        Managed { body }
    }

    /// The worker key of this handle: the address of its callable, which
    /// stays allocated (and so unique) while a handle, a waiting task or a
    /// worker of it exists.
    fn key(&self) -> Key {
        Key::Managed(Rc::as_ptr(&self.body).cast::<()>() as usize)
    }

    /// [`Managed::call`] with a fixed-layout value as the arguments (for a
    /// callable from [`Exchange::manage_value`]).
    #[inline]
    pub fn call_value<S: Slots, H: StoreData, A: Pod>(
        &self,
        exchange: &mut Exchange<S, H>,
        args: &A,
    ) -> Result<TaskId> {
        self.call(exchange, bytemuck::bytes_of(args))
    }

    /// Runs the callable with `args` as a new task of `exchange`, at once or
    /// when the limit allows (see [`Exchange::start`]). Returns the task id.
    #[inline]
    pub fn call<S: Slots, H: StoreData>(
        &self,
        exchange: &mut Exchange<S, H>,
        args: &[u8],
    ) -> Result<TaskId> {
        exchange.start_keyed(self.key(), &self.body, args)
    }
}

impl<S: Slots, H: StoreData> Exchange<S, H> {
    /// Binds `callable` once as a reusable callable of this exchange
    /// (pprocess's `manage(MakeReusable(fn))`): each [`Managed::call`] runs
    /// `callable(channel, args)` as a task, and with
    /// [`Options::reuse`](super::Options::reuse) the tasks of this handle
    /// share its workers. The callable receives on and sends over the
    /// channel as it likes; [`Exchange::manage_function`] is the shorter
    /// form for a function whose output is the task's one message.
    ///
    /// ```
    /// use pprocess::exchange::value_of;
    /// use pprocess::{Managed, Options, Queue};
    ///
    /// let mut queue = Queue::with_options(2, Options { reuse: true, ..Options::default() });
    /// // One handle: every call runs this callable, in this handle's workers.
    /// let sum: Managed = queue.manage(|channel, args| {
    ///     let total: u32 = args.iter().map(|&b| u32::from(b)).sum();
    ///     Ok(channel.send_value(&total)?)
    /// });
    /// sum.call(&mut queue, &[1, 2, 3])?;
    /// sum.call(&mut queue, &[10, 20])?;
    /// let mut totals: Vec<u32> = queue.map(value_of::<u32>).collect::<Result<_, _>>()?;
    /// totals.sort();
    /// assert_eq!(totals, [6, 30]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn manage<F>(&self, callable: F) -> Managed
    where
        F: Fn(&mut Channel, &[u8]) -> core::result::Result<(), RemoteError> + 'static,
    {
        Managed::new(Rc::new(callable))
    }

    /// Binds a plain function once (pprocess's `manage(MakeParallel(fn))`,
    /// `MakeReusable` with reuse): its output is each task's one message.
    pub fn manage_function<F>(&self, function: F) -> Managed
    where
        F: Fn(&[u8]) -> core::result::Result<Vec<u8>, RemoteError> + 'static,
    {
        self.manage(move |channel: &mut Channel, input: &[u8]| {
            let output = function(input)?;
            channel.send(&output).map_err(RemoteError::from)
        })
    }

    /// Binds a function of fixed-layout values once (the typed
    /// [`Exchange::manage_function`]): each task's arguments are an `A`
    /// ([`Managed::call_value`]) and its one message the `R` it returns; read
    /// it with [`value_of`](super::value_of). Arguments of another size fail
    /// the task with [`Error::WrongSize`](crate::Error::WrongSize).
    ///
    /// ```
    /// use pprocess::exchange::value_of;
    /// use pprocess::{Map, Options};
    ///
    /// let mut map = Map::with_options(2, Options { reuse: true, ..Options::default() });
    /// let cube = map.manage_value(|x: u64| Ok(x * x * x));
    /// for x in 1..=4u64 {
    ///     cube.call_value(&mut map, &x)?;
    /// }
    /// let cubes: Vec<u64> = map.map(value_of::<u64>).collect::<Result<_, _>>()?;
    /// assert_eq!(cubes, [1, 8, 27, 64]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn manage_value<A, R, F>(&self, function: F) -> Managed
    where
        A: Pod,
        R: Pod,
        F: Fn(A) -> core::result::Result<R, RemoteError> + 'static,
    {
        self.manage(move |channel: &mut Channel, args: &[u8]| {
            let args = bytemuck::try_pod_read_unaligned::<A>(args).map_err(|_| {
                RemoteError::from(crate::Error::WrongSize {
                    expected: core::mem::size_of::<A>(),
                    actual: args.len(),
                })
            })?;
            let result = function(args)?;
            channel.send_value(&result).map_err(RemoteError::from)
        })
    }

    /// Runs `callable(channel, args)` as a task: a callable of its own,
    /// bound for this one task (`self.manage(callable).call(self, args)`).
    /// To run many tasks of one callable in shared reused workers, bind it
    /// once with [`Exchange::manage`].
    ///
    /// ```
    /// use pprocess::{Options, Queue};
    ///
    /// let mut queue = Queue::with_options(2, Options { reuse: true, ..Options::default() });
    /// for x in 0..4u8 {
    ///     // Four closures of one type: each runs with its own capture.
    ///     queue.start_with(move |channel, _| Ok(channel.send(&[x])?), &[])?;
    /// }
    /// let mut sent: Vec<u8> = queue.map(|r| r.map(|bytes| bytes[0])).collect::<Result<_, _>>()?;
    /// sent.sort();
    /// assert_eq!(sent, [0, 1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start_with<F>(&mut self, callable: F, args: &[u8]) -> Result<TaskId>
    where
        F: Fn(&mut Channel, &[u8]) -> core::result::Result<(), RemoteError> + 'static,
    {
        self.manage(callable).call(self, args)
    }

    /// Calls a plain function in another process: its output is the task's
    /// one message (pprocess's `MakeParallel`), a callable of its own bound
    /// for this one task. To share reused workers among many calls, bind it
    /// once with [`Exchange::manage_function`].
    ///
    /// ```
    /// use pprocess::{Options, Queue};
    ///
    /// let mut queue = Queue::with_options(1, Options::default());
    /// queue.call(|x: &[u8]| Ok(x.to_ascii_uppercase()), b"hi")?;
    /// assert_eq!(queue.next().unwrap()?, b"HI");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn call<F>(&mut self, function: F, input: &[u8]) -> Result<TaskId>
    where
        F: Fn(&[u8]) -> core::result::Result<Vec<u8>, RemoteError> + 'static,
    {
        self.manage_function(function).call(self, input)
    }
}

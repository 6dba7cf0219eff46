//! Exchanges: pp_exchange_*, pp_queue_new, pp_map_new, pp_map_get, pp_pmap.

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use core::ffi::{c_char, c_int, c_uint, c_void};

use super::channel::call_c;
use super::{
    bytes, bytes_mut, channel, channel_from_handle, channel_into_handle, guard, guard_void, handle,
    pp_channel, require, write_out,
};
use crate::channel::Channel;
use crate::error::{Error, RemoteError, Result};
use crate::exchange::{
    Body, CreatedTask, Exchange, Growable, Key, Limit, MapStore, Options, Outcome, QueueStore,
    Results, StoreData, TaskError, TaskId,
};

/// Reuse processes: each worker runs its callable once per task, with tasks
/// pipelined through its socket (pprocess's reuse / MakeReusable). It means
/// the same for pp_pmap, whose workers run the function once per record
/// (there the records go through shared memory instead of the socket):
/// its outputs, errors and a dead worker's records are the same with and
/// without it. One difference is the limit's: PP_UNLIMITED with PP_REUSE
/// starts a new worker whenever none is free in an exchange, but one per
/// processor in pp_pmap (its records are shared out, so more workers
/// would only add forks).
pub const PP_REUSE: c_uint = 1;
/// A task may send many results; each is stored (pprocess's continuous).
pub const PP_CONTINUOUS: c_uint = 2;
/// Autoclose off: channels taken out with pp_exchange_remove are not closed;
/// the caller owns them again.
pub const PP_KEEP_REMOVED: c_uint = 4;
/// Accepted for compatibility; changes nothing. With PP_REUSE, workers
/// always answer quick tasks in batches (one write for a chunk's answers),
/// and a worker that dies loses none of them: the answers it holds are
/// mirrored in memory shared with the creator. In earlier snapshots it asked
/// for batches at the cost of the held answers of a dying worker.
pub const PP_BATCH: c_uint = 8;

/// The limit of one process per processor (pp_number_of_cores), for
/// pp_exchange_new, pp_queue_new, pp_map_new and pp_pmap.
pub const PP_CORES: usize = 0;
/// No limit: every task starts at once (pprocess's limit=None), for
/// pp_exchange_new, pp_queue_new, pp_map_new and pp_pmap (pp_pmap with
/// PP_REUSE and pp_pmap_status share records out among one worker per
/// processor, as with PP_CORES).
pub const PP_UNLIMITED: usize = usize::MAX;

/// The Rust limit of a C `limit` argument.
fn limit_of(limit: usize) -> Limit {
    match limit {
        PP_UNLIMITED => Limit::Unbounded,
        PP_CORES => Limit::Cores,
        n => Limit::Fixed(n),
    }
}

/// An exchange handle: channels polled together under a limit (opaque to C).
#[allow(non_camel_case_types)]
pub struct pp_exchange {
    _private: [u8; 0],
}

/// Called for each channel with a message: receive it from `ch` with
/// pp_receive*. Return 0, or a negative code that pp_exchange_store passes on.
/// Inside the callback, do not call pp_exchange_* on `ex`.
#[allow(non_camel_case_types)]
pub type pp_store_fn = Option<
    unsafe extern "C" fn(ex: *mut pp_exchange, ch: *mut pp_channel, ctx: *mut c_void) -> c_int,
>;

/// A plain function (pprocess's MakeParallel): reads input_len bytes at
/// input, writes at most output_cap bytes at output and their count to
/// *output_len. Returns 0, or a nonzero code that becomes the task's remote
/// error (PP_EREMOTE).
#[allow(non_camel_case_types)]
pub type pp_function = Option<
    unsafe extern "C" fn(
        input: *const c_void,
        input_len: usize,
        output: *mut c_void,
        output_cap: usize,
        output_len: *mut usize,
    ) -> c_int,
>;

/// How a C exchange stores its results.
enum CStore {
    /// The caller's store callback, and failed tasks not yet reported.
    Custom {
        store: unsafe extern "C" fn(*mut pp_exchange, *mut pp_channel, *mut c_void) -> c_int,
        ctx: *mut c_void,
        this: *mut pp_exchange,
        failures: VecDeque<TaskError>,
    },
    Queue(QueueStore),
    Map(MapStore),
}

impl StoreData for CStore {
    fn store_data(&mut self, ch: &mut Channel, task: TaskId) -> Result<()> {
        match self {
            CStore::Queue(store) => store.store_data(ch, task),
            CStore::Map(store) => store.store_data(ch, task),
            CStore::Custom {
                store, ctx, this, ..
            } => {
                let handle: *mut Channel = ch;
                // SAFETY: `store` is the caller's callback with this signature;
                // `this` is the live exchange handle and `handle` a live channel
                // it may read from (the header says not to call back into `ex`).
                let rc = unsafe { store(*this, handle.cast(), *ctx) };
                match (rc, ch.end_error()) {
                    (0, _) => Ok(()),
                    (_, Some(ended)) => Err(ended),
                    (code, None) => Err(Error::Callback { code }),
                }
            }
        }
    }

    // Per answer, in the ring's pass: no call for each.
    #[inline(always)]
    fn store_message(&mut self, task: TaskId, message: &[u8]) -> Result<bool> {
        match self {
            CStore::Queue(store) => store.store_message(task, message),
            CStore::Map(store) => store.store_message(task, message),
            // The callback receives each message from its channel itself.
            CStore::Custom { .. } => Ok(false),
        }
    }

    fn keeps_results(&self) -> bool {
        !matches!(self, CStore::Custom { .. })
    }

    fn store_error(&mut self, task: TaskId, error: Error, remote: Option<&RemoteError>) {
        match self {
            CStore::Queue(store) => store.store_error(task, error, remote),
            CStore::Map(store) => store.store_error(task, error, remote),
            CStore::Custom { failures, .. } => failures.push_back(TaskError {
                error,
                remote: remote.cloned().map(Box::new),
            }),
        }
    }
}

impl Results for CStore {
    fn front(&self) -> Option<(TaskId, &Outcome)> {
        match self {
            CStore::Queue(store) => store.front(),
            CStore::Map(store) => store.front(),
            CStore::Custom { .. } => None,
        }
    }

    fn pop_front(&mut self) -> Option<(TaskId, Outcome)> {
        match self {
            CStore::Queue(store) => store.pop_front(),
            CStore::Map(store) => store.pop_front(),
            CStore::Custom { .. } => None,
        }
    }

    fn front_bytes(&self) -> Option<(TaskId, core::result::Result<&[u8], &TaskError>)> {
        match self {
            CStore::Queue(store) => store.front_bytes(),
            CStore::Map(store) => store.front_bytes(),
            CStore::Custom { .. } => None,
        }
    }

    fn skip_front(&mut self) -> Option<(TaskId, Option<TaskError>)> {
        match self {
            CStore::Queue(store) => store.skip_front(),
            CStore::Map(store) => store.skip_front(),
            CStore::Custom { .. } => None,
        }
    }

    fn next_task(&self) -> Option<TaskId> {
        match self {
            CStore::Queue(store) => store.next_task(),
            CStore::Map(store) => store.next_task(),
            CStore::Custom { .. } => Some(TaskId::new(usize::MAX)),
        }
    }

    fn result_of(&self, task: TaskId) -> Option<&Outcome> {
        match self {
            CStore::Queue(store) => store.result_of(task),
            CStore::Map(store) => store.result_of(task),
            CStore::Custom { .. } => None,
        }
    }
}

/// What a pp_exchange handle points at.
struct CExchange {
    exchange: Exchange<Growable, CStore>,
    /// The last failed result handed out, for pp_exchange_task_error.
    failure: Option<TaskError>,
    /// The task of the last result handed out, for pp_exchange_last_task.
    last_task: Option<TaskId>,
    /// The body of the last plain function called (pp_exchange_call), made
    /// once for all its calls.
    function: Option<FunctionBody>,
}

fn options(flags: c_uint) -> Result<Options> {
    if flags & !(PP_REUSE | PP_CONTINUOUS | PP_KEEP_REMOVED | PP_BATCH) != 0 {
        return Err(Error::Invalid);
    }
    Ok(Options {
        reuse: flags & PP_REUSE != 0,
        continuous: flags & PP_CONTINUOUS != 0,
        keep_removed: flags & PP_KEEP_REMOVED != 0,
    })
}

/// Boxes an exchange and writes its handle to *out.
fn new_exchange(
    limit: usize,
    options: Options,
    store: CStore,
    out: *mut *mut pp_exchange,
) -> Result<c_int> {
    require(out)?;
    let mut exchange = Exchange::new(limit_of(limit), options, store);
    // C callers fork as fork(2) does: the header states the contract.
    exchange.accept_fork_contract();
    let handle: *mut pp_exchange = Box::into_raw(Box::new(CExchange {
        exchange,
        failure: None,
        last_task: None,
        function: None,
    }))
    .cast();
    // SAFETY: `handle` was just made from a Box<CExchange>.
    let inner = unsafe { exchange_ref(handle) }?;
    if let CStore::Custom { this, .. } = inner.exchange.handler_mut() {
        *this = handle;
    }
    // SAFETY: `out` was checked non-NULL.
    unsafe { write_out(out, handle) }?;
    Ok(0)
}

/// Borrows the exchange behind a handle; NULL is PP_EINVAL.
///
/// # Safety
/// A non-NULL `ptr` came from new_exchange and is live and unaliased.
unsafe fn exchange_ref<'a>(ptr: *const pp_exchange) -> Result<&'a mut CExchange> {
    // SAFETY: pp_exchange handles are Box<CExchange> pointers.
    unsafe { handle(ptr.cast_mut().cast::<CExchange>()) }
}

/// Borrows the Rust exchange behind a handle, for other ffi modules.
///
/// # Safety
/// As for [`exchange_ref`].
pub(crate) unsafe fn exchange<'a>(
    ptr: *mut pp_exchange,
) -> Result<&'a mut Exchange<Growable, impl StoreData>> {
    // SAFETY: forwarded from the caller.
    Ok(&mut unsafe { exchange_ref(ptr) }?.exchange)
}

/// The last failed result handed out (pp_exchange_next, pp_map_get), for
/// other ffi modules (src/ffi/status.rs).
///
/// # Safety
/// As for [`exchange_ref`].
pub(super) unsafe fn last_failure<'a>(ptr: *const pp_exchange) -> Result<Option<&'a TaskError>> {
    // SAFETY: forwarded from the caller.
    Ok(unsafe { exchange_ref(ptr) }?.failure.as_ref())
}

impl CExchange {
    /// Passes on the oldest failed task a custom store has not reported yet
    /// (pprocess re-raises a child's error from store and finish): its error
    /// is returned, its message kept for pp_exchange_task_error.
    fn report_failure(&mut self, value: c_int) -> Result<c_int> {
        let CStore::Custom { failures, .. } = self.exchange.handler_mut() else {
            return Ok(value);
        };
        match failures.pop_front() {
            Some(failure) => {
                let error = failure.error;
                self.failure = Some(failure);
                Err(error)
            }
            None => Ok(value),
        }
    }
}

/// A count or task id as a C return value; an id above INT_MAX is returned
/// as INT_MAX (pp_exchange_next_id and pp_exchange_last_task give it whole).
fn count(n: impl Into<usize>) -> c_int {
    n.into().min(c_int::MAX as usize) as c_int
}

/// Creates an exchange running at most `limit` processes at once (PP_CORES,
/// 0: one per processor; PP_UNLIMITED: no limit) that calls store(ex, ch,
/// ctx) for each channel with a message.
/// flags: PP_REUSE, PP_CONTINUOUS, PP_KEEP_REMOVED, PP_BATCH.
#[no_mangle]
pub extern "C" fn pp_exchange_new(
    limit: usize,
    flags: c_uint,
    store: pp_store_fn,
    ctx: *mut c_void,
    out: *mut *mut pp_exchange,
) -> c_int {
    guard(|| {
        let store = store.ok_or(Error::Invalid)?;
        let custom = CStore::Custom {
            store,
            ctx,
            this: core::ptr::null_mut(),
            failures: VecDeque::new(),
        };
        new_exchange(limit, options(flags)?, custom, out)
    })
}

/// Creates a queue: an exchange that keeps each task's result, read with
/// pp_exchange_next in the order they arrive (pprocess's Queue).
#[no_mangle]
pub extern "C" fn pp_queue_new(limit: usize, flags: c_uint, out: *mut *mut pp_exchange) -> c_int {
    guard(|| {
        new_exchange(
            limit,
            options(flags)?,
            CStore::Queue(QueueStore::default()),
            out,
        )
    })
}

/// Creates a map: an exchange that keeps each task's result, read with
/// pp_exchange_next in the order the tasks were started, or by task with
/// pp_map_get (pprocess's Map). Each task sends one message, so
/// PP_CONTINUOUS is PP_EINVAL here.
#[no_mangle]
pub extern "C" fn pp_map_new(limit: usize, flags: c_uint, out: *mut *mut pp_exchange) -> c_int {
    guard(|| {
        let options = options(flags)?;
        if options.continuous {
            return Err(Error::Invalid);
        }
        new_exchange(limit, options, CStore::Map(MapStore::default()), out)
    })
}

/// Frees an exchange (NULL is fine; must not be called twice): closes its
/// channels and collects its processes, killing those still running.
#[no_mangle]
pub extern "C" fn pp_exchange_free(ex: *mut pp_exchange) {
    guard_void(|| {
        if !ex.is_null() {
            // SAFETY: a non-NULL handle came from new_exchange and is given up here.
            drop(unsafe { Box::from_raw(ex.cast::<CExchange>()) });
        }
    });
}

/// Adds a channel (taking ownership, even on failure); it is monitored even
/// beyond the limit. Returns its task id (>= 0).
#[no_mangle]
pub extern "C" fn pp_exchange_add(ex: *mut pp_exchange, ch: *mut pp_channel) -> c_int {
    guard(|| {
        // SAFETY: handles from the C caller as documented; `ch` is given up here.
        let (ex, ch) = unsafe { (exchange_ref(ex), channel_from_handle(ch)) };
        let (ex, ch) = (ex?, ch.ok_or(Error::Invalid)?);
        let task = ex.exchange.add(ch).map_err(|_| Error::Busy)?;
        Ok(count(task))
    })
}

/// Stores results until the exchange is below its limit, then adds the
/// channel (taking ownership, even on failure). Returns its task id.
#[no_mangle]
pub extern "C" fn pp_exchange_add_wait(ex: *mut pp_exchange, ch: *mut pp_channel) -> c_int {
    guard(|| {
        // SAFETY: handles from the C caller as documented; `ch` is given up here.
        let (ex, ch) = unsafe { (exchange_ref(ex), channel_from_handle(ch)) };
        let (ex, ch) = (ex?, ch.ok_or(Error::Invalid)?);
        Ok(count(ex.exchange.add_wait(ch)?))
    })
}

/// The number of channels monitored.
#[no_mangle]
pub extern "C" fn pp_exchange_active(ex: *const pp_exchange) -> c_int {
    // SAFETY: the handle comes from the C caller as documented.
    guard(|| Ok(count(unsafe { exchange_ref(ex) }?.exchange.active_count())))
}

/// Waits up to timeout_ms for channels with a message and writes up to cap
/// of them to out; returns how many (pprocess's ready). A channel that ended
/// is not written: it is removed from the exchange, closed and its process
/// collected, and pp_exchange_removed reports it until the next call. Every
/// message a process wrote before it ended comes first. With a store
/// callback, a task that failed is reported as pp_exchange_store does.
/// What you receive from them counts as the exchange's own store would: the
/// next pp_exchange_* call charges each message to its task, starts waiting
/// tasks and stops idle reused workers, so the loop
/// `while (pp_exchange_active(ex) > 0) { n = pp_exchange_ready(...); ... }`
/// ends by itself. The pointers written to out are valid until the next
/// pp_exchange_* call on ex.
#[no_mangle]
pub extern "C" fn pp_exchange_ready(
    ex: *mut pp_exchange,
    timeout_ms: c_int,
    out: *mut *mut pp_channel,
    cap: usize,
) -> c_int {
    guard(|| {
        if out.is_null() && cap > 0 {
            return Err(Error::Invalid);
        }
        // SAFETY: the handle comes from the C caller as documented.
        let ex = unsafe { exchange_ref(ex) }?;
        // SAFETY: `out` has room for `cap` pointers (checked non-NULL above
        // unless cap is 0).
        let written = unsafe { write_channels(out, cap, ex.exchange.ready(timeout_ms)?) };
        Ok(count(written))
    })
}

/// Writes the first `cap` channels of `channels` to `out` as C handles;
/// returns how many it wrote.
///
/// # Safety
/// `out` has room for `cap` pointers (it may be NULL when `cap` is 0).
unsafe fn write_channels<'a>(
    out: *mut *mut pp_channel,
    cap: usize,
    channels: impl Iterator<Item = &'a mut Channel>,
) -> usize {
    let mut written = 0;
    for ch in channels.take(cap) {
        let handle: *mut Channel = ch;
        // SAFETY: the caller gives room for `cap` pointers, and written < cap.
        unsafe { *out.add(written) = handle.cast() };
        written += 1;
    }
    written
}

/// Writes up to cap of the monitored channels to out (pprocess's active(),
/// in no particular order); returns how many are monitored, which is more
/// than cap when out is too short (pp_exchange_active is the count alone).
/// The pointers are valid until the next pp_exchange_* call on ex.
#[no_mangle]
pub extern "C" fn pp_exchange_channels(
    ex: *mut pp_exchange,
    out: *mut *mut pp_channel,
    cap: usize,
) -> c_int {
    guard(|| {
        if out.is_null() && cap > 0 {
            return Err(Error::Invalid);
        }
        // SAFETY: the handle comes from the C caller as documented.
        let ex = unsafe { exchange_ref(ex) }?;
        // SAFETY: `out` has room for `cap` pointers (checked non-NULL above
        // unless cap is 0).
        unsafe { write_channels(out, cap, ex.exchange.active_mut()) };
        Ok(count(ex.exchange.active_count()))
    })
}

/// The channels the last pp_exchange_ready removed because they ended
/// (pprocess's removed): writes, for up to cap of them, the pid of its
/// process to pids and the last task it ran to tasks (UINT64_MAX for none);
/// either array may be NULL. Returns how many were removed.
#[no_mangle]
pub extern "C" fn pp_exchange_removed(
    ex: *const pp_exchange,
    pids: *mut c_int,
    tasks: *mut u64,
    cap: usize,
) -> c_int {
    guard(|| {
        // SAFETY: the handle comes from the C caller as documented.
        let ex = unsafe { exchange_ref(ex) }?;
        let removed = ex.exchange.removed();
        for (i, r) in removed.iter().take(cap).enumerate() {
            if !pids.is_null() {
                // SAFETY: `pids` has room for `cap` values and i < cap.
                unsafe { *pids.add(i) = r.pid };
            }
            if !tasks.is_null() {
                let task = r.task.map_or(u64::MAX, |t| t.index() as u64);
                // SAFETY: `tasks` has room for `cap` values and i < cap.
                unsafe { *tasks.add(i) = task };
            }
        }
        Ok(count(removed.len()))
    })
}

/// Stops monitoring ch: it is closed and freed, or with PP_KEEP_REMOVED it
/// belongs to the caller again. A task of it still without its result gets
/// PP_ECLOSED in its place; with PP_REUSE that includes the tasks queued in a
/// worker's socket, which stay there (the worker runs them, its answers come
/// on ch), so none runs twice. PP_EINVAL if ch is not in the exchange.
/// (Channels that end by themselves are always closed by the exchange.)
#[no_mangle]
pub extern "C" fn pp_exchange_remove(ex: *mut pp_exchange, ch: *mut pp_channel) -> c_int {
    guard(|| {
        // SAFETY: handles from the C caller as documented.
        let (ex, fd) = unsafe { (exchange_ref(ex)?, channel(ch)?.raw_fd()) };
        if let Some(kept) = ex.exchange.remove(fd)? {
            // Handed back: the caller's pointer stays valid, so the box is
            // released (the pointer it gives is the caller's `ch`).
            let _callers_handle: *mut Channel = Box::into_raw(kept);
        }
        Ok(0)
    })
}

/// 1 if the exchange is at its limit, else 0.
#[no_mangle]
pub extern "C" fn pp_exchange_busy(ex: *const pp_exchange) -> c_int {
    // SAFETY: the handle comes from the C caller as documented.
    guard(|| Ok(c_int::from(unsafe { exchange_ref(ex) }?.exchange.busy())))
}

/// 1 while channels are monitored or tasks wait to start, else 0.
#[no_mangle]
pub extern "C" fn pp_exchange_unfinished(ex: *const pp_exchange) -> c_int {
    // SAFETY: the handle comes from the C caller as documented.
    guard(|| {
        Ok(c_int::from(
            unsafe { exchange_ref(ex) }?.exchange.unfinished(),
        ))
    })
}

/// Stores results until the exchange is below its limit (pprocess's wait).
/// With a store callback, returns the error of a task that failed meanwhile
/// (see pp_exchange_store).
#[no_mangle]
pub extern "C" fn pp_exchange_wait(ex: *mut pp_exchange) -> c_int {
    guard(|| {
        // SAFETY: the handle comes from the C caller as documented.
        let ex = unsafe { exchange_ref(ex) }?;
        ex.exchange.wait()?;
        ex.report_failure(0)
    })
}

/// Waits up to timeout_ms and stores each ready channel's messages, then
/// starts waiting tasks. Returns how many channels were served; PP_ETIMEDOUT
/// if the time passed with none. With a store callback, a task that failed
/// (its callable's error, or its process ended without a message) is reported
/// here: one such failure per call is returned as its error (PP_EREMOTE,
/// PP_EPEER, PP_ECLOSED), with the details in pp_exchange_task_error.
#[no_mangle]
pub extern "C" fn pp_exchange_store(ex: *mut pp_exchange, timeout_ms: c_int) -> c_int {
    guard(|| {
        // SAFETY: the handle comes from the C caller as documented.
        let ex = unsafe { exchange_ref(ex) }?;
        let served = ex.exchange.store(timeout_ms)?;
        ex.report_failure(count(served))
    })
}

/// Waits for every task; idle reused workers exit and are collected. With a
/// store callback, returns the error of a task that failed and was not
/// reported yet (call again for the next one; 0 when none is left).
#[no_mangle]
pub extern "C" fn pp_exchange_finish(ex: *mut pp_exchange) -> c_int {
    guard(|| {
        // SAFETY: the handle comes from the C caller as documented.
        let ex = unsafe { exchange_ref(ex) }?;
        ex.exchange.finish()?;
        ex.report_failure(0)
    })
}

/// Runs callable(channel, arg, arg_len) as a task: in a new process now, or later
/// when the exchange is at its limit (the arguments are copied). With
/// PP_REUSE it runs in a reused worker of the same callable, and arguments
/// over the maximum message size (64 MiB) are PP_ETOOBIG. Returns the task id
/// (INT_MAX for any id above it: see pp_exchange_next_id). A call that fails
/// leaves no trace: the task is not run later.
///
/// In a reused worker, the callable's receives see only messages sent to its
/// own task. After it has sent its one result (without PP_CONTINUOUS), a
/// receive that meets the next task instead fails with PP_ECLOSED: no more
/// will come for this task (pprocess's MakeReusable pattern ends there).
#[no_mangle]
pub extern "C" fn pp_exchange_start(
    ex: *mut pp_exchange,
    callable: crate::ffi::pp_callable,
    arg: *const c_void,
    arg_len: usize,
) -> c_int {
    guard(|| {
        let callable = callable.ok_or(Error::Invalid)?;
        // SAFETY: handle and buffer come from the C caller as documented.
        let (ex, arg) = unsafe { (exchange_ref(ex)?, bytes(arg, arg_len)?) };
        let body = move |ch: &mut Channel, arg: &[u8]| call_c(callable, ch, arg);
        let key = Key::Callable(callable as usize);
        let body: Rc<Body> = Rc::new(body);
        Ok(count(ex.exchange.start_keyed(key, &body, arg)?))
    })
}

/// Runs a plain function on input as a task (manage(MakeParallel(fn))): its
/// output, at most output_cap bytes, is the task's result. Returns the task id
/// (as pp_exchange_start does). With PP_REUSE, input over the maximum message
/// size is PP_ETOOBIG; a call that fails leaves no trace.
#[no_mangle]
pub extern "C" fn pp_exchange_call(
    ex: *mut pp_exchange,
    function: pp_function,
    input: *const c_void,
    input_len: usize,
    output_cap: usize,
) -> c_int {
    guard(|| {
        let function = function.ok_or(Error::Invalid)?;
        // SAFETY: handle and buffer come from the C caller as documented.
        let (ex, input) = unsafe { (exchange_ref(ex)?, bytes(input, input_len)?) };
        let body = FunctionBody::cached(&mut ex.function, function, output_cap);
        Ok(count(body.start(&mut ex.exchange, input)?))
    })
}

/// The C function type behind [`pp_function`].
pub(crate) type Function =
    unsafe extern "C" fn(*const c_void, usize, *mut c_void, usize, *mut usize) -> c_int;

/// Calls the C `function` on `input`, writing into `output`; returns how
/// many bytes it wrote. Its nonzero return is the task's (or record's)
/// error, and so is writing more than `output` holds (PP_ETOOBIG). The one
/// adapter of a C function, for exchanges and records pmap alike.
pub(crate) fn call_function(
    function: Function,
    input: &[u8],
    output: &mut [u8],
) -> core::result::Result<usize, RemoteError> {
    let mut len = 0usize;
    // SAFETY: `function` is the caller's function with this signature; the
    // buffers are valid for the lengths passed.
    let rc = unsafe {
        function(
            input.as_ptr().cast(),
            input.len(),
            output.as_mut_ptr().cast(),
            output.len(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(RemoteError::new(rc, "function failed"));
    }
    if len > output.len() {
        return Err(RemoteError::new(
            crate::error::code::TOOBIG,
            "function wrote more than output_cap bytes",
        ));
    }
    Ok(len)
}

/// A plain C function as a task's body: its output, at most `output_cap`
/// bytes, is the task's one message.
struct FunctionBody {
    key: Key,
    body: Rc<Body>,
}

/// Outputs up to this size are written on the worker's stack, not into
/// memory allocated for each task.
const STACK_OUTPUT: usize = 256;

impl FunctionBody {
    fn new(function: Function, output_cap: usize) -> FunctionBody {
        let body = move |ch: &mut Channel, input: &[u8]| {
            let mut small = [0u8; STACK_OUTPUT];
            let mut large;
            let output = match small.get_mut(..output_cap) {
                Some(output) => output,
                None => {
                    // An output the process has no memory for fails its
                    // task (ENOMEM).
                    large = crate::channel::try_vec(output_cap).map_err(RemoteError::from)?;
                    &mut large[..]
                }
            };
            let len = call_function(function, input, output)?;
            ch.send(&output[..len]).map_err(RemoteError::from)
        };
        FunctionBody {
            key: Key::Function(function as usize, output_cap),
            body: Rc::new(body),
        }
    }

    /// The body of `function` with `output_cap` in `cache`, made there if
    /// the cache holds another one or none.
    fn cached(
        cache: &mut Option<FunctionBody>,
        function: Function,
        output_cap: usize,
    ) -> &FunctionBody {
        let key = Key::Function(function as usize, output_cap);
        let make = || FunctionBody::new(function, output_cap);
        if cache.as_ref().is_some_and(|made| made.key != key) {
            *cache = Some(make());
        }
        cache.get_or_insert_with(make)
    }

    /// Starts the function on `input` as a task of `exchange`.
    fn start(&self, exchange: &mut Exchange<Growable, CStore>, input: &[u8]) -> Result<TaskId> {
        exchange.start_keyed(self.key, &self.body, input)
    }
}

/// Creates a process monitored by the exchange (fork-style), once it is
/// below its limit. In the creator returns the new pid; in the new process
/// returns 0 and stores its channel in *child (finish with pp_exit).
#[no_mangle]
pub extern "C" fn pp_exchange_create(ex: *mut pp_exchange, child: *mut *mut pp_channel) -> c_int {
    guard(|| {
        require(child)?;
        // SAFETY: the handle comes from the C caller as documented.
        let ex = unsafe { exchange_ref(ex) }?;
        match ex.exchange.create()? {
            CreatedTask::Parent { pid, .. } => Ok(pid),
            CreatedTask::Child(ch) => {
                // SAFETY: `child` was checked non-NULL.
                unsafe { write_out(child, channel_into_handle(ch)) }?;
                Ok(0)
            }
        }
    })
}

/// Takes the next result of a queue or map (a map keeps it for pp_map_get
/// until it is freed): copies it into buf, stores its
/// length in *len and returns its task id (>= 0; INT_MAX for any id above
/// it). A failed task gives its error (PP_EREMOTE, PP_EPEER, ...; see
/// pp_exchange_task_error), and pp_exchange_last_task says which task it was.
/// PP_ETOOBIG: *len is set to the size needed and the result stays queued.
/// PP_EDONE when every result was read.
#[no_mangle]
pub extern "C" fn pp_exchange_next(
    ex: *mut pp_exchange,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
) -> c_int {
    guard(|| {
        require(len)?;
        // SAFETY: handle and buffer come from the C caller as documented.
        let (ex, buf) = unsafe { (exchange_ref(ex)?, bytes_mut(buf, cap)?) };
        let (task, outcome) = ex.exchange.peek_bytes(-1)?;
        if let Ok(message) = outcome {
            copy_message(message, buf, len)?;
        }
        take_result(ex, task).map(|()| count(task))
    })
}

/// Copies a result into the caller's buffer and its length to *len (already
/// checked non-NULL); PP_ETOOBIG with *len = the size needed if it does not fit.
fn copy_message(message: &[u8], buf: &mut [u8], len: *mut usize) -> Result<()> {
    // SAFETY: the caller checked `len` non-NULL.
    unsafe { write_out(len, message.len()) }?;
    let capacity = buf.len();
    let dst = buf.get_mut(..message.len()).ok_or(Error::TooBig {
        size: message.len(),
        capacity,
    })?;
    dst.copy_from_slice(message);
    Ok(())
}

/// Takes the next result (already in, of `task`) off the exchange,
/// acknowledging it if it came from a persistent process; a failure is
/// remembered for pp_exchange_task_error and returned as its error.
fn take_result(ex: &mut CExchange, task: TaskId) -> Result<()> {
    ex.last_task = Some(task);
    match ex.exchange.skip_result() {
        Some((_, None)) => Ok(()),
        Some((_, Some(failure))) => {
            let error = failure.error;
            ex.failure = Some(failure);
            Err(error)
        }
        None => Err(Error::Done),
    }
}

/// pp_exchange_next into memory the library allocates (free it with
/// pp_free). Returns the task id. -ENOMEM when there is no memory for the
/// result: it stays for the next call.
#[no_mangle]
pub extern "C" fn pp_exchange_next_alloc(
    ex: *mut pp_exchange,
    data: *mut *mut c_void,
    len: *mut usize,
) -> c_int {
    guard(|| {
        require(data)?;
        require(len)?;
        // SAFETY: the handle comes from the C caller as documented.
        let ex = unsafe { exchange_ref(ex) }?;
        let (task, outcome) = ex.exchange.peek_bytes(-1)?;
        let copy = match outcome {
            Ok(message) => Some(super::CHeap::copy_of(message)?),
            Err(_) => None,
        };
        // A copy not handed out (the result could not be taken) is freed.
        take_result(ex, task)?;
        if let Some((ptr, size)) = copy.map(super::CHeap::release) {
            // SAFETY: both were checked non-NULL.
            unsafe {
                write_out(data, ptr)?;
                write_out(len, size)?;
            }
        }
        Ok(count(task))
    })
}

/// Copies the result of task `index` of a map into buf, waiting only for
/// that task. A map keeps every result until it is freed, so this works
/// before, during and after reading it with pp_exchange_next. Returns 0, the
/// task's error, PP_ETOOBIG (*len = size needed), or PP_EDONE if the task
/// never started.
#[no_mangle]
pub extern "C" fn pp_map_get(
    map: *mut pp_exchange,
    index: usize,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
) -> c_int {
    guard(|| {
        require(len)?;
        // SAFETY: handle and buffer come from the C caller as documented.
        let (ex, buf) = unsafe { (exchange_ref(map)?, bytes_mut(buf, cap)?) };
        if !matches!(ex.exchange.handler(), CStore::Map(_)) {
            return Err(Error::Invalid);
        }
        let task = TaskId::new(index);
        let outcome = ex.exchange.get(task)?;
        ex.last_task = Some(task);
        match outcome {
            Ok(message) => copy_message(message, buf, len).map(|()| 0),
            Err(failure) => {
                let failure = failure.clone();
                let error = failure.error;
                ex.failure = Some(failure);
                Err(error)
            }
        }
    })
}

/// The code and message of the last failed result handed out by
/// pp_exchange_next or pp_map_get, when the task's callable reported it.
/// Returns 1 and writes *code and *message (owned by the exchange, valid
/// until its next call; either pointer may be NULL) if there is one, else 0.
#[no_mangle]
pub extern "C" fn pp_exchange_task_error(
    ex: *const pp_exchange,
    code: *mut c_int,
    message: *mut *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: the handle comes from the C caller as documented.
        let ex = unsafe { exchange_ref(ex) }?;
        let Some(remote) = ex.failure.as_ref().and_then(|f| f.remote.as_deref()) else {
            return Ok(0);
        };
        super::write_remote(remote, code, message)?;
        Ok(1)
    })
}

/// The id of the task whose result or failure the last pp_exchange_next,
/// pp_exchange_next_alloc or pp_map_get handed out, written whole to *task
/// (those calls return an int, which cannot hold an id above INT_MAX, and a
/// failed task's error in place of its id). Returns 0, or PP_EDONE if no
/// result was handed out yet.
#[no_mangle]
pub extern "C" fn pp_exchange_last_task(ex: *const pp_exchange, task: *mut u64) -> c_int {
    guard(|| {
        require(task)?;
        // SAFETY: the handle comes from the C caller as documented.
        let ex = unsafe { exchange_ref(ex) }?;
        let last = ex.last_task.ok_or(Error::Done)?;
        // SAFETY: `task` was checked non-NULL.
        unsafe { write_out(task, last.index() as u64) }?;
        Ok(0)
    })
}

/// The id the next task started, called, created or added will get, written
/// whole to *task (the calls that start one return it as an int: INT_MAX for
/// any id above it). Returns 0.
#[no_mangle]
pub extern "C" fn pp_exchange_next_id(ex: *const pp_exchange, task: *mut u64) -> c_int {
    guard(|| {
        require(task)?;
        // SAFETY: the handle comes from the C caller as documented.
        let ex = unsafe { exchange_ref(ex) }?;
        let next = ex.exchange.next_id();
        // SAFETY: `task` was checked non-NULL.
        unsafe { write_out(task, next.index() as u64) }?;
        Ok(0)
    })
}

/// `outputs[i] = function(inputs[i])` for count fixed-size records, in other
/// processes, at most limit at once (PP_CORES, 0: one per processor;
/// PP_UNLIMITED: no limit). An output shorter
/// than output_size is zero-filled. With PP_REUSE, `limit` workers forked for
/// the call (PP_UNLIMITED, like PP_CORES: one per processor, never more than
/// count, since records are shared out rather than given a process each)
/// share memory with the caller: they read the inputs in place,
/// write the outputs into a shared mapping and take records in chunks that
/// shrink as the work runs out; a worker
/// that dies fails only the record it was running. The function must not
/// touch the outputs array itself (the workers do not map it). Records are
/// not sent, so their size has no limit but memory's. Without PP_REUSE,
/// each record runs in a process of its own. Every record runs. Returns 0;
/// PP_EREMOTE if a function returned nonzero (or wrote more than
/// output_size bytes), PP_EPEER if a process died (the first failure in
/// input order; the outputs of the other records are written, and a failed
/// record's output is left as it was, with or without PP_REUSE).
/// pp_pmap_status reports every record.
#[no_mangle]
pub extern "C" fn pp_pmap(
    function: pp_function,
    inputs: *const c_void,
    input_size: usize,
    outputs: *mut c_void,
    output_size: usize,
    count: usize,
    limit: usize,
    flags: c_uint,
) -> c_int {
    guard(|| {
        let options = options(flags)?;
        let function = function.ok_or(Error::Invalid)?;
        if options.continuous || options.keep_removed {
            return Err(Error::Invalid);
        }
        if options.reuse {
            let failures = super::pmap::records(
                function,
                inputs,
                input_size,
                outputs,
                output_size,
                count,
                limit,
            )?;
            return Ok(failures.first().map_or(0, |(_, f)| f.error.code()));
        }
        // SAFETY: the caller passes `count` records of each size.
        let (inputs, outputs) =
            unsafe { super::records(inputs, input_size, outputs, output_size, count) }?;
        let mut map = Exchange::new(limit_of(limit), options, CStore::Map(MapStore::default()));
        // C callers fork as fork(2) does: the header states the contract.
        map.accept_fork_contract();
        let body = FunctionBody::new(function, output_size);
        for i in 0..count {
            let input = &inputs[i * input_size..(i + 1) * input_size];
            body.start(&mut map, input)?;
        }
        let mut first_failure = 0;
        for i in 0..count {
            let output = &mut outputs[i * output_size..(i + 1) * output_size];
            match map.next_result(-1)?.1 {
                Ok(message) => {
                    let n = message.len().min(output.len());
                    output[..n].copy_from_slice(&message[..n]);
                    output[n..].fill(0);
                }
                Err(failure) if first_failure == 0 => first_failure = failure.error.code(),
                Err(_) => {}
            }
        }
        Ok(first_failure)
    })
}

"""pprocess from Python: a pure-ctypes binding of libpprocess's C ABI.

A Pythonic slice of the API in include/pprocess.h:

    import pprocess_ctypes as pp

    def shout(channel, arg):                  # runs in a new (forked) process
        channel.send(arg.upper())

    with pp.start(shout, b"hello") as channel:
        assert channel.receive() == b"HELLO"

    # [f(x) for x in inputs] in other processes: results in input order.
    squares = pp.pmap(lambda x: bytes([x[0] * x[0]]), [bytes([i]) for i in range(8)])

    with pp.Queue(limit=4) as queue:           # results as they arrive
        for word in (b"a", b"b", b"c"):
            queue.call(bytes.upper, word)
        assert sorted(queue) == [b"A", b"B", b"C"]

Processes are created with fork, as pprocess does: the new process is a copy
of this Python interpreter and runs the Python callable there. Create
processes from a single-threaded program (another thread holding the GIL at
the fork would leave the new process stuck).

Errors are exceptions carrying the library's code and message: `Error`
(`.code`, `.message` from pp_strerror) and its subclasses `Closed`,
`PeerEnded` (a process that ended or was killed before answering: `.pid`,
`.status`, `.signal`, `.exit_code`), `RemoteError` (the other process's
callable failed: `.remote_code`, `.remote_message`) and `Timeout`.

The library is loaded from, in this order:
  1. the path in the environment variable PPROCESS_LIB;
  2. the crate's own build next to this file: ../../target/release or
     ../../target/debug (`make` in the repository root makes
     target/release/libpprocess.so; `make PROFILE=dev`, target/debug);
  3. the system's library path: libpprocess.so installed with
     `make install PREFIX=...` (with LD_LIBRARY_PATH=PREFIX/lib if need be).
"""

import ctypes
import os
import sys
import traceback
from ctypes import POINTER, byref, c_char_p, c_int, c_size_t, c_uint, c_uint64, c_void_p

__all__ = [
    "Channel", "Closed", "Error", "Map", "PeerEnded", "Queue", "RemoteError", "Timeout",
    "create", "exit", "number_of_cores", "pmap", "pmap_records", "start", "strerror", "version",
    "waitall",
]

# Library codes and exchange flags: the values of include/pprocess.h (the
# tests compare them with the header).
PP_ECLOSED = -1000
PP_EPEER = -1001
PP_EREMOTE = -1002
PP_EPROTO = -1003
PP_ETOOBIG = -1004
PP_ETIMEDOUT = -1005
PP_EDONE = -1006
PP_EBUSY = -1007
PP_EADDR = -1008
PP_EPERM = -1009
PP_EPANIC = -1010
PP_EINVAL = -1011
PP_ETHREADS = -1012
PP_REUSE = 1
PP_CONTINUOUS = 2
PP_KEEP_REMOVED = 4
PP_BATCH = 8  # accepted, changes nothing: PP_REUSE always batches answers
PP_CORES = 0
PP_UNLIMITED = c_size_t(-1).value  # SIZE_MAX

# The exit status of a created process whose Python callable raised.
EXIT_CALLABLE_ERROR = 1


def _find_library():
    path = os.environ.get("PPROCESS_LIB")
    if path:
        return path
    target = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "target")
    for profile in ("release", "debug"):
        candidate = os.path.normpath(os.path.join(target, profile, "libpprocess.so"))
        if os.path.exists(candidate):
            return candidate
    return "libpprocess.so"


_lib = ctypes.CDLL(_find_library())

_CALLABLE = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t)
_FUNCTION = ctypes.CFUNCTYPE(c_int, c_void_p, c_size_t, c_void_p, c_size_t, POINTER(c_size_t))


def _declare(name, restype, *argtypes):
    function = getattr(_lib, name)
    function.restype = restype
    function.argtypes = argtypes


_declare("pp_version", c_char_p)
_declare("pp_strerror", c_char_p, c_int)
_declare("pp_create", c_int, POINTER(c_void_p))
_declare("pp_start", c_int, _CALLABLE, c_char_p, c_size_t, POINTER(c_void_p))
_declare("pp_exit", None, c_void_p, c_int)
_declare("pp_send", c_int, c_void_p, c_char_p, c_size_t)
_declare("pp_send_acked", c_int, c_void_p, c_char_p, c_size_t)
_declare("pp_send_error", c_int, c_void_p, c_int, c_char_p)
_declare("pp_receive_timeout", c_int, c_void_p, c_void_p, c_size_t, POINTER(c_size_t), c_int)
_declare("pp_receive_alloc", c_int, c_void_p, POINTER(c_void_p), POINTER(c_size_t))
_declare("pp_free", None, c_void_p)
_declare("pp_channel_remote_error", c_int, c_void_p, POINTER(c_int), POINTER(c_char_p))
_declare("pp_channel_pid", c_int, c_void_p)
_declare("pp_channel_fd", c_int, c_void_p)
_declare("pp_channel_wait", c_int, c_void_p, POINTER(c_int))
_declare("pp_channel_close", None, c_void_p)
_declare("pp_waitall", c_int)
_declare("pp_number_of_cores", c_int)
_declare("pp_queue_new", c_int, c_size_t, c_uint, POINTER(c_void_p))
_declare("pp_map_new", c_int, c_size_t, c_uint, POINTER(c_void_p))
_declare("pp_exchange_free", None, c_void_p)
_declare("pp_exchange_start", c_int, c_void_p, _CALLABLE, c_char_p, c_size_t)
_declare("pp_exchange_next_alloc", c_int, c_void_p, POINTER(c_void_p), POINTER(c_size_t))
_declare("pp_map_get", c_int, c_void_p, c_size_t, c_void_p, c_size_t, POINTER(c_size_t))
_declare("pp_exchange_next_id", c_int, c_void_p, POINTER(c_uint64))
_declare("pp_exchange_task_error", c_int, c_void_p, POINTER(c_int), POINTER(c_char_p))
_declare("pp_exchange_last_task", c_int, c_void_p, POINTER(c_uint64))
_declare("pp_exchange_finish", c_int, c_void_p)
_declare("pp_pmap_status", c_int, _FUNCTION, c_char_p, c_size_t, c_void_p, c_size_t, c_size_t,
         c_size_t, POINTER(c_int))


def version():
    """The library's version, e.g. "0.1.0"."""
    return _lib.pp_version().decode()


def strerror(code):
    """The library's description of a return code (a PP_E* code or -errno)."""
    return _lib.pp_strerror(code).decode("utf-8", "replace")


def number_of_cores():
    """The number of online processors."""
    return _lib.pp_number_of_cores()


def waitall():
    """Waits for every child process to end; returns how many."""
    return _check(_lib.pp_waitall())


# Errors.

class Error(Exception):
    """A pprocess call failed: `code` is its return code (a PP_E* code or
    -errno), `message` the library's description of it."""

    def __init__(self, code, message=None):
        self.code = code
        self.message = strerror(code) if message is None else message
        super().__init__(code, self.message)

    def __str__(self):
        return f"{self.message} (code {self.code})"


class Closed(Error):
    """The peer closed the channel: no more messages (PP_ECLOSED)."""

    def __init__(self):
        super().__init__(PP_ECLOSED)


class Timeout(Error, TimeoutError):
    """The timeout passed first (PP_ETIMEDOUT)."""

    def __init__(self):
        super().__init__(PP_ETIMEDOUT)


class PeerEnded(Error):
    """The peer process ended (exit status or signal) before answering
    (PP_EPEER). `pid` and the raw wait `status` are known when the error
    came from a channel."""

    def __init__(self, pid=None, status=None):
        super().__init__(PP_EPEER)
        self.pid = pid
        self.status = status

    @property
    def signal(self):
        """The signal that killed the process, or None."""
        if self.status is not None and os.WIFSIGNALED(self.status):
            return os.WTERMSIG(self.status)
        return None

    @property
    def exit_code(self):
        """The process's exit code, or None."""
        if self.status is not None and os.WIFEXITED(self.status):
            return os.WEXITSTATUS(self.status)
        return None

    def __str__(self):
        if self.pid is None:
            return super().__str__()
        if self.signal is not None:
            how = f"killed by signal {self.signal}"
        else:
            how = f"exit status {self.exit_code}"
        return f"{super().__str__()}: process {self.pid}, {how}"


class RemoteError(Error):
    """The other process's callable failed (PP_EREMOTE) with `remote_code`
    and `remote_message`.

    Raise it in a created process to fail with that code and message; any
    other exception there fails with PP_EPANIC and "ExceptionType: text"."""

    def __init__(self, remote_code, remote_message=""):
        super().__init__(PP_EREMOTE)
        self.remote_code = remote_code
        self.remote_message = remote_message

    def __str__(self):
        return f"{self.message}: {self.remote_message} (code {self.remote_code})"


def _check(rc, remote_error=None):
    """Returns rc when it is not an error; raises the matching exception
    otherwise. `remote_error` reads the (code, message) of a PP_EREMOTE."""
    if rc >= 0:
        return rc
    if rc == PP_ECLOSED:
        raise Closed()
    if rc == PP_ETIMEDOUT:
        raise Timeout()
    if rc == PP_EPEER:
        raise PeerEnded()
    if rc == PP_EREMOTE and remote_error is not None:
        code, message = c_int(), c_char_p()
        if remote_error(byref(code), byref(message)) == 1:
            raise RemoteError(code.value, (message.value or b"").decode("utf-8", "replace"))
    raise Error(rc)


def _take(data, length):
    """The bytes of memory the library allocated, which this frees."""
    try:
        return ctypes.string_at(data, length.value) if length.value else b""
    finally:
        _lib.pp_free(data)


def _flush():
    """Flushes Python's buffered output: before a fork, so that the new
    process does not print it again; in a new process, before it exits."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass


# Processes and channels.

class Channel:
    """One end of a channel between two processes. Use it as a context
    manager, or close() it."""

    def __init__(self, handle, owned=True):
        self._handle = handle
        self._owned = owned
        self._owner = os.getpid()

    def _live(self):
        if not self._handle:
            raise Error(PP_EINVAL, "the channel is closed")
        return self._handle

    def _remote_error(self, code, message):
        return _lib.pp_channel_remote_error(self._handle, code, message)

    def send(self, data):
        """Sends `data` (bytes-like) as one message."""
        data = bytes(data)
        _check(_lib.pp_send(self._live(), data, len(data)))

    def send_acked(self, data):
        """Sends `data` and waits until the peer has received it."""
        data = bytes(data)
        _check(_lib.pp_send_acked(self._live(), data, len(data)), self._remote_error)

    def receive(self, timeout=None):
        """Receives one message as bytes, waiting at most `timeout` seconds
        (None: as long as it takes)."""
        handle = self._live()
        data, length = c_void_p(), c_size_t()
        if timeout is None:
            rc = _lib.pp_receive_alloc(handle, byref(data), byref(length))
            self._check(rc)
            return _take(data, length)
        buffer = ctypes.create_string_buffer(4096)
        milliseconds = max(0, int(timeout * 1000))
        while True:
            rc = _lib.pp_receive_timeout(
                handle, buffer, len(buffer), byref(length), milliseconds)
            if rc != PP_ETOOBIG:
                break
            # The message stays queued; length is the size it needs.
            buffer = ctypes.create_string_buffer(length.value)
        self._check(rc)
        return buffer.raw[:length.value]

    def _check(self, rc):
        try:
            _check(rc, self._remote_error)
        except PeerEnded:
            raise PeerEnded(self.pid, self._status()) from None

    def _status(self):
        status = c_int()
        if _lib.pp_channel_wait(self._handle, byref(status)) < 0:
            return None
        return status.value

    @property
    def pid(self):
        """The created process's pid seen from its creator; 0 on the other side."""
        return _check(_lib.pp_channel_pid(self._live()))

    def fileno(self):
        """The channel's descriptor, for select/poll (owned by the channel)."""
        return _check(_lib.pp_channel_fd(self._live()))

    def wait(self):
        """Waits for the created process to end; returns its raw wait status
        (decode it with os.waitstatus_to_exitcode or os.WIFEXITED...)."""
        status = c_int()
        _check(_lib.pp_channel_wait(self._live(), byref(status)))
        return status.value

    def close(self):
        """Closes the channel (the process is still collected later)."""
        if self._handle and self._owned:
            _lib.pp_channel_close(self._handle)
        self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # Only in the process that made it: a created process inherits a copy
        # of this object, but not the channel.
        if getattr(self, "_owner", None) == os.getpid():
            self.close()


def _callable(function):
    """A C pp_callable that runs function(channel, arg_bytes) in the created
    process. An exception there becomes an error frame (RemoteError's code
    and message, or PP_EPANIC and the exception's type and text) and exit
    status EXIT_CALLABLE_ERROR."""

    def call(handle, arg, arg_len):
        channel = Channel(handle, owned=False)
        try:
            function(channel, ctypes.string_at(arg, arg_len) if arg_len else b"")
        except SystemExit as stop:
            _flush()
            status = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
            _lib.pp_exit(None, status)
        except BaseException as error:
            if isinstance(error, RemoteError):
                code, message = error.remote_code, error.remote_message
            elif isinstance(error, Error):
                code, message = error.code, str(error)
            else:
                traceback.print_exc()
                code, message = PP_EPANIC, f"{type(error).__name__}: {error}"
            _lib.pp_send_error(handle, code, message.encode("utf-8", "replace"))
            _flush()
            # Exit here rather than return nonzero, which would send a second,
            # generic error frame. The channel stays the library's (NULL).
            _lib.pp_exit(None, EXIT_CALLABLE_ERROR)
        _flush()
        return 0

    return _CALLABLE(call)


def start(function, arg=b""):
    """Runs function(channel, arg) in a new process; returns the Channel to
    it. `arg` (bytes) is copied into the new process, which exits when the
    function returns."""
    arg = bytes(arg)
    handle = c_void_p()
    _flush()
    _check(_lib.pp_start(_callable(function), arg, len(arg), byref(handle)))
    return Channel(handle.value)


def create():
    """Creates a process connected by a channel (fork-style): returns
    (pid, channel) in the creator and (0, channel) in the new process, which
    should finish with exit(channel, status)."""
    handle = c_void_p()
    _flush()
    pid = _check(_lib.pp_create(byref(handle)))
    return pid, Channel(handle.value)


def exit(channel=None, status=0):
    """Ends a created process: what was sent stays deliverable, output is
    flushed, the channel is closed, and the process exits with `status` at
    once (no Python cleanup). Does not return."""
    _flush()
    handle = None
    if channel is not None and channel._owned:
        handle, channel._handle = channel._handle, None
    _lib.pp_exit(handle, status)


# Queues and maps.

class Queue:
    """Tasks run in other processes, at most `limit` at once (0: one per
    processor; None: no limit, as pprocess's limit=None); iterate to get each task's result (bytes) in the order they
    arrive. A failed task's error is raised from the iteration, which can go
    on afterwards. Use it as a context manager, or close() it: that kills
    the processes still running."""

    _new = _lib.pp_queue_new

    def __init__(self, limit=0, reuse=False, continuous=False):
        flags = (PP_REUSE if reuse else 0) | (PP_CONTINUOUS if continuous else 0)
        handle = c_void_p()
        limit = PP_UNLIMITED if limit is None else limit
        _check(type(self)._new(limit, flags, byref(handle)))
        self._handle = handle.value
        self._owner = os.getpid()
        # C callables by Python function: they must live as long as the
        # exchange may start tasks, and one function keeps one address, so
        # that reused workers serve all its tasks.
        self._callables = {}

    def _live(self):
        if not self._handle:
            raise Error(PP_EINVAL, "the queue is closed")
        return self._handle

    def start(self, function, arg=b""):
        """Runs function(channel, arg) as a task; what it sends on the
        channel is its result. Returns the task id."""
        key = ("start", function)
        if key not in self._callables:
            self._callables[key] = _callable(function)
        return self._start(self._callables[key], arg)

    def call(self, function, arg=b""):
        """Runs function(arg) -> bytes as a task (pprocess's
        manage(MakeParallel(function))). Returns the task id."""
        key = ("call", function)
        if key not in self._callables:
            self._callables[key] = _callable(
                lambda channel, arg: channel.send(function(arg)))
        return self._start(self._callables[key], arg)

    def _start(self, c_callable, arg):
        arg = bytes(arg)
        _flush()
        return _check(_lib.pp_exchange_start(self._live(), c_callable, arg, len(arg)))

    def _task_error(self, code, message):
        return _lib.pp_exchange_task_error(self._handle, code, message)

    def __iter__(self):
        return self

    def __next__(self):
        data, length = c_void_p(), c_size_t()
        _flush()  # waiting tasks may be started now
        rc = _lib.pp_exchange_next_alloc(self._live(), byref(data), byref(length))
        if rc == PP_EDONE:
            raise StopIteration
        try:
            _check(rc, self._task_error)
        except Error as error:
            error.task = self.last_task  # which task failed
            raise
        return _take(data, length)

    @property
    def last_task(self):
        """The id of the task whose result (or failure: also the `task` of
        the exception raised for it) the last next() handed out; None
        before the first."""
        task = c_uint64()
        if _lib.pp_exchange_last_task(self._live(), byref(task)) < 0:
            return None
        return task.value

    def finish(self):
        """Waits for every task to end."""
        _check(_lib.pp_exchange_finish(self._live()))

    def close(self):
        """Frees the queue: closes its channels and collects its processes,
        killing those still running."""
        if self._handle:
            _lib.pp_exchange_free(self._handle)
        self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_owner", None) == os.getpid():
            self.close()


class Map(Queue):
    """A Queue whose results come in the order the tasks were started. It
    keeps every result until it is closed: map[i] and map[a:b] (the
    tutorial's results[i*N:i*N+N]) wait only for those tasks, before,
    during or after iterating it."""

    _new = _lib.pp_map_new

    def __getitem__(self, index):
        if isinstance(index, slice):
            started = c_uint64()
            _check(_lib.pp_exchange_next_id(self._live(), byref(started)))
            return [self[i] for i in range(*index.indices(started.value))]
        if index < 0:
            raise IndexError(index)
        length = c_size_t()
        buf = ctypes.create_string_buffer(64)
        _flush()
        while True:
            rc = _lib.pp_map_get(self._live(), index, buf, len(buf), byref(length))
            if rc == PP_ETOOBIG:
                buf = ctypes.create_string_buffer(length.value)
                continue
            if rc == PP_EDONE:
                raise IndexError(index)
            try:
                _check(rc, self._task_error)
            except Error as error:
                error.task = index
                raise
            return buf.raw[:length.value]


def pmap(function, inputs, limit=0, reuse=False):
    """[function(x) for x in inputs], each call in another process, at most
    `limit` at once (0: one per processor; None: no limit); with `reuse`, workers are reused.
    function takes and returns bytes. Raises the first failure in input
    order."""
    with Map(limit, reuse=reuse) as results:
        for item in inputs:
            results.call(function, item)
        return list(results)


def pmap_records(function, data, input_size, output_size, limit=0):
    """function(record) for each input_size-byte record of `data`, in `limit`
    worker processes (0: one per processor) forked for the call, which read
    `data` in place and write the outputs into shared memory (pp_pmap_status).
    function takes a record's bytes and returns at most output_size bytes.

    Returns (outputs, status): the outputs as one bytes object, output_size
    bytes per record in input order (zero-filled), and each record's status:
    0, the code of a RemoteError the function raised (PP_EPANIC for another
    exception), PP_ETOOBIG for a result over output_size, or PP_EPEER for
    the record a worker was running when it died."""
    if input_size <= 0 or output_size < 0 or len(data) % input_size:
        raise Error(PP_EINVAL)
    count = len(data) // input_size

    def call(record, record_len, output, output_cap, output_len):
        try:
            result = bytes(function(ctypes.string_at(record, record_len)))
        except RemoteError as error:
            return error.remote_code or PP_EPANIC
        except BaseException:
            traceback.print_exc()
            return PP_EPANIC
        if len(result) > output_cap:
            return PP_ETOOBIG
        ctypes.memmove(output, result, len(result))
        output_len[0] = len(result)
        return 0

    c_function = _FUNCTION(call)
    outputs = ctypes.create_string_buffer(count * output_size)
    status = (c_int * count)()
    _flush()
    _check(_lib.pp_pmap_status(c_function, bytes(data), input_size, outputs, output_size, count,
                               limit, status))
    return outputs.raw, list(status)

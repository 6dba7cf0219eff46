"""Processes and channels: pprocess's create, start, exit, Channel,
create_persistent, start_persistent, connect_persistent, waitall and
get_number_of_cores, over the C library."""

from __future__ import annotations

import ctypes
import os
import pickle
import sys
from ctypes import byref, c_int, c_size_t, c_void_p
from typing import Any, Callable, Optional, TypeVar

from . import _capi
from ._capi import forking, lib
from ._errors import PeerEnded, Raised, check, error_for

__all__ = [
    "Channel", "close_streams", "connect_persistent", "create", "create_persistent", "exit",
    "get_number_of_cores", "start", "start_persistent", "waitall",
]

_PROTOCOL = pickle.HIGHEST_PROTOCOL
_BUFFER = 64 * 1024
#: How long a receive that met a dead peer waits for its wait status.
_STATUS_WAIT_MS = 2000


_dumps = pickle.dumps
_loads = pickle.loads
_pp_send = lib.pp_send
_pp_receive_timeout = lib.pp_receive_timeout


def dumps(obj: object) -> bytes:
    """Pickles a message."""
    return pickle.dumps(obj, _PROTOCOL)


def loads(data: Any) -> Any:
    """Unpickles a message; a created process's exception is raised here."""
    obj = pickle.loads(data)
    if type(obj) is Raised:
        raise obj.exception()
    return obj


_Self = TypeVar("_Self", bound="_Closes")


class _Closes:
    """``close()`` at the end of a ``with`` block, and when collected."""

    def close(self) -> None:
        raise NotImplementedError

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Channel(_Closes):
    """One end of a channel between a creating and a created process.

    ``send`` and ``receive`` carry any picklable object. The creator's end
    knows the created process (``pid``, ``wait``); the created process's end
    has ``pid == 0``.

    >>> import pprocess
    >>> def twice(channel, x):
    ...     channel.send(2 * x)
    >>> channel = pprocess.start(twice, 21)
    >>> channel.receive()
    42
    """

    def __init__(self, handle: Optional[int], owned: bool = True) -> None:
        if not handle:
            raise ValueError("pprocess: a NULL channel handle")
        self._handle: Optional[int] = handle
        self._owned = owned
        self._owner = os.getpid()
        self._buffer = ctypes.create_string_buffer(_BUFFER)
        self._address = ctypes.addressof(self._buffer)
        self._view = memoryview(self._buffer)
        self._length = c_size_t()
        self._length_ref = byref(self._length)
        self.pid: int = lib.pp_channel_pid(handle)

    # The handle, checked: a closed channel is an error, not a crash.
    def _h(self) -> int:
        if self._handle is None:
            raise ValueError("the channel is closed")
        return self._handle

    def __repr__(self) -> str:
        return f"<pprocess.Channel pid={self.pid}{'' if self._handle else ' closed'}>"

    def send(self, obj: object) -> None:
        """Sends ``obj`` (pickled; an unpicklable one raises here, and
        nothing is sent)."""
        data = _dumps(obj, _PROTOCOL)
        rc = _pp_send(self._handle or self._h(), data, len(data))
        if rc < 0:
            raise self._error(rc)

    def send_acked(self, obj: object) -> None:
        """Sends ``obj`` and waits until the peer has received it
        (pprocess 0.5's acknowledged send)."""
        data = dumps(obj)
        check(lib.pp_send_acked(self._h(), data, len(data)))

    def receive(self, timeout: Optional[float] = None) -> Any:
        """Receives the next object, waiting at most ``timeout`` seconds
        (None: as long as it takes; then ``pprocess.Timeout``). An exception
        raised by the created process's callable is raised here; a dead peer
        raises ``pprocess.PeerEnded`` naming its pid and signal; a channel the
        peer closed raises ``pprocess.Closed`` (an ``EOFError``)."""
        handle = self._handle or self._h()
        ms = -1 if timeout is None else max(0, int(timeout * 1000))
        rc = _pp_receive_timeout(handle, self._address, _BUFFER, self._length_ref, ms)
        if rc == 0:
            obj = _loads(self._view[: self._length.value])
            if type(obj) is Raised:
                raise obj.exception()
            return obj
        if rc == _capi.PP_ETOOBIG:
            data = c_void_p()
            check(lib.pp_receive_alloc(handle, byref(data), byref(self._length)))
            try:
                return loads(ctypes.string_at(data, self._length.value))
            finally:
                lib.pp_free(data)
        raise self._error(rc)

    def _error(self, rc: int) -> BaseException:
        if rc == _capi.PP_EPEER and self.pid > 0:
            status = c_int()
            if lib.pp_channel_wait_timeout(self._h(), byref(status), _STATUS_WAIT_MS) > 0:
                return PeerEnded(pid=self.pid, status=status.value)
            return PeerEnded(pid=self.pid)
        if rc == _capi.PP_EREMOTE:
            code = c_int()
            message = ctypes.c_char_p()
            if lib.pp_channel_remote_error(self._h(), byref(code), byref(message)) == 1:
                from ._errors import RemoteError

                text = (message.value or b"").decode("utf-8", "replace")
                return RemoteError(remote_code=code.value, remote_message=text)
        return error_for(rc)

    def fileno(self) -> int:
        """The channel's socket descriptor (see pp_channel_fd: receive until
        ``pending()`` is false before polling it again)."""
        return int(check(lib.pp_channel_fd(self._h())))

    def pending(self) -> bool:
        """Whether a message (or the end) can be received without waiting."""
        return bool(lib.pp_channel_pending(self._h()) == 1)

    def wait(self, timeout: Optional[float] = None) -> Optional[int]:
        """Waits for the created process to end; returns its raw wait status
        (None on the created process's side)."""
        if self.pid <= 0:
            return None
        status = c_int()
        ms = -1 if timeout is None else max(0, int(timeout * 1000))
        check(lib.pp_channel_wait_timeout(self._h(), byref(status), ms))
        return status.value

    def close(self) -> None:
        """Closes the channel (the created process is collected later, by
        ``waitall`` or the next create). A channel owned by an exchange is
        closed by it."""
        handle, self._handle = self._handle, None
        if handle is not None and self._owned and os.getpid() == self._owner:
            lib.pp_channel_close(handle)

    # An exchange takes the handle over.
    def _give_away(self) -> int:
        handle = self._h()
        self._owned = False
        return handle

    def _send_exception(self, error: BaseException) -> None:
        try:
            self.send(Raised(error))
        except Exception:
            pass


def flush_streams() -> None:
    """Writes out Python's buffered standard streams (a created process ends
    with _exit, which would drop them)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass


def run_callable(channel: Channel, callable: Callable[..., Any], args: tuple[Any, ...],
                 kw: dict[str, Any]) -> int:
    """Runs a parallel-aware callable in a created process: an exception it
    raises is sent to the creator, which raises it from its receive."""
    try:
        callable(channel, *args, **kw)
    except BaseException as error:  # noqa: BLE001 -- every error goes to the creator
        channel._send_exception(error)
    finally:
        flush_streams()
    return 0


_task_channels: dict[int, Channel] = {}


def task_channel(handle: int) -> Channel:
    """The Channel for a task's C channel in a created process (a reused
    worker runs many tasks on one)."""
    channel = _task_channels.get(handle)
    if channel is None or channel._handle != handle:
        channel = Channel(handle, owned=False)
        _task_channels[handle] = channel
    return channel


def trampoline(callable: Callable[..., Any], args: tuple[Any, ...] = (),
               kw: Optional[dict[str, Any]] = None, pickled: bool = False) -> Any:
    """A C callable running ``callable(channel, *args, **kw)``; with
    ``pickled``, the arguments are the C argument bytes, a pickled
    ``(args, kw)``."""
    fixed_kw = kw or {}

    def call(handle: int, arg: int, length: int) -> int:
        channel = task_channel(handle)
        if pickled:
            try:
                call_args, call_kw = pickle.loads(ctypes.string_at(arg, length))
            except BaseException as error:  # noqa: BLE001
                channel._send_exception(error)
                return 0
            return run_callable(channel, callable, call_args, call_kw)
        return run_callable(channel, callable, args, fixed_kw)

    return _capi.CALLABLE(call)


def create() -> Channel:
    """Creates a process (fork-style): returns the channel to the created
    process in the creator (``channel.pid`` > 0), and the channel to the
    creator in the created process (``channel.pid == 0``), which should end
    with ``pprocess.exit(channel)``."""
    flush_streams()
    out = c_void_p()
    check(forking.pp_create(byref(out)))
    return Channel(out.value)


def start(callable: Callable[..., Any], *args: Any, **kw: Any) -> Channel:
    """Runs ``callable(channel, *args, **kw)`` in a new process and returns
    the creator's channel to it. The arguments are not pickled (the process
    is a fork of this one); what the callable sends is."""
    flush_streams()
    function = trampoline(callable, args, kw)
    out = c_void_p()
    check(forking.pp_start(function, None, 0, byref(out)))
    return Channel(out.value)


def exit(channel: Optional[Channel]) -> None:  # noqa: A001 -- pprocess's name
    """Ends a created process: what it sent stays deliverable, Python's
    streams are flushed, and it exits with status 0. Does not return."""
    flush_streams()
    handle = None if channel is None else channel._handle
    forking.pp_exit(handle, 0)


def waitall() -> int:
    """Waits for every created process to end; returns how many."""
    flush_streams()
    return int(check(lib.pp_waitall()))


def get_number_of_cores() -> int:
    """The number of online processors."""
    return int(lib.pp_number_of_cores())


def _address(address: str) -> bytes:
    return os.fsencode(address)


def create_persistent(address: str) -> Channel:
    """Creates a process whose channel survives disconnection (fork-style):
    a keeper listens at ``address`` (a socket file). The creator gets a
    channel connected there; the created process (``channel.pid == 0``)
    sends its results on its channel and ends with ``pprocess.exit``."""
    flush_streams()
    out = c_void_p()
    check(forking.pp_create_persistent(_address(address), byref(out)))
    return Channel(out.value)


def start_persistent(address: str, callable: Callable[..., Any], *args: Any, **kw: Any) -> int:
    """Runs ``callable(channel, *args, **kw)`` in a detached background
    process listening at ``address`` and returns its pid. Collect the
    results with ``connect_persistent`` or ``BackgroundQueue``, from this
    process or another one; this one may exit meanwhile."""
    flush_streams()
    function = trampoline(callable, args, kw)
    return int(check(forking.pp_start_persistent(_address(address), function, None, 0)))


def connect_persistent(address: str) -> Channel:
    """Connects to the persistent process listening at ``address``: receive
    its results from the channel (``pprocess.Closed`` after the last)."""
    out = c_void_p()
    check(lib.pp_connect(_address(address), byref(out)))
    return Channel(out.value)


def close_streams() -> None:
    """Detaches this process from the streams it shares with its creator
    (standard input, output and error go to /dev/null)."""
    flush_streams()
    check(forking.pp_close_streams())

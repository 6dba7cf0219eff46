"""Exchanges: pprocess's Exchange, Queue, Map, managed callables,
MakeParallel, MakeReusable, pmap and the persistent variants, over the C
library's exchange (its limit, waiting list, reused workers and dead-worker
handling)."""

from __future__ import annotations

import bisect
import ctypes
import itertools
import os
import struct
from ctypes import byref, c_int, c_size_t, c_uint64, c_void_p
from typing import Any, Callable, Iterable, Iterator, Optional, Union, overload

from . import _capi
from ._capi import forking
from ._channel import (
    Channel, _Closes, dumps, flush_streams, get_number_of_cores, loads, run_callable, task_channel,
    trampoline,
)
from ._errors import PeerEnded, Raised, RemoteError, check, error_for

__all__ = [
    "BackgroundCallable", "BackgroundQueue", "Exchange", "MakeParallel", "MakeReusable",
    "ManagedCallable", "Map", "PersistentCallable", "PersistentExchange", "PersistentQueue",
    "Queue", "pmap",
]

_MISSING: Any = object()


def _limit(limit: Optional[int]) -> int:
    if limit is None:
        return _capi.PP_UNLIMITED
    if limit < 0:
        raise ValueError(f"limit must be None or >= 0, not {limit}")
    return limit


def _ms(timeout: Optional[float]) -> int:
    return -1 if timeout is None else max(0, int(timeout))


class Exchange(_Closes):
    """Channels monitored together, under an optional ``limit`` on the
    processes running at once (None: no limit). Subclasses define
    ``store_data(channel)``, called for each channel with a message, which
    enables ``add_wait``, ``wait``, ``finish`` and the managed callables.

    ``reuse``: tasks run in reused worker processes (one per callable, up
    to the limit) instead of a process each. ``continuous``: a task may send
    many results. ``autoclose`` false: channels taken out with ``remove``
    are not closed.

    Timeouts of ``ready`` and ``store`` are milliseconds, as in pprocess.

    >>> import pprocess
    >>> class Squares(pprocess.Exchange):
    ...     def store_data(self, channel):
    ...         self.results.append(channel.receive())
    >>> def square(channel, x):
    ...     channel.send(x * x)
    >>> exchange = Squares(limit=2)
    >>> exchange.results = []
    >>> for x in range(4):
    ...     exchange.start(square, x)
    >>> exchange.finish()
    >>> sorted(exchange.results)
    [0, 1, 4, 9]
    """

    def __init__(self, channels: Optional[Iterable[Channel]] = None, limit: Optional[int] = None,
                 reuse: Union[int, bool] = 0, continuous: Union[int, bool] = 0,
                 autoclose: Union[int, bool] = 1) -> None:
        self.limit = limit
        self.reuse = reuse
        self.continuous = continuous
        self.autoclose = autoclose
        #: The channels the last ``ready`` found ended (or their pids).
        self.removed: list[Union[Channel, int]] = []
        self._owner = os.getpid()
        self._channels: dict[int, Channel] = {}
        self._callables: dict[int, tuple[Callable[..., Any], Any]] = {}
        self._raised: Optional[BaseException] = None
        self._store_function: Any = None
        flags = ((_capi.PP_REUSE if reuse else 0) | (_capi.PP_CONTINUOUS if continuous else 0)
                 | (0 if autoclose else _capi.PP_KEEP_REMOVED))
        out = c_void_p()
        check(self._new(_limit(limit), flags, out))
        self._handle: Optional[int] = out.value
        for channel in channels or []:
            self.add(channel)

    def _new(self, limit: int, flags: int, out: c_void_p) -> int:
        self._store_function = _capi.STORE(self._on_store)
        return int(forking.pp_exchange_new(limit, flags, self._store_function, None, byref(out)))

    # The store callback: store_data's exception is raised after the C call.
    def _on_store(self, _ex: int, handle: int, _ctx: int) -> int:
        try:
            self.store_data(self._channel(handle))
            return 0
        except BaseException as error:  # noqa: BLE001 -- raised again by _call
            if self._raised is None:
                self._raised = error
            return _capi.PP_EINVAL

    def _h(self) -> int:
        if self._handle is None:
            raise ValueError("the exchange is closed")
        return self._handle

    def _call(self, function: Any, *args: Any) -> int:
        """Calls a C exchange function; raises what store_data raised or
        the failed task's error."""
        rc = int(function(self._h(), *args))
        raised, self._raised = self._raised, None
        if raised is not None:
            raise raised
        if rc < 0:
            raise self._task_error(rc)
        return rc

    def _task_error(self, rc: int) -> BaseException:
        if rc == _capi.PP_EPEER:
            pid, status = c_int(), c_int()
            if forking.pp_exchange_task_status(self._h(), byref(pid), byref(status)) == 1:
                return PeerEnded(pid=pid.value, status=status.value)
        if rc == _capi.PP_EREMOTE:
            code, message = c_int(), ctypes.c_char_p()
            if forking.pp_exchange_task_error(self._h(), byref(code), byref(message)) == 1:
                text = (message.value or b"").decode("utf-8", "replace")
                return RemoteError(remote_code=code.value, remote_message=text)
        return error_for(rc)

    def _channel(self, handle: Optional[int]) -> Channel:
        channel = self._channels.get(handle or 0)
        if channel is None or channel._handle != handle:
            channel = Channel(handle, owned=False)
            self._channels[handle or 0] = channel
        return channel

    def _callable(self, callable: Callable[..., Any]) -> Any:
        entry = self._callables.get(id(callable))
        if entry is None or entry[0] is not callable:
            entry = (callable, trampoline(callable, pickled=True))
            self._callables[id(callable)] = entry
        return entry[1]

    def _next_id(self) -> int:
        task = c_uint64()
        check(forking.pp_exchange_next_id(self._h(), byref(task)))
        return task.value

    # Core methods.

    def add(self, channel: Channel) -> None:
        """Monitors ``channel`` (the exchange owns it from now on)."""
        self._task_started(self._next_id(), 1)
        self._channels[channel._h()] = channel
        self._call(forking.pp_exchange_add, channel._give_away())

    def add_wait(self, channel: Channel) -> None:
        """Stores results until below the limit, then adds ``channel``."""
        self._task_started(self._next_id(), 1)
        self._channels[channel._h()] = channel
        self._call(forking.pp_exchange_add_wait, channel._give_away())

    def active(self) -> list[Channel]:
        """The channels monitored now."""
        count = self._call(forking.pp_exchange_channels, None, 0)
        handles = (c_void_p * max(count, 1))()
        count = min(count, self._call(forking.pp_exchange_channels, handles, count))
        live = [self._channel(handles[k]) for k in range(count)]
        self._channels = {channel._h(): channel for channel in live}
        return live

    def ready(self, timeout: Optional[float] = None) -> list[Channel]:
        """Waits up to ``timeout`` milliseconds (None: until one is ready)
        and returns the channels with a message. Channels that ended are
        removed and listed in ``removed``."""
        cap = max(1, forking.pp_exchange_active(self._h()))
        handles = (c_void_p * cap)()
        count = self._call(forking.pp_exchange_ready, _ms(timeout), handles, cap)
        ready = [self._channel(handles[k]) for k in range(count)]
        removed = self._call(forking.pp_exchange_removed, None, None, 0)
        pids = (c_int * max(removed, 1))()
        self._call(forking.pp_exchange_removed, pids, None, removed)
        by_pid = {channel.pid: channel for channel in self._channels.values()}
        self.removed = [by_pid.get(pids[k], pids[k]) for k in range(removed)]
        for gone in self.removed:
            if isinstance(gone, Channel):
                self._channels.pop(gone._handle or 0, None)
                gone._handle = None
        return ready

    def remove(self, channel: Channel) -> None:
        """Stops monitoring ``channel``: it is closed, or, with autoclose
        off, it belongs to the caller again."""
        handle = channel._h()
        self._call(forking.pp_exchange_remove, handle)
        self._channels.pop(handle, None)
        if self.autoclose:
            channel._handle = None
        else:
            channel._owned = True

    def unfinished(self) -> bool:
        """Whether channels are monitored or tasks wait to start."""
        return self._call(forking.pp_exchange_unfinished) == 1

    def busy(self) -> bool:
        """Whether the exchange is at its limit."""
        return self._call(forking.pp_exchange_busy) == 1

    def wait(self) -> None:
        """Stores results until the exchange is below its limit."""
        self._call(forking.pp_exchange_wait)

    def finish(self) -> None:
        """Waits for every task, storing the results."""
        self._call(forking.pp_exchange_finish)

    def store(self, timeout: Optional[float] = None) -> None:
        """Stores the messages of the ready channels, waiting up to
        ``timeout`` milliseconds (None: until one is ready), then starts
        waiting tasks."""
        try:
            self._call(forking.pp_exchange_store, _ms(timeout))
        except TimeoutError:
            pass

    def store_data(self, channel: Channel) -> None:
        """Receives and keeps ``channel``'s message: define it in a
        subclass."""
        raise NotImplementedError("store_data")

    # Convenience methods.

    def start(self, callable: Callable[..., Any], *args: Any, **kw: Any) -> None:
        """Runs ``callable(channel, *args, **kw)`` as a task, now or when
        the exchange is below its limit. The arguments are pickled."""
        flush_streams()
        data = dumps((args, kw))
        task = self._next_id()
        self._task_started(task, 1)
        self._call(forking.pp_exchange_start, self._callable(callable), data, len(data))

    def create(self) -> Optional[Channel]:
        """Creates a process monitored by the exchange (fork-style): None in
        the creator, the channel to the creator in the created process (which
        sends its results and ends with ``pprocess.exit``)."""
        flush_streams()
        task = self._next_id()
        child = c_void_p()
        pid = self._call(forking.pp_exchange_create, byref(child))
        if pid == 0:
            return Channel(child.value)
        self._task_started(task, 1)
        return None

    def manage(self, callable: Callable[..., Any]) -> "ManagedCallable":
        """Wraps a parallel-aware ``callable``: calling the wrapper starts
        it as a task of this exchange."""
        return ManagedCallable(callable, self)

    # Maps number their tasks.
    def _task_started(self, task: int, count: int, chunked: bool = False) -> None:
        pass

    def close(self) -> None:
        """Closes the channels and collects the processes (those still
        running are killed)."""
        handle, self._handle = self._handle, None
        if handle is not None and os.getpid() == self._owner:
            forking.pp_exchange_free(handle)
        for channel in self._channels.values():
            channel._handle = None
        self._channels.clear()


class Queue(Exchange):
    """An exchange whose results are read, by iterating over it, in the
    order they arrive (the C library's queue keeps them).

    >>> import pprocess
    >>> queue = pprocess.Queue(limit=2)
    >>> double = queue.manage(pprocess.MakeParallel(lambda x: 2 * x))
    >>> for x in range(3):
    ...     double(x)
    >>> sorted(queue)
    [0, 2, 4]
    """

    def _new(self, limit: int, flags: int, out: c_void_p) -> int:
        return int(forking.pp_queue_new(limit, flags, byref(out)))

    def store_data(self, channel: Channel) -> None:
        """Results are kept by the C library's queue."""

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        data = c_void_p()
        length = c_size_t()
        rc = int(forking.pp_exchange_next_alloc(self._h(), byref(data), byref(length)))
        if rc == _capi.PP_EDONE:
            raise StopIteration
        if rc < 0:
            raise self._task_error(rc)
        try:
            return loads(ctypes.string_at(data, length.value))
        finally:
            _capi.lib.pp_free(data)

    next = __next__


class Map(Exchange):
    """An exchange whose results are read in the order the tasks were
    started: by iterating, by index or by slice (each waits only for the
    tasks it needs).

    >>> import pprocess
    >>> results = pprocess.Map(limit=2)
    >>> square = results.manage(pprocess.MakeParallel(lambda x: x * x))
    >>> for x in range(5):
    ...     square(x)
    >>> results[1:4]
    [1, 4, 9]
    """

    def __init__(self, *args: Any, **kw: Any) -> None:
        # Each started task covers `count` results from `first`; pmap's tasks
        # answer a list for a chunk of inputs (`chunked`).
        self._firsts: list[int] = []
        self._spans: list[_Span] = []
        self._values: list[Any] = []
        self._unread = 0
        self._buffer = ctypes.create_string_buffer(64 * 1024)
        self._close_when_read = False
        super().__init__(*args, **kw)

    def _new(self, limit: int, flags: int, out: c_void_p) -> int:
        return int(forking.pp_map_new(limit, flags, byref(out)))

    def store_data(self, channel: Channel) -> None:
        """Results are kept by the C library's map."""

    def _task_started(self, task: int, count: int, chunked: bool = False) -> None:
        self._firsts.append(len(self._values))
        self._spans.append(_Span(task, len(self._values), count, chunked))
        self._values.extend([_MISSING] * count)
        self._unread += 1

    def __call__(self, callable: Callable[..., Any], sequence: Iterable[Any]) -> "Map":
        """Starts ``callable(item)`` (wrapped with MakeParallel) for each item
        of ``sequence``; returns this map, which gives the results in order."""
        wrapped = callable if isinstance(callable, MakeParallel) else MakeParallel(callable)
        self._firsts, self._spans, self._values, self._unread = [], [], [], 0
        for item in sequence:
            self.start(wrapped, item)
        return self

    def __len__(self) -> int:
        return len(self._values)

    def _fetch(self, span: "_Span") -> None:
        length = c_size_t()
        while True:
            rc = int(forking.pp_map_get(self._h(), span.task, self._buffer, len(self._buffer),
                                        byref(length)))
            if rc != _capi.PP_ETOOBIG:
                break
            self._buffer = ctypes.create_string_buffer(length.value)
        first, count = span.first, span.count
        span.clean = False
        if rc < 0:
            self._values[first:first + count] = [_Failed(self._task_error(rc))] * count
        else:
            try:
                value = loads(memoryview(self._buffer)[: length.value])
            except BaseException as error:  # noqa: BLE001 -- kept for each access
                self._values[first:first + count] = [_Failed(error)] * count
            else:
                if span.chunked:
                    # pmap's workers answer (clean, results): clean when no
                    # item raised.
                    span.clean, self._values[first:first + count] = value
                else:
                    self._values[first] = value
                    span.clean = type(value) is not Raised
        span.read = True
        self._unread -= 1
        if self._close_when_read and self._unread == 0:
            self.close()

    def _get(self, index: int) -> Any:
        value = self._values[index]
        if value is _MISSING:
            position = index % len(self._values)
            self._fetch(self._spans[bisect.bisect_right(self._firsts, position) - 1])
            value = self._values[index]
        if isinstance(value, _Failed):
            raise value.error
        if type(value) is Raised:
            raise value.exception()
        return value

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: Union[int, slice]) -> Any:
        if isinstance(index, slice):
            return [self._get(k) for k in range(*index.indices(len(self._values)))]
        return self._get(index)

    def __iter__(self) -> Iterator[Any]:
        return itertools.chain.from_iterable(self._parts())

    def _parts(self) -> Iterator[Iterable[Any]]:
        """The results span by span: a clean span's as a list slice (read
        at C speed), another's item by item (raising a failed item's error)."""
        for span in list(self._spans):
            if not span.read:
                self._fetch(span)
            if span.clean:
                yield self._values[span.first:span.first + span.count]
            else:
                yield (self._get(index) for index in range(span.first, span.first + span.count))


class _Span:
    """The results of one task of a map: ``count`` of them from ``first``."""

    __slots__ = ("task", "first", "count", "chunked", "read", "clean")

    def __init__(self, task: int, first: int, count: int, chunked: bool) -> None:
        self.task = task
        self.first = first
        self.count = count
        self.chunked = chunked
        self.read = False
        self.clean = False


class _Failed:
    """A map result whose task failed: its error, raised at each access."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class MakeParallel:
    """Wraps a plain function so that it runs as a parallel-aware callable:
    ``MakeParallel(f)(channel, *args)`` sends ``f(*args)`` on the channel."""

    def __init__(self, callable: Callable[..., Any]) -> None:
        self.callable = callable

    def __call__(self, channel: Channel, *args: Any, **kw: Any) -> None:
        channel.send(self.callable(*args, **kw))


class MakeReusable(MakeParallel):
    """MakeParallel for exchanges with ``reuse``: the C library's reused
    workers call it once per task (pprocess 0.5 looped over the tasks inside
    it; here the worker does)."""


class ManagedCallable:
    """A callable whose calls start tasks in an exchange."""

    def __init__(self, callable: Callable[..., Any], exchange: Exchange) -> None:
        self.callable = callable
        self.exchange = exchange

    def __call__(self, *args: Any, **kw: Any) -> None:
        self.exchange.start(self.callable, *args, **kw)


class Persistent:
    """The persistent methods of PersistentExchange and PersistentQueue:
    tasks run in background processes reachable at an address."""

    def start(self, address: str, callable: Callable[..., Any],
              *args: Any, **kw: Any) -> int:
        """Runs ``callable(channel, *args, **kw)`` in a background process
        listening at ``address`` (once below the limit); returns its pid.
        Collect its results with ``connect``."""
        exchange: Any = self
        flush_streams()
        data = dumps((args, kw))
        return int(exchange._call(forking.pp_exchange_start_persistent, os.fsencode(address),
                                  exchange._callable(callable), data, len(data)))

    def create(self, address: str) -> Optional[Channel]:
        """Creates a process whose channel survives disconnection, monitored
        by the exchange: None in the creator, the channel in the created
        process (which sends its results and ends with ``pprocess.exit``)."""
        exchange: Any = self
        flush_streams()
        task = exchange._next_id()
        child = c_void_p()
        pid = exchange._call(forking.pp_exchange_create_persistent, os.fsencode(address),
                             byref(child))
        if pid == 0:
            return Channel(child.value)
        exchange._task_started(task, 1)
        return None

    def manage(self, address: str, callable: Callable[..., Any]) -> "PersistentCallable":
        """Wraps ``callable``: calling the wrapper starts it in a background
        process at ``address``."""
        return PersistentCallable(address, callable, self)

    def connect(self, address: str) -> None:
        """Monitors the persistent process at ``address`` as a task: its
        results are stored as they arrive."""
        exchange: Any = self
        exchange._task_started(exchange._next_id(), 1)
        exchange._call(forking.pp_exchange_connect, os.fsencode(address))


class PersistentExchange(Persistent, Exchange):  # type: ignore[misc]
    """An Exchange managing persistent processes (define ``store_data``)."""


class PersistentQueue(Persistent, Queue):  # type: ignore[misc]
    """A Queue of the results of persistent processes."""


class PersistentCallable:
    """A callable whose calls start background processes at an address."""

    def __init__(self, address: str, callable: Callable[..., Any], exchange: Any) -> None:
        self.address = address
        self.callable = callable
        self.exchange = exchange

    def __call__(self, *args: Any, **kw: Any) -> None:
        self.exchange.start(self.address, self.callable, *args, **kw)


class BackgroundCallable:
    """A callable run, when called, in a detached background process
    listening at ``address`` (collect the results with BackgroundQueue)."""

    def __init__(self, address: str, callable: Callable[..., Any]) -> None:
        self.address = address
        self.callable = callable

    def __call__(self, *args: Any, **kw: Any) -> None:
        from ._channel import start_persistent

        start_persistent(self.address, self.callable, *args, **kw)


def BackgroundQueue(address: str) -> PersistentQueue:  # noqa: N802 -- pprocess's name
    """A queue of the results of the persistent process at ``address``."""
    queue = PersistentQueue(limit=1)
    queue.connect(address)
    return queue


_SPAN = struct.Struct("=qq")


def pmap(callable: Callable[..., Any], sequence: Iterable[Any],
         limit: Optional[int] = None) -> Map:
    """``map(callable, sequence)`` in other processes, results in order
    (a Map: iterate, index or slice it).

    At most ``limit`` worker processes (None: one per core) are forked once
    and reused: they inherit the inputs at the fork, take them in chunks of
    consecutive items, and send back only the results.

    >>> import pprocess
    >>> list(pprocess.pmap(abs, [-1, 2, -3], limit=2))
    [1, 2, 3]
    """
    function = callable.callable if isinstance(callable, MakeParallel) else callable
    items = sequence if isinstance(sequence, (list, tuple, range)) else list(sequence)
    count = len(items)
    workers = max(1, min(limit or get_number_of_cores(), count))
    result = Map(limit=workers, reuse=1)
    result._close_when_read = True
    chunk = max(1, -(-count // (workers * 16)))

    def run(channel: Channel, first: int, last: int) -> None:
        part = items[first:last]
        try:
            answers = [function(item) for item in part]
        except BaseException:  # noqa: BLE001 -- each item's own error, in its place
            answers = []
            for item in part:
                try:
                    answers.append(function(item))
                except BaseException as error:  # noqa: BLE001
                    answers.append(Raised(error))
            channel.send((False, answers))
        else:
            channel.send((True, answers))

    def run_span(handle: int, arg: int, length: int) -> int:
        first, last = _SPAN.unpack(ctypes.string_at(arg, _SPAN.size))
        return run_callable(task_channel(handle), run, (first, last), {})

    runner = _capi.CALLABLE(run_span)
    result._callables[id(run_span)] = (run_span, runner)
    flush_streams()
    for first in range(0, count, chunk):
        last = min(first + chunk, count)
        task = result._next_id()
        result._task_started(task, last - first, chunked=True)
        result._call(forking.pp_exchange_start, runner, _SPAN.pack(first, last), _SPAN.size)
    if count == 0:
        result.close()
    return result


"""``pprocess.Executor``: the standard ``concurrent.futures.Executor``
interface on reused pprocess worker processes."""

from __future__ import annotations

import collections
import os
import select
import threading
from concurrent.futures import Executor as _Executor
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Optional, TypeVar

from ._channel import Channel, get_number_of_cores, start
from ._errors import Closed, PeerEnded, Raised, Timeout

__all__ = ["Executor"]

T = TypeVar("T")


def _serve(channel: Channel) -> None:
    """A worker: runs each job it receives, answers its result (or its
    exception), and ends at None or when its creator closes the channel."""
    while True:
        try:
            job = channel.receive()
        except Closed:
            return
        except BaseException as error:  # noqa: BLE001 -- a job that cannot be unpickled
            channel.send(Raised(error))
            continue
        if job is None:
            return
        function, args, kw = job
        try:
            answer: Any = function(*args, **kw)
            channel.send(answer)
        except BaseException as error:  # noqa: BLE001 -- the future's exception
            channel.send(Raised(error))


class Executor(_Executor):
    """A ``concurrent.futures.Executor`` whose calls run in ``max_workers``
    worker processes (default: one per core), forked once when it is made
    and reused for every call. Functions, arguments and results are
    pickled, as for ``ProcessPoolExecutor``; a call's exception is raised by
    its future with the worker's traceback attached. A worker that dies
    fails its call with ``pprocess.PeerEnded`` and breaks the executor
    (``BrokenProcessPool`` for the calls that wait).

    Code written against this interface moves unchanged to another
    executor, such as ``mpi4py.futures.MPIPoolExecutor``.

    >>> import pprocess
    >>> with pprocess.Executor(max_workers=2) as executor:
    ...     list(executor.map(abs, [-1, -2, 3]))
    [1, 2, 3]
    """

    def __init__(self, max_workers: Optional[int] = None) -> None:
        count = get_number_of_cores() if max_workers is None else max_workers
        if count <= 0:
            raise ValueError("max_workers must be greater than 0")
        # Forked before this executor's thread exists.
        self._workers: list[Channel] = [start(_serve) for _ in range(count)]
        self._jobs: collections.deque[tuple[Future[Any], Callable[..., Any], tuple[Any, ...],
                                            dict[str, Any]]] = collections.deque()
        self._running: dict[int, Future[Any]] = {}
        self._lock = threading.Lock()
        self._closing = False
        self._broken: Optional[str] = None
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._thread = threading.Thread(target=self._drive, name="pprocess.Executor",
                                        daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Schedules ``fn(*args, **kwargs)``; returns its future."""
        with self._lock:
            if self._broken is not None:
                raise BrokenProcessPool(self._broken)
            if self._closing:
                raise RuntimeError("cannot schedule new futures after shutdown")
            future: Future[T] = Future()
            self._jobs.append((future, fn, args, kwargs))
        self._wake()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Takes no more calls; with ``cancel_futures`` cancels those not
        started; with ``wait`` returns once every call has finished and the
        workers have ended."""
        with self._lock:
            self._closing = True
            if cancel_futures:
                while self._jobs:
                    self._jobs.popleft()[0].cancel()
        self._wake()
        if wait:
            self._thread.join()

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"\0")
        except BlockingIOError:
            pass  # already awake

    def _dispatch(self) -> None:
        with self._lock:
            for index, worker in enumerate(self._workers):
                if index in self._running:
                    continue
                while self._jobs:
                    future, function, args, kw = self._jobs.popleft()
                    if not future.set_running_or_notify_cancel():
                        continue  # cancelled while it waited
                    try:
                        worker.send((function, args, kw))
                    except BaseException as error:  # noqa: BLE001 -- unpicklable call
                        future.set_exception(error)
                        continue
                    self._running[index] = future
                    break

    def _collect(self, index: int) -> None:
        worker = self._workers[index]
        while index in self._running:
            try:
                answer = worker.receive(timeout=0)
            except Timeout:
                return
            except (PeerEnded, Closed) as error:
                self._running.pop(index).set_exception(error)
                self._break(f"a worker process ended: {error}")
                return
            except BaseException as error:  # noqa: BLE001 -- the call's exception
                self._running.pop(index).set_exception(error)
            else:
                self._running.pop(index).set_result(answer)

    def _break(self, reason: str) -> None:
        with self._lock:
            self._broken = reason
            while self._jobs:
                future = self._jobs.popleft()[0]
                if future.set_running_or_notify_cancel():
                    future.set_exception(BrokenProcessPool(reason))

    def _drive(self) -> None:
        poller = select.poll()
        by_fd = {worker.fileno(): index for index, worker in enumerate(self._workers)}
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        poller.register(self._wake_read, select.POLLIN)
        try:
            while True:
                if self._broken is None:
                    self._dispatch()
                with self._lock:
                    done = (self._closing or self._broken is not None) and not self._jobs
                if done and not self._running:
                    break
                for fd, _ in poller.poll():
                    if fd == self._wake_read:
                        os.read(self._wake_read, 4096)
                    else:
                        self._collect(by_fd[fd])
                if self._broken is not None:
                    for index in list(self._running):
                        self._collect(index)
        finally:
            self._stop_workers()

    def _stop_workers(self) -> None:
        for worker in self._workers:
            try:
                worker.send(None)
            except Exception:
                pass
        for worker in self._workers:
            try:
                worker.wait(timeout=10)
            except Exception:
                pass
            worker.close()

    def __del__(self) -> None:
        # The wake-up pipe outlives the thread (submit and shutdown write to
        # it); it is closed once the thread is gone.
        if not self._thread.is_alive():
            for fd in (self._wake_read, self._wake_write):
                try:
                    os.close(fd)
                except OSError:
                    pass

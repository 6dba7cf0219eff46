"""pprocess.Executor against the concurrent.futures behaviours that apply."""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import threading
import time

import pytest

import pprocess


def square(x: int) -> int:
    return x * x


def fail(x: int) -> int:
    raise KeyError(x)


def wait_for_file(path: str) -> str:
    while not os.path.exists(path):
        os.sched_yield()
    return path


def test_results_in_order_with_map_and_submit() -> None:
    with pprocess.Executor(max_workers=2) as executor:
        assert list(executor.map(square, range(100))) == [x * x for x in range(100)]
        assert executor.submit(square, 7).result() == 49


def test_exceptions_carry_the_worker_traceback() -> None:
    with pprocess.Executor(max_workers=1) as executor:
        future = executor.submit(fail, 3)
        with pytest.raises(KeyError):
            future.result()
        assert isinstance(future.exception(), KeyError)
        assert isinstance(future.exception().__cause__, pprocess.RemoteTraceback)
        assert executor.submit(square, 2).result() == 4  # the worker goes on


def test_as_completed_and_wait(tmp_path: object) -> None:
    with pprocess.Executor(max_workers=2) as executor:
        futures = [executor.submit(square, x) for x in range(20)]
        assert sorted(f.result() for f in cf.as_completed(futures)) == [x * x for x in range(20)]
        done, not_done = cf.wait([executor.submit(square, 3)])
        assert len(done) == 1 and not not_done


def test_cancel_a_pending_future(tmp_path: object) -> None:
    gate = os.path.join(str(tmp_path), "gate")
    with pprocess.Executor(max_workers=1) as executor:
        running = executor.submit(wait_for_file, gate)
        pending = executor.submit(square, 5)
        assert pending.cancel() and pending.cancelled()
        open(gate, "w").close()
        assert running.result() == gate
    assert not running.cancel()


def test_shutdown_without_waiting_still_runs_submitted_calls() -> None:
    executor = pprocess.Executor(max_workers=1)
    futures = [executor.submit(square, x) for x in range(10)]
    executor.shutdown(wait=False)
    with pytest.raises(RuntimeError):
        executor.submit(square, 1)
    assert [f.result(timeout=60) for f in futures] == [x * x for x in range(10)]


def test_shutdown_cancels_futures_when_asked(tmp_path: object) -> None:
    gate = os.path.join(str(tmp_path), "gate")
    executor = pprocess.Executor(max_workers=1)
    first = executor.submit(wait_for_file, gate)
    rest = [executor.submit(square, x) for x in range(5)]
    # Only a call not started yet is cancelled: wait until the first one
    # runs (the executor's thread hands it to the worker), or fail.
    deadline = time.monotonic() + 60
    while not first.running() and not first.done():
        assert time.monotonic() < deadline, "the first call never started"
        time.sleep(0.001)
    threading.Timer(0.0, lambda: open(gate, "w").close()).start()
    executor.shutdown(wait=True, cancel_futures=True)
    assert first.result() == gate
    assert all(f.cancelled() or f.done() for f in rest)


def test_a_killed_worker_fails_its_call_and_breaks_the_executor() -> None:
    executor = pprocess.Executor(max_workers=1)
    pid = executor.submit(os.getpid).result()
    with pytest.raises(pprocess.PeerEnded) as caught:
        executor.submit(os.kill, pid, signal.SIGKILL).result(timeout=60)
    assert caught.value.pid == pid and caught.value.signal == signal.SIGKILL
    with pytest.raises(cf.BrokenExecutor):
        executor.submit(square, 1).result(timeout=60)
    executor.shutdown()


def test_an_unpicklable_call_fails_its_future_only() -> None:
    with pprocess.Executor(max_workers=1) as executor:
        with pytest.raises(TypeError, match="pickle"):
            executor.submit(square, threading.Lock()).result()
        assert executor.submit(square, 3).result() == 9

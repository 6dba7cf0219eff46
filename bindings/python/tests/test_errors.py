"""Exceptions across processes, and the C library's codes as exceptions."""

from __future__ import annotations

import os
import re
import signal
import threading
from pathlib import Path

import pytest

import pprocess
from pprocess import _capi


class Custom(Exception):
    """A user-defined exception with a field of its own."""

    def __init__(self, message: str, extra: int) -> None:
        super().__init__(message, extra)
        self.extra = extra


class Unpicklable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


def raise_value_error(ch: pprocess.Channel) -> None:
    raise ValueError("not a number")


def raise_custom(ch: pprocess.Channel) -> None:
    raise Custom("custom failure", 42)


def raise_unpicklable(ch: pprocess.Channel) -> None:
    raise Unpicklable("holds a lock")


def send_unpicklable(ch: pprocess.Channel) -> None:
    ch.send(threading.Lock())


def die(ch: pprocess.Channel) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_value_error_round_trips_with_the_child_traceback() -> None:
    ch = pprocess.start(raise_value_error)
    with pytest.raises(ValueError, match="not a number") as caught:
        ch.receive()
    remote = caught.value.__cause__
    assert isinstance(remote, pprocess.RemoteTraceback)
    assert "raise_value_error" in remote.text and "ValueError: not a number" in remote.text
    assert caught.value.remote_traceback == remote.text  # type: ignore[attr-defined]


def test_user_defined_exception_round_trips() -> None:
    ch = pprocess.start(raise_custom)
    with pytest.raises(Custom) as caught:
        ch.receive()
    assert caught.value.extra == 42 and caught.value.args == ("custom failure", 42)


def test_unpicklable_exception_arrives_as_a_clear_error() -> None:
    ch = pprocess.start(raise_unpicklable)
    with pytest.raises(pprocess.UnpicklableError) as caught:
        ch.receive()
    assert caught.value.type_name.endswith("Unpicklable")
    assert "holds a lock" in str(caught.value) and "Unpicklable" in str(caught.value)
    assert "raise_unpicklable" in caught.value.remote_traceback


def test_unpicklable_send_raises_in_the_sender_and_the_receiver_is_told() -> None:
    ch = pprocess.start(send_unpicklable)
    with pytest.raises(TypeError, match="pickle"):
        ch.receive()  # the child's send raised there, and that error came here
    with pytest.raises(TypeError):
        ch.send(threading.Lock())


def test_exceptions_in_queue_map_and_pmap_tasks() -> None:
    queue = pprocess.Queue(limit=2)
    queue.manage(raise_value_error)()
    with pytest.raises(ValueError):
        next(iter(queue))
    results = pprocess.pmap(lambda x: 1 // x, [1, 0, 2], limit=2)
    assert results[0] == 1 and results[2] == 0
    with pytest.raises(ZeroDivisionError):
        results[1]


def test_store_data_sees_the_childs_exception() -> None:
    class Store(pprocess.Exchange):
        def store_data(self, ch: pprocess.Channel) -> None:
            ch.receive()

    exchange = Store(limit=1)
    exchange.start(raise_custom)
    with pytest.raises(Custom):
        exchange.finish()


def test_killed_child_names_pid_and_signal() -> None:
    ch = pprocess.start(die)
    with pytest.raises(pprocess.PeerEnded) as caught:
        ch.receive()
    assert caught.value.pid == ch.pid and caught.value.signal == signal.SIGKILL
    assert f"process {ch.pid}" in str(caught.value) and "signal 9" in str(caught.value)


@pytest.mark.parametrize("reuse", [0, 1])
def test_killed_task_in_a_map_names_pid_and_signal(reuse: int) -> None:
    results = pprocess.Map(limit=2, reuse=reuse)
    results.manage(pprocess.MakeParallel(abs))(-1)
    results.manage(die)()
    results.manage(pprocess.MakeParallel(abs))(-3)
    assert results[0] == 1 and results[2] == 3
    with pytest.raises(pprocess.PeerEnded) as caught:
        results[1]
    assert caught.value.pid is not None and caught.value.pid > 0
    assert caught.value.signal == signal.SIGKILL


def test_killed_task_in_a_queue_raises_and_the_others_arrive() -> None:
    queue = pprocess.Queue(limit=2, reuse=1)
    double = queue.manage(pprocess.MakeParallel(lambda x: 2 * x))
    for x in range(4):
        double(x)
    queue.manage(die)()
    answers, killed = [], []
    iterator = iter(queue)
    while True:
        try:
            answers.append(next(iterator))
        except StopIteration:
            break
        except pprocess.PeerEnded as error:
            killed.append(error.signal)
    assert sorted(answers) == [0, 2, 4, 6] and killed == [signal.SIGKILL]


def test_killed_task_in_a_custom_exchange_raises_from_finish() -> None:
    class Store(pprocess.Exchange):
        def store_data(self, ch: pprocess.Channel) -> None:
            ch.receive()

    exchange = Store(limit=1)
    exchange.start(die)
    with pytest.raises(pprocess.PeerEnded):
        exchange.finish()


def test_timeout_and_closed_are_the_python_exceptions() -> None:
    ch = pprocess.start(lambda ch: ch.receive())
    with pytest.raises(TimeoutError):
        ch.receive(timeout=0.01)
    assert issubclass(pprocess.Timeout, pprocess.Error)
    ch.send("done")
    with pytest.raises(EOFError):
        ch.receive()
    assert issubclass(pprocess.Closed, pprocess.Error)


def test_bad_addresses(tmp_path: Path) -> None:
    with pytest.raises(pprocess.AddressError):
        pprocess.start_persistent(str(tmp_path / ("x" * 200)), raise_value_error)
    with pytest.raises(FileNotFoundError):
        pprocess.connect_persistent(str(tmp_path / "nothing.socket"))
    plain = tmp_path / "plain"
    plain.write_text("kept")
    with pytest.raises(pprocess.AddressError):
        pprocess.start_persistent(str(plain), raise_value_error)
    assert plain.read_text() == "kept"


def test_codes_match_the_header() -> None:
    header = (Path(__file__).parents[3] / "include" / "pprocess.h").read_text()
    names = [name for name in dir(_capi) if name.startswith("PP_E")]
    assert len(names) == 13
    for name in names:
        value = getattr(_capi, name)
        assert re.search(rf"#define {name} \({value}\)", header), name
    for name in ("PP_REUSE", "PP_CONTINUOUS", "PP_KEEP_REMOVED", "PP_CORES"):
        assert re.search(rf"#define {name} {getattr(_capi, name)}\b", header), name
    assert pprocess.strerror(_capi.PP_ECLOSED) and pprocess.version()

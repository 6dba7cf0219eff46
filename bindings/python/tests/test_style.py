"""Programs in the style of pprocess's examples, written for this package:
each fills the 10 x 10 grid (cell i*N+j holds i*N+j) through one part of the
API, without the examples' sleeps, and checks every cell (in order where a
Map promises it)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pprocess
from conftest import GRID, N

LIMIT = 4


def calculate(i: int, j: int) -> tuple[int, int, int]:
    return (i, j, i * N + j)


def value(i: int, j: int) -> int:
    return i * N + j


def send_cell(ch: pprocess.Channel, i: int, j: int) -> None:
    ch.send(calculate(i, j))


def send_row(ch: pprocess.Channel, i: int) -> None:
    for j in range(N):
        ch.send(calculate(i, j))


class GridExchange(pprocess.Exchange):
    D: list[int]

    def store_data(self, ch: pprocess.Channel) -> None:
        i, j, result = ch.receive()
        self.D[i * N + j] = result


def fill(cells: Any) -> list[int]:
    results = [-1] * N * N
    for i, j, result in cells:
        results[i * N + j] = result
    return results


def test_create() -> None:
    exchange = GridExchange(limit=LIMIT)
    exchange.D = [-1] * N * N
    for i in range(N):
        for j in range(N):
            ch = exchange.create()
            if ch:
                try:
                    ch.send(calculate(i, j))
                finally:
                    pprocess.exit(ch)
    exchange.finish()
    assert exchange.D == GRID


def test_start() -> None:
    exchange = GridExchange(limit=LIMIT)
    exchange.D = [-1] * N * N
    for i in range(N):
        for j in range(N):
            exchange.start(send_cell, i, j)
    exchange.finish()
    assert exchange.D == GRID


def test_start_with_plain_channels() -> None:
    channels = [pprocess.start(send_row, i) for i in range(N)]
    cells = [ch.receive() for ch in channels for _ in range(N)]
    assert fill(cells) == GRID


def test_managed() -> None:
    exchange = GridExchange(limit=LIMIT)
    exchange.D = [-1] * N * N
    calc = exchange.manage(pprocess.MakeParallel(calculate))
    for i in range(N):
        for j in range(N):
            calc(i, j)
    exchange.finish()
    assert exchange.D == GRID


def test_managed_map_in_order() -> None:
    results = pprocess.Map(limit=LIMIT)
    calc = results.manage(pprocess.MakeParallel(value))
    for i in range(N):
        for j in range(N):
            calc(i, j)
    assert [results[i * N:i * N + N] for i in range(N)] == [GRID[i * N:i * N + N] for i in range(N)]
    assert list(results) == GRID
    assert results[-1] == GRID[-1] and results[37] == 37


def test_create_map_in_order() -> None:
    results = pprocess.Map(limit=LIMIT)
    for i in range(N):
        for j in range(N):
            ch = results.create()
            if ch:
                try:
                    ch.send(value(i, j))
                finally:
                    pprocess.exit(ch)
    assert list(results) == GRID


def test_map_call() -> None:
    results = pprocess.Map(limit=LIMIT)
    assert list(results(abs, [-x for x in GRID])) == GRID


def test_queue() -> None:
    queue = pprocess.Queue(limit=LIMIT)
    calc = queue.manage(pprocess.MakeParallel(calculate))
    for i in range(N):
        for j in range(N):
            calc(i, j)
    assert fill(queue) == GRID


def test_pmap_in_order() -> None:
    sequence = [(i, j) for i in range(N) for j in range(N)]
    results = pprocess.pmap(lambda cell: value(*cell), sequence, limit=LIMIT)
    assert len(results) == N * N
    assert [results[i * N:i * N + N] for i in range(N)] == [GRID[i * N:i * N + N] for i in range(N)]
    assert list(results) == GRID


def test_pmap_many_and_iterables() -> None:
    assert list(pprocess.pmap(abs, (-x for x in range(10_000)), limit=3)) == list(range(10_000))
    assert list(pprocess.pmap(abs, [], limit=2)) == []


def test_continuous() -> None:
    queue = pprocess.Queue(limit=LIMIT, continuous=1)
    calc = queue.manage(send_row)
    for i in range(N):
        calc(i)
    assert fill(queue) == GRID


def test_reusable_map() -> None:
    results = pprocess.Map(limit=LIMIT, reuse=1)
    calc = results.manage(pprocess.MakeReusable(value))
    for i in range(N):
        for j in range(N):
            calc(i, j)
    assert list(results) == GRID


def test_reusable_workers_are_few() -> None:
    results = pprocess.Map(limit=2, reuse=1)
    calc = results.manage(pprocess.MakeReusable(lambda _: os.getpid()))
    for k in range(N * N):
        calc(k)
    assert 1 <= len(set(results)) <= 2


def test_ready_loop() -> None:
    exchange = pprocess.Exchange(limit=None)
    for i in range(N):
        for j in range(N):
            exchange.add(pprocess.start(send_cell, i, j))
    cells = []
    while exchange.active():
        for ch in exchange.ready():
            cells.append(ch.receive())
    assert fill(cells) == GRID
    assert not exchange.unfinished()


def test_busy_wait_and_remove() -> None:
    exchange = pprocess.Exchange(limit=2, autoclose=0)
    first = pprocess.start(send_cell, 0, 0)
    exchange.add(first)
    exchange.add(pprocess.start(send_cell, 0, 1))
    assert exchange.busy() and exchange.unfinished() and len(exchange.active()) == 2
    exchange.remove(first)
    assert len(exchange.active()) == 1
    assert first.receive() == (0, 0, 0)  # autoclose off: still the caller's


def background_grid(ch: pprocess.Channel) -> None:
    for i in range(N):
        for j in range(N):
            ch.send(calculate(i, j))


def test_background_callable_and_queue(tmp_path: Path) -> None:
    address = str(tmp_path / "task.socket")
    task = pprocess.BackgroundCallable(address, background_grid)
    task()
    assert fill(pprocess.BackgroundQueue(address)) == GRID
    assert not os.path.exists(address)


def grid_task() -> list[int]:
    queue = pprocess.Queue(limit=LIMIT)
    calc = queue.manage(pprocess.MakeParallel(calculate))
    for i in range(N):
        for j in range(N):
            calc(i, j)
    return fill(queue)


def test_persistent_exchange_connect(tmp_path: Path) -> None:
    address = str(tmp_path / "task.socket")

    class Store(pprocess.PersistentExchange):
        D: list[int] = []

        def store_data(self, ch: pprocess.Channel) -> None:
            self.D[:] = ch.receive()

    first = Store(limit=1)
    first.manage(address, pprocess.MakeParallel(grid_task))()
    first.close()
    second = Store(limit=1)
    second.D = [-1] * N * N
    second.connect(address)
    second.finish()
    assert second.D == GRID


def test_create_and_connect_persistent(tmp_path: Path) -> None:
    address = str(tmp_path / "task.socket")
    ch = pprocess.create_persistent(address)
    if ch.pid == 0:
        background_grid(ch)
        pprocess.exit(ch)
    ch.close()
    again = pprocess.connect_persistent(address)
    cells = [again.receive() for _ in range(N * N)]
    assert fill(cells) == GRID


def test_persistent_reconnect_from_another_python_process(tmp_path: Path) -> None:
    address = str(tmp_path / "task.socket")
    start = textwrap.dedent(f"""
        import pprocess, test_style
        pprocess.start_persistent({address!r}, pprocess.MakeParallel(test_style.grid_task))
        print("started")
    """)
    reconnect = textwrap.dedent(f"""
        import pprocess
        for results in pprocess.BackgroundQueue({address!r}):
            print(results)
    """)
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [here] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    started = subprocess.run([sys.executable, "-c", start], env=env, capture_output=True,
                             text=True, timeout=120)
    assert started.returncode == 0 and started.stdout == "started\n", started.stderr
    collected = subprocess.run([sys.executable, "-c", reconnect], env=env, capture_output=True,
                               text=True, timeout=120)
    assert collected.returncode == 0, collected.stderr
    assert collected.stdout == f"{GRID}\n"

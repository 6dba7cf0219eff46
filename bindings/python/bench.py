"""Speed of the pprocess package beside Python's multiprocessing, measured in
the same run (not a test: timings vary with the machine and its load).

    python bindings/python/bench.py [--runs 5]

1. pmap: ``pprocess.pmap(f, range(200_000), limit=2)`` against
   ``multiprocessing.Pool(2).map(f, range(200_000))`` (default chunks), with
   ``f`` a tiny module-level function; pool start and every result read
   included on both sides.
2. ping-pong: a small tuple sent to a created process and sent back, over a
   ``pprocess.Channel`` against a ``multiprocessing.Pipe`` (fork context).

Prints the median of the runs of each (interleaved), and the ratio.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from typing import Any, Callable

# This script's folder holds the package's sources, without the C library
# pip builds into the installed package: import the installed one.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [path for path in sys.path if os.path.abspath(path or ".") != _HERE]

import pprocess  # noqa: E402

ITEMS = 200_000
ROUNDS = 20_000
MESSAGE = (1, 2.5, "x")


def f(x: int) -> int:
    return x + 1


def pmap_pprocess() -> float:
    start = time.perf_counter()
    results = list(pprocess.pmap(f, range(ITEMS), limit=2))
    elapsed = time.perf_counter() - start
    assert results[-1] == ITEMS
    return elapsed


def pmap_pool() -> float:
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map(f, range(ITEMS))
    elapsed = time.perf_counter() - start
    assert results[-1] == ITEMS
    return elapsed


def echo(channel: pprocess.Channel) -> None:
    for _ in range(ROUNDS):
        channel.send(channel.receive())


def ping_pprocess() -> float:
    channel = pprocess.start(echo)
    channel.send(MESSAGE)
    channel.receive()  # the process is running
    start = time.perf_counter()
    for _ in range(ROUNDS - 1):
        channel.send(MESSAGE)
        channel.receive()
    elapsed = time.perf_counter() - start
    channel.close()
    pprocess.waitall()
    return elapsed / (ROUNDS - 1)


def pipe_echo(conn: Any) -> None:
    for _ in range(ROUNDS):
        conn.send(conn.recv())


def ping_pipe() -> float:
    context = multiprocessing.get_context("fork")
    here, there = context.Pipe()
    process = context.Process(target=pipe_echo, args=(there,))
    process.start()
    here.send(MESSAGE)
    here.recv()
    start = time.perf_counter()
    for _ in range(ROUNDS - 1):
        here.send(MESSAGE)
        here.recv()
    elapsed = time.perf_counter() - start
    process.join()
    return elapsed / (ROUNDS - 1)


def medians(ours: Callable[[], float], theirs: Callable[[], float],
            runs: int) -> tuple[float, float]:
    """The medians of ``runs`` runs of each, interleaved, so that a change
    in the machine's load meets both sides alike."""
    times = [(ours(), theirs()) for _ in range(runs)]
    return (statistics.median(t[0] for t in times), statistics.median(t[1] for t in times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    ours, theirs = medians(pmap_pprocess, pmap_pool, runs)
    print(f"pmap of {ITEMS} items, 2 workers (median of {runs} runs):")
    for name, seconds in (("pprocess.pmap", ours), ("multiprocessing.Pool", theirs)):
        print(f"  {name:20}  {seconds * 1000:8.1f} ms  {ITEMS / seconds / 1000:7.0f} k items/s")
    print(f"  pprocess is {theirs / ours:.2f}x Pool.map's speed")
    ours, theirs = medians(ping_pprocess, ping_pipe, runs)
    print(f"ping-pong of {MESSAGE!r}, {ROUNDS} rounds (median of {runs} runs):")
    print(f"  pprocess.Channel      {ours * 1e6:8.1f} us per round trip")
    print(f"  multiprocessing.Pipe  {theirs * 1e6:8.1f} us per round trip")
    print(f"  pprocess is {theirs / ours:.2f}x Pipe's speed")


if __name__ == "__main__":
    main()

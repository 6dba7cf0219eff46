"""Speed of the pprocess package beside Python's multiprocessing, measured in
the same run (not a test: timings vary with the machine and its load).

    python bindings/python/bench.py [--runs 5] [--csv PATH [--run N]]

1. pmap: ``pprocess.pmap(f, range(200_000), limit=2)`` against
   ``multiprocessing.Pool(2).map(f, range(200_000))`` (default chunks), with
   ``f`` a tiny module-level function; pool start and every result read
   included on both sides.
2. ping-pong: a small tuple sent to a created process and sent back, over a
   ``pprocess.Channel`` against a ``multiprocessing.Pipe`` (fork context).

Prints the median of the runs of each (interleaved), and the ratio. With
``--csv PATH`` it also writes them as rows of ``benches/report.py``'s CSV
schema (docs/benchmarks.csv), section ``python package``; ``report.py run``
does that after each ``cargo bench`` run and renders the figures.
"""

from __future__ import annotations

import argparse
import csv
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
# pprocess's side must be at least this many times as fast as the other's.
TARGET_SPEEDUP = 1.0
# The columns of docs/benchmarks.csv (benches/report.py's COLUMNS).
COLUMNS = [
    "run", "section", "workload", "unit", "pprocess_median", "other_median",
    "ratio_time", "pprocess_min", "pprocess_max", "other_min", "other_max",
    "pprocess_allocs_per_op", "target", "holds",
]
SECTION = "python package"
PMAP_WORKLOAD = (f"pprocess.pmap(f, range({ITEMS}), limit=2) vs multiprocessing "
                 "Pool(2).map, default chunks, pool start included")
PING_WORKLOAD = f"Channel ping-pong of {MESSAGE!r} vs multiprocessing Pipe, a round trip"


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


def timed(ours: Callable[[], float], theirs: Callable[[], float],
          runs: int) -> tuple[list[float], list[float]]:
    """The times of ``runs`` runs of each, interleaved, so that a change in
    the machine's load meets both sides alike."""
    times = [(ours(), theirs()) for _ in range(runs)]
    return [t[0] for t in times], [t[1] for t in times]


def row(workload: str, unit: str, value: Callable[[float], float],
        ours: list[float], theirs: list[float]) -> dict[str, str]:
    """One CSV row from the times of both sides, ``value`` turning a time in
    seconds into the unit (for a rate, min and max are then the rates of the
    fastest and the slowest run, as the Rust benchmark writes them)."""
    ratio = statistics.median(ours) / statistics.median(theirs)  # time / time
    return {
        "section": SECTION,
        "workload": workload,
        "unit": unit,
        "pprocess_median": repr(value(statistics.median(ours))),
        "other_median": repr(value(statistics.median(theirs))),
        "ratio_time": f"{ratio:.4f}",
        "pprocess_min": repr(value(min(ours))),
        "pprocess_max": repr(value(max(ours))),
        "other_min": repr(value(min(theirs))),
        "other_max": repr(value(max(theirs))),
        "pprocess_allocs_per_op": "",
        "target": f"≥ {TARGET_SPEEDUP:.1f}× faster",
        "holds": "true" if ratio <= 1 / TARGET_SPEEDUP else "false",
    }


def write_csv(path: str, run: str, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for values in rows:
            writer.writerow({"run": run, **values})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--csv", metavar="PATH",
                        help="also write the figures as rows of docs/benchmarks.csv's schema")
    parser.add_argument("--run", default="", help="the run column of those rows")
    args = parser.parse_args()
    runs = args.runs
    pmap_times = timed(pmap_pprocess, pmap_pool, runs)
    ours, theirs = (statistics.median(t) for t in pmap_times)
    print(f"pmap of {ITEMS} items, 2 workers (median of {runs} runs):")
    for name, seconds in (("pprocess.pmap", ours), ("multiprocessing.Pool", theirs)):
        print(f"  {name:20}  {seconds * 1000:8.1f} ms  {ITEMS / seconds / 1000:7.0f} k items/s")
    print(f"  pprocess is {theirs / ours:.2f}x Pool.map's speed")
    ping_times = timed(ping_pprocess, ping_pipe, runs)
    ours, theirs = (statistics.median(t) for t in ping_times)
    print(f"ping-pong of {MESSAGE!r}, {ROUNDS} rounds (median of {runs} runs):")
    print(f"  pprocess.Channel      {ours * 1e6:8.1f} us per round trip")
    print(f"  multiprocessing.Pipe  {theirs * 1e6:8.1f} us per round trip")
    print(f"  pprocess is {theirs / ours:.2f}x Pipe's speed")
    if args.csv:
        write_csv(args.csv, args.run, [
            row(PMAP_WORKLOAD, "ops/s", lambda s: ITEMS / s, *pmap_times),
            row(PING_WORKLOAD, "us/op", lambda s: s * 1e6, *ping_times),
        ])


if __name__ == "__main__":
    main()

"""Python multiprocessing doing the benchmark's ping-pong and tiny-task map.

Run by benches/pprocess.rs as
    python3 peer.py ROUND_TRIPS TASKS_CHUNK1 TASKS_DEFAULT REPS
or, for the pmap rows, as
    python3 peer.py pmap TASKS REPS
and prints one line per repetition: a name and seconds per operation.
"""

import multiprocessing as mp
import os
import sys
import time

SMALL = 64


def pin(cpu):
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def echo(conn, cpu):
    pin(cpu)
    while True:
        msg = conn.recv_bytes()
        if not msg:
            return
        conn.send_bytes(msg)


def ping_pong(rounds, ours, theirs):
    parent, child = mp.Pipe()
    proc = mp.Process(target=echo, args=(child, theirs))
    proc.start()
    child.close()
    pin(ours)
    msg = b"\x07" * SMALL
    for _ in range(rounds // 20):
        parent.send_bytes(msg)
        parent.recv_bytes()
    start = time.perf_counter()
    for _ in range(rounds):
        parent.send_bytes(msg)
        parent.recv_bytes()
    elapsed = time.perf_counter() - start
    parent.send_bytes(b"")
    proc.join()
    os.sched_setaffinity(0, range(os.cpu_count()))
    return elapsed / rounds


def tiny(x):
    return ((x * x) & 0xFFFFFFFFFFFFFFFF) ^ 0x9E3779B9


def pool_map(n, chunksize):
    start = time.perf_counter()
    with mp.Pool(2) as pool:
        results = pool.map(tiny, range(n), chunksize)
    elapsed = time.perf_counter() - start
    assert len(results) == n
    return elapsed / n


def main():
    mp.set_start_method("fork")
    if sys.argv[1] == "pmap":
        tasks, reps = (int(a) for a in sys.argv[2:4])
        for rep in range(reps):
            print("pool_map_pmap", pool_map(tasks, None), flush=True)
        return
    rounds, chunk1, default, reps = (int(a) for a in sys.argv[1:5])
    two = os.cpu_count() >= 2
    for rep in range(reps):
        if two:
            print("pingpong_apart", ping_pong(rounds, 0, 1), flush=True)
        print("pingpong_together", ping_pong(rounds, 0, 0), flush=True)
        print("pool_map_chunk1", pool_map(chunk1, 1), flush=True)
        print("pool_map_default", pool_map(default, None), flush=True)


if __name__ == "__main__":
    main()

"""Shared by the package's tests: a watchdog that turns a hang into a
failure, and every created process collected after each test."""

from __future__ import annotations

import signal
from typing import Iterator

import pytest

import pprocess

#: A test still running after this long fails (SIGALRM), instead of hanging.
WATCHDOG_SECONDS = 180


def _timeout(signum: int, frame: object) -> None:
    raise TimeoutError(f"test still running after {WATCHDOG_SECONDS} s")


@pytest.fixture(autouse=True)
def watchdog() -> Iterator[None]:
    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(WATCHDOG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        pprocess.waitall()


N = 10
GRID = [i * N + j for i in range(N) for j in range(N)]

"""pprocess 0.5.1's example programs, converted by 2to3 (examples_051/,
see its README), print what pprocess prints."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "examples_051"
PROGRAMS = sorted(path.stem for path in HERE.glob("simple_*.py"))
PERSISTENT = ["simple_background_queue", "simple_persistent_managed", "simple_persistent_queue"]


def normalized(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    return ["Time taken: <seconds>" if line.startswith("Time taken: ") else line
            for line in lines]


def run(name: str, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, str(HERE / f"{name}.py"), *args], cwd=folder,
                          capture_output=True, text=True, timeout=170)


def test_every_converted_example_is_checked() -> None:
    assert len(PROGRAMS) == 15
    assert sorted(p.stem for p in (HERE / "expected").glob("*.txt")) == PROGRAMS


def test_examples_print_what_pprocess_prints(tmp_path: Path) -> None:
    # Each takes about ten seconds (its one-second sleeps): run them together.
    with ThreadPoolExecutor(max_workers=len(PROGRAMS)) as pool:
        runs = dict(zip(PROGRAMS, pool.map(lambda n: run(n, tmp_path / n), PROGRAMS)))
    for name, done in runs.items():
        expected = (HERE / "expected" / f"{name}.txt").read_text()
        assert done.returncode == 0, f"{name}: {done.stderr}"
        assert normalized(done.stdout) == normalized(expected), name
        assert "Time taken: " in done.stdout


@pytest.mark.parametrize("name", PERSISTENT)
def test_persistent_examples_start_then_reconnect_from_another_process(
        name: str, tmp_path: Path) -> None:
    started = run(name, tmp_path, "--start")
    assert started.returncode == 0, started.stderr
    collected = run(name, tmp_path, "--reconnect")
    assert collected.returncode == 0, collected.stderr
    expected = normalized((HERE / "expected" / f"{name}.txt").read_text())
    got = normalized(started.stdout) + normalized(collected.stdout)
    assert got == expected
    assert not os.path.exists(tmp_path / "task.socket")

"""The installed package: its own C library, every function exported, the
README's Python blocks, and mypy --strict."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pprocess
from pprocess import _capi

PACKAGE = Path(pprocess.__file__).parent
BINDING = Path(__file__).parents[1]
ROOT = BINDING.parents[1]


def test_the_library_is_the_packages_own() -> None:
    assert Path(_capi.PATH).parent == PACKAGE
    maps = Path(f"/proc/{os.getpid()}/maps").read_text()
    loaded = {line.split()[-1] for line in maps.splitlines() if "pprocess" in line.split()[-1]}
    assert {str(Path(_capi.PATH).resolve())} == {str(Path(p).resolve()) for p in loaded
                                                if p.endswith(".so")}


def test_every_c_function_is_exported() -> None:
    nm = shutil.which("nm")
    if nm is None:
        pytest.fail("nm (binutils) is needed to list the library's symbols")
    out = subprocess.run([nm, "-D", "--defined-only", _capi.PATH], capture_output=True,
                         text=True, check=True).stdout
    exported = sorted(line.split()[-1] for line in out.splitlines()
                      if line.split()[-1].startswith("pp_"))
    expected = sorted(line for line in (ROOT / "abi" / "pprocess.symbols").read_text().split("\n")
                      if line and not line.startswith("#"))
    assert exported == expected


def blocks(kind: str) -> list[str]:
    text = (BINDING / "README.md").read_text()
    return re.findall(rf"```{kind}\n(.*?)```", text, re.S)


def run_block(index: int, folder: Path) -> str:
    """Runs the README's python block number ``index``; returns its output."""
    program = folder / f"block{index}.py"
    program.write_text(blocks("python")[index])
    done = subprocess.run([sys.executable, str(program)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_readme_quick_start_prints_what_it_says(tmp_path: Path) -> None:
    assert run_block(0, tmp_path) == blocks("text")[0]


def test_readme_executor_swap_block_runs(tmp_path: Path) -> None:
    assert run_block(2, tmp_path) == "2500\n"


def test_the_top_level_readme_shows_this_section_as_it_is() -> None:
    """The project's README carries this file's section word for word, so the
    blocks these tests run are the ones a reader of either page pastes."""
    top = BINDING.parent.parent / "README.md"
    if not top.exists():
        pytest.skip("skipped: outside the project's checkout (no top-level README)")
    section = (BINDING / "README.md").read_text().strip()
    assert section in top.read_text(), (
        "README.md's '## Using pprocess from Python' section differs from "
        "bindings/python/README.md: copy the latter into the former")


def test_readme_pprocess_05_program_runs(tmp_path: Path) -> None:
    assert run_block(1, tmp_path) == f"{list(range(10))}\n"


def test_mypy_strict_is_clean() -> None:
    mypy = pytest.importorskip("mypy.api", reason="mypy is installed by tests/python.rs")
    stdout, stderr, status = mypy.run(["--strict", "--no-incremental", "-p", "pprocess"])
    assert status == 0, stdout + stderr


def test_number_of_cores_and_waitall() -> None:
    assert pprocess.get_number_of_cores() == os.cpu_count()
    channels = [pprocess.start(lambda ch: ch.send(1)) for _ in range(3)]
    assert [ch.receive() for ch in channels] == [1, 1, 1]
    assert pprocess.waitall() == 3

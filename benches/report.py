#!/usr/bin/env python3
"""The benchmark page and every figure the README and docs/ quote, made from
`cargo bench`'s CSV so that none of them can go stale.

    python3 benches/report.py run [--runs 3] [--no-python]
                                              run `cargo bench` N times, each followed by
                                              bindings/python/bench.py, measure the sizes,
                                              write docs/benchmarks.csv, render
    python3 benches/report.py collect [--no-python] DIR...
                                              the same from runs already made, each DIR
                                              a PP_BENCH_OUT folder (with bench.stderr
                                              and bench.py's python.csv)
    python3 benches/report.py add-python      run bindings/python/bench.py once for each
                                              run in docs/benchmarks.csv, replace that
                                              run's Python package rows, render
    python3 benches/report.py render          docs/benchmarks.md, the README's headline
                                              table, the figures in README.md and docs/
    python3 benches/report.py check           fails if any of those differ from what
                                              render would write (tests/readme.rs)

The Python package's benchmark runs in target/bench-venv, made with
`python3 -m venv` and `pip install ./bindings/python` (as tests/python.rs
makes its own); if it cannot run, `run` fails unless `--no-python` is given.

Python 3 standard library only. The rendered parts of README.md and docs/*.md
lie between the markers `<!-- begin benches/report.py: NAME -->` and
`<!-- end benches/report.py: NAME -->`.
"""

import argparse
import csv
import datetime
import io
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CSV_PATH = ROOT / "docs" / "benchmarks.csv"
PAGE_PATH = ROOT / "docs" / "benchmarks.md"
VENV = ROOT / "target" / "bench-venv"
PY_BENCH = ROOT / "bindings" / "python" / "bench.py"
PY_BENCH_RUNS = 5
PY_SECTION = "python package"
COLUMNS = [
    "run", "section", "workload", "unit", "pprocess_median", "other_median",
    "ratio_time", "pprocess_min", "pprocess_max", "other_min", "other_max",
    "pprocess_allocs_per_op", "target", "holds",
]

# What the other side of each section's rows is.
SECTIONS = [
    ("baseline", "pprocess and hand-written libc",
     "The baseline does the same system calls by hand: fork, socketpair, "
     "poll, read and write. The pmap rows compare with the row's own other "
     "side: the fork + `MAP_SHARED` floor (static slices, no messages), a "
     "hand-written pipelined pool, or `pp_pmap`. Ratio: pprocess time / other "
     "time per operation (for rates, other rate / pprocess rate); below 1 "
     "pprocess is faster."),
    ("python", "pprocess and Python multiprocessing",
     "Python: `multiprocessing` `Pipe` (`send_bytes`/`recv_bytes`) and "
     "`Pool(2).map` of the same tiny function, pool start and stop included. "
     "`chunksize=1` sends one task per message; the default chunksize batches "
     "about n/8 tasks per message."),
    (PY_SECTION, "The pprocess Python package and multiprocessing",
     "`bindings/python/bench.py`, run after each `cargo bench` run: "
     "`pprocess.pmap` against `multiprocessing` `Pool(2).map` with its default "
     "chunks (pool start and every result included on both sides), and a "
     "small tuple sent to a process and back over a `pprocess.Channel` "
     "against a `multiprocessing` `Pipe`; medians of "
     f"{PY_BENCH_RUNS} interleaved repetitions per run."),
    ("memory", "Memory and sizes",
     "Heap allocations counted by a counting allocator; peak RSS of the "
     "coordinating process; sizes of the built files."),
    ("size", "Binaries", "Measured by this script on the same machine."),
]

# The README's headline rows: (section, a substring of the workload, what to
# call it); the first row of the section whose workload holds the substring.
HEADLINE = [
    ("baseline", "64 B ping-pong, different CPUs", "64 B ping-pong, different CPUs, vs libc"),
    ("baseline", "one-way throughput, 1 MiB", "one-way throughput, 1 MiB messages, vs libc"),
    ("baseline", "fan-in", "fan-in, 256 children, vs libc"),
    ("baseline", "start → result → reaped", "start a process, get its result, reap it, vs libc"),
    ("baseline", "fork-per-task map", "a process per task, 5,000 tiny tasks, vs libc"),
    ("baseline", "vs pipelined pool",
     "reused workers (`Queue`), tiny tasks, vs a libc pool that batches its answers"),
    ("baseline", "vs per-task-write pool",
     "reused workers (`pmap`), tiny tasks, vs a libc pool writing each answer alone"),
    ("python", "vs Pool.map(chunksize=1)",
     "reused workers, tiny tasks, vs Python `Pool.map(chunksize=1)`"),
    ("baseline", "vs fork + MAP_SHARED floor", "`pp_pmap` over records vs the shared-memory floor"),
    ("python", "vs Pool(2).map (default chunks)", "`pp_pmap` over records vs Python `Pool(2).map`"),
    ("baseline", "head-of-line", "one long task and ten short ones, vs the ideal"),
    (PY_SECTION, "pprocess.pmap(",
     "Python package: `pprocess.pmap` of tiny tasks vs `Pool(2).map`"),
    (PY_SECTION, "Channel ping-pong", "Python package: `Channel` ping-pong vs `Pipe`"),
]
# The README's rows of sizes and counts: (section, a substring, what to call it).
HEADLINE_SIZES = [
    ("memory", "heap allocations per message", "heap allocations per message received into a buffer"),
    ("memory", "libpprocess.so, stripped", "`libpprocess.so`, stripped"),
    ("size", "examples/nostd-minimal, stripped", "the minimal `#![no_std]` binary, stripped"),
]

FIGURES = {
    # name: (section, workload substring, how to show the value)
    "libpprocess_so_kib": ("memory", "libpprocess.so, stripped", "about {kib} KiB"),
    "nostd_minimal_bytes": ("size", "examples/nostd-minimal, stripped", "{bytes} bytes"),
}


# ----------------------------------------------------------------- reading

def read_csv(path=CSV_PATH):
    """(metadata lines, rows as dicts) of docs/benchmarks.csv."""
    meta, body = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            meta.append(line[2:])
        elif line.strip():
            body.append(line)
    rows = list(csv.DictReader(io.StringIO("\n".join(body) + "\n")))
    return meta, rows


def number(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return None if value != value else value  # NaN: no value


# -------------------------------------------------------------- formatting

def show(unit, value):
    if value is None:
        return ""
    if unit == "us/op":
        if value < 10:
            return f"{value:.2f} µs"
        if value < 10_000:
            return f"{value:.1f} µs"
        if value < 1e6:
            return f"{value / 1e3:.1f} ms"
        return f"{value / 1e6:.2f} s"
    if unit == "MB/s":
        return f"{value:.0f} MB/s"
    if unit == "ops/s":
        if value >= 1e6:
            return f"{value / 1e6:.2f} M/s"
        return f"{value / 1e3:.1f} k/s"
    if unit == "bytes":
        if value >= 1 << 20:
            return f"{value / (1 << 20):.1f} MiB"
        if value >= 1 << 10:
            return f"{value / (1 << 10):.0f} KiB"
        return f"{value:.0f} B"
    return f"{value:.2f}"


def show_ratio(value):
    if value is None:
        return ""
    if value >= 0.1:
        return f"{value:.2f}×"
    return f"{value:.3g}×"


def show_speed(ratio):
    """Other time / pprocess time: how many times faster pprocess is."""
    if not ratio:
        return ""
    speed = 1 / ratio
    return f"{speed:.1f}×" if speed >= 10 else f"{speed:.2f}×"


def cell(text):
    return text.replace("|", "\\|")


# ------------------------------------------------------------- aggregation

def grouped(rows):
    """Rows by (section, workload), in first-seen order, each a list of runs."""
    order, groups = [], {}
    for row in rows:
        key = (row["section"], row["workload"])
        if key not in groups:
            order.append(key)
            groups[key] = []
        groups[key].append(row)
    return [(key, groups[key]) for key in order]


def summary(runs):
    """Medians over runs, the spread of all samples, the runs' own ratios."""
    unit = runs[0]["unit"]
    ours = [v for v in (number(r["pprocess_median"]) for r in runs) if v is not None]
    theirs = [v for v in (number(r["other_median"]) for r in runs) if v is not None]
    ratios = [v for v in (number(r["ratio_time"]) for r in runs) if v is not None]
    lows = [v for r in runs for v in (number(r["pprocess_min"]), number(r["pprocess_max"]))
            if v is not None]
    other_lows = [v for r in runs for v in (number(r["other_min"]), number(r["other_max"]))
                  if v is not None]
    holds = [r["holds"] for r in runs if r["holds"]]
    return {
        "unit": unit,
        "ours": statistics.median(ours) if ours else None,
        "theirs": statistics.median(theirs) if theirs else None,
        "ours_spread": (min(lows), max(lows)) if lows else None,
        "theirs_spread": (min(other_lows), max(other_lows)) if other_lows else None,
        "ratio": statistics.median(ratios) if ratios else None,
        "ratios": ratios,
        "target": runs[0]["target"],
        "holds": (sum(h == "true" for h in holds), len(holds)) if holds else None,
        "allocs": runs[0]["pprocess_allocs_per_op"],
        "runs": len(runs),
    }


def spread(unit, pair):
    if not pair:
        return ""
    lo, hi = (show(unit, v) for v in sorted(pair))
    return lo if lo == hi else f"{lo} – {hi}"


def find(rows, section, substring):
    for (sec, workload), runs in grouped(rows):
        if sec == section and substring in workload:
            return workload, summary(runs)
    return None


# --------------------------------------------------------------- rendering

def render_headline(rows):
    lines = [
        "| workload | pprocess | other side | ratio (time) | speed-up |",
        "|---|---|---|---|---|",
    ]
    for section, substring, label in HEADLINE:
        found = find(rows, section, substring)
        if found is None or found[1]["ratio"] is None:
            continue
        s = found[1]
        unit = s["unit"]
        lines.append(
            f"| {label} | {show(unit, s['ours'])} | {show(unit, s['theirs'])} "
            f"| {show_ratio(s['ratio'])} | {show_speed(s['ratio'])} |"
        )
    for section, substring, label in HEADLINE_SIZES:
        found = find(rows, section, substring)
        if found:
            value = found[1]["ours"]
            shown = f"{value:,.0f} bytes" if found[1]["unit"] == "bytes" else show(found[1]["unit"], value)
            lines.append(f"| {label} | {shown} | | | |")
    return "\n".join(lines)


def render_figure(rows, name):
    section, substring, template = FIGURES[name]
    found = find(rows, section, substring)
    if not found:
        raise SystemExit(f"no {section} row {substring!r} in {CSV_PATH} for figure {name}")
    value = found[1]["ours"]
    return template.format(kib=f"{value / 1024:.0f}", bytes=f"{value:,.0f}")


def render_page(meta, rows):
    out = [
        "# Benchmarks",
        "",
        "<!-- Generated by benches/report.py from benchmarks.csv: do not edit. -->",
        "",
        "Generated by `benches/report.py` from [benchmarks.csv](benchmarks.csv), the",
        "output of `cargo bench` (`benches/pprocess.rs`) on the machine below. Each",
        "workload runs through pprocess and through its other side alternately, in",
        "the same run, so a ratio compares two measurements made under the same",
        "load; absolute times move with the machine, ratios much less.",
        "",
        "To make this page again: `python3 benches/report.py run --runs 3` (a few",
        "minutes a run), which runs the benchmark and, after each run, the Python",
        "package's `bindings/python/bench.py` (installed into `target/bench-venv`;",
        "`--no-python` leaves it out), measures the sizes, writes",
        "`docs/benchmarks.csv`, and renders this page and the figures in the README",
        "and docs/. `PP_BENCH_SHORT=1 cargo bench` is a quick look;",
        "`PP_BENCH_ONLY=group,...` runs some groups only (see `benches/pprocess.rs`).",
        "",
        "To compare the reused-worker Queue row with an older commit of the library,",
        "`benches/ab/run.sh OLD_REV [RUNS] [TASKS]` builds the same program against",
        "both and runs them alternated, printing each rate and the median ratio.",
        "",
        "## Machine and runs",
        "",
    ]
    out += [f"- {line}" for line in meta]
    out += [
        "",
        "A load average above the number of processors means other work shared",
        "the machine during the run: read the ratios rather than the times.",
        "",
        "Columns: the median over the runs of each run's median; the spread of",
        "every repetition of every run (lowest – highest); the ratio (time), the",
        "median of the runs' own ratios with each run's in brackets (pprocess's",
        "time ÷ the other side's: below 1× pprocess is faster); the speed-up, its",
        "inverse; and how many runs met the row's target.",
        "",
    ]
    if (ROOT / "docs" / "throughput.svg").exists():
        out += [
            "![One-way throughput by message size, pprocess and the libc baseline, "
            "from the last run](throughput.svg)",
            "",
        ]
    by_section = {}
    for (section, workload), runs in grouped(rows):
        by_section.setdefault(section, []).append((workload, summary(runs)))
    for section, title, note in SECTIONS:
        entries = by_section.get(section)
        if not entries:
            continue
        out += [f"## {title}", "", note, ""]
        if section in ("memory", "size"):
            out += ["| what | pprocess | other side |", "|---|---|---|"]
            for workload, s in entries:
                ours = f"{s['ours']:,.0f} bytes" if s["unit"] == "bytes" else show(s["unit"], s["ours"])
                theirs = ""
                if s["theirs"] is not None:
                    theirs = f"{s['theirs']:,.0f} bytes" if s["unit"] == "bytes" else show(s["unit"], s["theirs"])
                out.append(f"| {cell(workload)} | {ours} | {theirs} |")
            out.append("")
            continue
        out += timing_table(entries) + [""]
    return "\n".join(out)


def timing_table(entries):
    """The table of (workload, summary) pairs, both sides, ratios and targets."""
    out = [
        "| workload | pprocess | spread | other side | spread | ratio (time) | speed-up | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for workload, s in entries:
        unit = s["unit"]
        ratios = ", ".join(f"{r:.2f}" if r >= 0.1 else f"{r:.3g}" for r in s["ratios"])
        ratio = f"{show_ratio(s['ratio'])} ({ratios})" if s["ratio"] is not None else ""
        speed = show_speed(s["ratio"])
        met = f"{s['holds'][0]} of {s['holds'][1]}" if s["holds"] else ""
        out.append(
            f"| {cell(workload)} | {show(unit, s['ours'])} | {spread(unit, s['ours_spread'])} "
            f"| {show(unit, s['theirs'])} | {spread(unit, s['theirs_spread'])} | {ratio} "
            f"| {speed} | {cell(s['target'])} | {met} |"
        )
    return out


def render_python(meta, rows):
    """docs/python.md's figures: the Python package's rows, with the date,
    the machine (less rustc's version, which the page has no use for) and
    how they were made; the load is on the benchmark page."""
    entries = [(workload, summary(runs)) for (section, workload), runs in grouped(rows)
               if section == PY_SECTION]
    if not entries:
        return ("No figures: docs/benchmarks.csv was made with `--no-python`; "
                "`python3 benches/report.py add-python` adds them.")
    about = [re.sub(r", rustc [^,]*", "", line).replace(f"{PY_SECTION}:", "runs:")
             for line in meta if line.startswith(("date:", "machine:", f"{PY_SECTION}:"))]
    return "\n".join(
        [f"- {line}" for line in about]
        + ["- the machine's load during the runs: [benchmarks.md](benchmarks.md#machine-and-runs)",
           "", "Medians over the runs, the spread of every repetition, each run's own",
           "ratio in brackets (pprocess's time ÷ the other side's: below 1× pprocess",
           "is faster), and how many runs met the target.", ""]
        + timing_table(entries)
    )


MARKER = re.compile(
    r"(<!-- begin benches/report\.py: ([a-z_ ]+?) -->\n)(.*?)(<!-- end benches/report\.py: \2 -->)",
    re.S,
)


def rewrite(text, meta, rows):
    """`text` with every marked part rendered again."""
    def part(match):
        name = match.group(2)
        if name == "headline":
            body = render_headline(rows)
        elif name == "python":
            body = render_python(meta, rows)
        elif name.startswith("figure "):
            body = render_figure(rows, name[len("figure "):])
        else:
            raise SystemExit(f"unknown marker {name!r}")
        return f"{match.group(1)}{body}\n{match.group(4)}"
    return MARKER.sub(part, text)


def targets():
    """The files render writes, and what it writes into each."""
    meta, rows = read_csv()
    files = {PAGE_PATH: render_page(meta, rows) + "\n"}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if path == PAGE_PATH:
            continue
        text = path.read_text(encoding="utf-8")
        if MARKER.search(text):
            files[path] = rewrite(text, meta, rows)
    return files


def render():
    for path, text in targets().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")


def check():
    stale = []
    for path, text in targets().items():
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            stale.append(str(path.relative_to(ROOT)))
    if stale:
        print("not what benches/report.py renders from docs/benchmarks.csv "
              "(run `python3 benches/report.py render`, never edit them by hand):")
        for path in stale:
            print(f"  {path}")
        return 1
    print("README.md, docs/benchmarks.md and the figures match docs/benchmarks.csv")
    return 0


# ---------------------------------------------------------------- measuring

def machine():
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"machine: {os.cpu_count()} processors (nproc), {cpu or 'unknown CPU'}, "
            f"{platform.system()} {platform.release()}, {rustc}, Python {platform.python_version()}")


def nostd_size():
    """The stripped size of examples/nostd-minimal, built as tests/no_std.rs builds it."""
    target = ROOT / "target" / "report-nostd"
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--manifest-path",
         str(ROOT / "examples/nostd-minimal/Cargo.toml"), "--target-dir", str(target)],
        check=True,
    )
    stripped = target / "nostd-minimal.stripped"
    shutil.copy(target / "release" / "nostd-minimal", stripped)
    subprocess.run(["strip", str(stripped)], check=True)
    return stripped.stat().st_size


def run_info(folder):
    """(start time, load averages before and after) of a run, from its results.md."""
    started = (folder / "started").read_text().strip() if (folder / "started").exists() else ""
    load = ""
    found = re.search(r"load average ([0-9. ]+) before, ([0-9. ]+) after",
                      (folder / "results.md").read_text(encoding="utf-8"))
    if found:
        load = f"{found.group(1).strip()} before, {found.group(2).strip()} after"
    return started, load


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def loadavg():
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def python_bench():
    """The interpreter of target/bench-venv with the package of this tree
    installed, made (or brought up to date) now; SystemExit if it cannot be."""
    python = VENV / "bin" / "python"
    steps = [
        ("create the virtual environment (python3 -m venv; Debian: python3-venv)",
         [sys.executable, "-m", "venv", str(VENV)]),
        ("pip install ./bindings/python (it needs PyPI for setuptools-rust, and cargo)",
         [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
          str(ROOT / "bindings" / "python")]),
    ]
    if python.exists():
        steps = steps[1:]
    for what, command in steps:
        print(f"python package: {what}", flush=True)
        try:
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            output = (done.stderr or done.stdout).strip()[-2000:]
            why = "" if done.returncode == 0 else output or f"exit status {done.returncode}"
        except OSError as error:
            why = str(error)
        if why:
            raise SystemExit(
                f"the Python package's benchmark cannot run: {what} failed:\n{why}\n"
                "Fix that, or pass --no-python to leave the Python package's rows out."
            )
    return python


def run_python_bench(python, out, run):
    """bindings/python/bench.py once, its rows written to `out`, which it
    returns read back; SystemExit if it fails or writes no rows."""
    command = [str(python), str(PY_BENCH), "--runs", str(PY_BENCH_RUNS),
               "--csv", str(out), "--run", str(run)]
    print(f"python package: {' '.join(command[1:])}", flush=True)
    out.unlink(missing_ok=True)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0 or not out.exists():
        raise SystemExit(
            f"the Python package's benchmark failed (exit {done.returncode}):\n"
            f"{done.stdout}{done.stderr}\n"
            "Fix that, or pass --no-python to leave the Python package's rows out."
        )
    rows = python_rows(out)
    if not rows:
        raise SystemExit(f"{out}: bindings/python/bench.py wrote no rows")
    return rows


def python_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return [row for row in csv.DictReader(f) if row["section"] == PY_SECTION]


def write_csv(header, rows):
    out = io.StringIO()
    for line in header:
        out.write(f"# {line}\n")
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in COLUMNS})
    CSV_PATH.write_text(out.getvalue(), encoding="utf-8")
    print(f"wrote {CSV_PATH.relative_to(ROOT)}")


# The metadata line that says how the Python package's rows were made.
PY_META = f"{PY_SECTION}: `bindings/python/bench.py --runs {PY_BENCH_RUNS}`, once per run"


def collect(folders, with_python=True):
    rows, meta = [], []
    starts = []
    mode = "full"
    for n, folder in enumerate(folders, 1):
        folder = Path(folder)
        started, load = run_info(folder)
        starts.append(started)
        stderr = folder / "bench.stderr"
        if stderr.exists() and "(short mode" in stderr.read_text():
            mode = "short (PP_BENCH_SHORT=1)"
        meta.append(f"run {n}: started {started or 'unknown'}; load average (1, 5 and 15 "
                    f"minutes) {load or 'unknown'}")
        with open(folder / "results.csv", newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                rows.append({"run": str(n), **row})
        if with_python:
            path = folder / "python.csv"
            if not path.exists():
                raise SystemExit(
                    f"{path}: no rows of the Python package's benchmark for run {n} "
                    "(`bindings/python/bench.py --csv PATH` writes them; "
                    "--no-python leaves them out)"
                )
            rows += [{**row, "run": str(n)} for row in python_rows(path)]
    dates = sorted({s[:10] for s in starts if s})
    chart = Path(folders[-1]) / "throughput.svg"
    if chart.exists():
        shutil.copy(chart, ROOT / "docs" / "throughput.svg")
    size = nostd_size()
    rows.append({
        "run": "", "section": "size", "workload": "examples/nostd-minimal, stripped",
        "unit": "bytes", "pprocess_median": str(size), "other_median": "", "ratio_time": "",
        "pprocess_min": str(size), "pprocess_max": str(size), "other_min": "", "other_max": "",
        "pprocess_allocs_per_op": "", "target": "", "holds": "",
    })
    runs = f"{len(folders)} {mode} runs of `cargo bench`, one after another"
    header = [
        f"date: {', '.join(dates) or 'unknown'}",
        machine(),
        runs + (", each followed by bindings/python/bench.py" if with_python
                else "; the Python package left out (--no-python)"),
    ]
    if with_python:
        header.append(PY_META + ", right after its `cargo bench`")
    write_csv(header + meta, rows)


def run(n, with_python=True):
    interpreter = python_bench() if with_python else None
    base = ROOT / "target" / "bench-runs"
    folders = []
    for i in range(1, n + 1):
        folder = base / f"run{i}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        started = now()
        (folder / "started").write_text(started + "\n")
        print(f"run {i} of {n}, started {started}", flush=True)
        with open(folder / "bench.stderr", "w") as err, open(folder / "bench.stdout", "w") as out:
            subprocess.run(
                ["cargo", "bench", "--bench", "pprocess"],
                cwd=ROOT, check=True, stdout=out, stderr=err,
                env={**os.environ, "PP_BENCH_OUT": str(folder)},
            )
        if interpreter:
            run_python_bench(interpreter, folder / "python.csv", i)
        folders.append(folder)
    collect(folders, with_python)
    render()


def add_python():
    """bench.py once per run of docs/benchmarks.csv, its rows in place of
    that run's Python package rows (after the run's other rows)."""
    meta, rows = read_csv()
    runs = sorted({row["run"] for row in rows if row["run"]}, key=int)
    if not runs:
        raise SystemExit(f"{CSV_PATH}: no runs to add the Python package's rows to")
    interpreter = python_bench()
    base = ROOT / "target" / "bench-runs"
    base.mkdir(parents=True, exist_ok=True)
    meta = [line for line in meta if not line.startswith(PY_SECTION)]
    rows = [row for row in rows if row["section"] != PY_SECTION]
    for run in runs:
        before, started = loadavg(), now()
        added = run_python_bench(interpreter, base / f"python-run{run}.csv", run)
        meta.append(f"{PY_SECTION} run {run}: added by `report.py add-python`, started "
                    f"{started}; load average (1, 5 and 15 minutes) {before} before, {loadavg()} after")
        last = max(i for i, row in enumerate(rows) if row["run"] == run)
        rows[last + 1:last + 1] = [{**row, "run": run} for row in added]
    meta.insert(3, PY_META + ", added after the runs of `cargo bench` by `report.py add-python`")
    write_csv(meta, rows)
    render()


def main(args):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check")
    commands.add_parser("render")
    commands.add_parser("add-python")
    collecting = commands.add_parser("collect")
    collecting.add_argument("--no-python", action="store_true")
    collecting.add_argument("folders", nargs="+")
    running = commands.add_parser("run")
    running.add_argument("--runs", type=int, default=3)
    running.add_argument("--no-python", action="store_true")
    args = parser.parse_args(args)
    if args.command == "check":
        return check()
    if args.command == "add-python":
        add_python()
    elif args.command == "collect":
        collect(args.folders, not args.no_python)
        render()
    elif args.command == "run":
        run(args.runs, not args.no_python)
    else:
        render()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

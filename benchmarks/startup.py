"""Start-up benchmark: ``import mlops_kit`` and ``mlops-kit --help`` vs a bare interpreter.

Three commands run as fresh processes, alternating, after one warm-up run each (so the file
cache is warm):

* **baseline**: ``python -c pass``, the interpreter alone;
* ``python -c "import mlops_kit"``: the package import (kept light: no torch, feast, ray,
  mlflow, sagemaker, kfp, onnxruntime or kubernetes at import time);
* ``mlops-kit --help``: the console script of the same environment, end to end.

Wall seconds (median and best) and the cost over the bare interpreter go into
``docs/benchmarks.md``. The budget for ``mlops-kit --help`` is 1.5 s for the whole process.

Usage::

    python benchmarks/startup.py             # 20 runs of each command
    python benchmarks/startup.py --reps 5    # quicker
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from docsection import cpu_name, write_section

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
START, END = "<!-- startup:start -->", "<!-- startup:end -->"
HELP_BUDGET_S = 1.5


def commands() -> dict[str, list[str]]:
    """label -> argv; the console script beside this interpreter, else ``-m`` on the CLI."""
    script = Path(sys.executable).with_name("mlops-kit")
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "mlops_kit.cli.main"]
    return {
        "`python -c pass` (baseline)": [sys.executable, "-c", "pass"],
        '`python -c "import mlops_kit"`': [sys.executable, "-c", "import mlops_kit"],
        "`mlops-kit --help`": [*cli, "--help"],
    }


def _time(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def run(reps: int) -> dict[str, list[float]]:
    cmds = commands()
    for argv in cmds.values():
        _time(argv)  # warm-up: the file cache, .pyc files
    times: dict[str, list[float]] = {label: [] for label in cmds}
    for _ in range(reps):
        for label, argv in cmds.items():
            times[label].append(_time(argv))
    for label, samples in times.items():
        print(f"{label}: median {statistics.median(samples):.3f} s", flush=True)
    return times


def render(times: dict[str, list[float]], reps: int, argv: list[str]) -> str:
    baseline = statistics.median(next(iter(times.values())))
    rows = []
    for label, samples in times.items():
        median = statistics.median(samples)
        extra = "-" if median == baseline else f"+{median - baseline:.3f}"
        rows.append(f"| {label} | {median:.3f} | {min(samples):.3f} | {extra} |")
    help_median = statistics.median(times["`mlops-kit --help`"])
    verdict = "within" if help_median < HELP_BUDGET_S else "**over**"
    table = "\n".join(rows)
    return f"""{START}
## Start-up: `import mlops_kit` and `mlops-kit --help`

Command: `{shlex.join(["python", f"benchmarks/{Path(argv[0]).name}", *argv[1:]])}`.
Machine: {cpu_name()}, {os.cpu_count()} cores; Python {platform.python_version()}.
Each command runs as a fresh process, {reps} times, alternating with the others after one
warm-up run each; wall seconds.

| command | median s | best s | over the bare interpreter, s |
|---|---:|---:|---:|
{table}

Budget: `mlops-kit --help` under {HELP_BUDGET_S} s for the whole process: {verdict} it
({help_median:.2f} s). The test suite checks that `import mlops_kit` loads none of the heavy
optional libraries (`tests/cli/test_cli.py::test_import_is_light`); the time lives here.
{END}"""


def write_doc(section: str) -> None:
    write_section(DOC, START, END, section)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=20, help="runs of each command")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs untouched")
    args = parser.parse_args()
    times = run(args.reps)
    section = render(times, args.reps, sys.argv)
    print(section)
    if not args.no_doc:
        write_doc(section)


if __name__ == "__main__":
    main()

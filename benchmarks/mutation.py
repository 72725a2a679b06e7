"""Mutation score of the modules that guard data and models (``make mutation``).

For each target below, a copy of the repository is mutated by mutmut (one small change
at a time: an operator, a constant, a condition...) and the target's tests run against
each mutant; a mutant is *killed* when a test fails. The score per module (killed and
timed out over all mutants that a test reaches) goes into ``docs/testing.md`` between
``<!-- mutation:start -->`` and ``<!-- mutation:end -->``.

Usage::

    python benchmarks/mutation.py                      # every target (hours on 2 cores)
    python benchmarks/mutation.py --only quality       # one target
    python benchmarks/mutation.py --only quality --max-children 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from docsection import write_section

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "testing.md"
RESULTS = REPO / "benchmarks" / "results" / "mutation.json"
"""Every target's last result: a run of some targets keeps the others' rows."""
START, END = "<!-- mutation:start -->", "<!-- mutation:end -->"

TARGETS: dict[str, tuple[list[str], list[str]]] = {
    "quality": (
        # the rules driven directly; whole ETL runs (test_etl, test_hostile) take seconds a
        # mutant and check the same rules through the pipeline
        ["src/mlops_kit/etl/quality.py"],
        ["tests/etl/test_quality_rules.py"],
    ),
    "accounting": (
        # the run's steps and the zones driven directly on a tiny lake; whole ETL runs
        # (test_etl, test_hostile) take seconds a mutant and check the same accounting
        ["src/mlops_kit/etl/run.py", "src/mlops_kit/etl/zones.py"],
        [
            "tests/etl/test_accounting.py",
            "tests/etl/test_accounting_more.py",
            "tests/etl/test_zones.py",
        ],
    ),
    "commit": (
        # the protocol driven directly, a stop at each step; test_crash_and_backends kills
        # real processes at the same points on local files, S3 and PostgreSQL (minutes a
        # mutant)
        ["src/mlops_kit/etl/lake.py"],
        ["tests/etl/test_lake_commit.py"],
    ),
    "pit": (
        # the join driven directly on one small Feast repo; test_historical takes seconds a mutant
        ["src/mlops_kit/features/pit.py"],
        ["tests/features/test_pit.py"],
    ),
    "gates": (["src/mlops_kit/registry/gates.py"], ["tests/registry/test_gates.py"]),
    "evaluation": (
        # the policy and the evaluation driven directly on a tiny graph; the registry tests
        # (MLflow per mutant, half a minute each) check the same code through promote()
        ["src/mlops_kit/registry/policy.py", "src/mlops_kit/registry/evaluate.py"],
        ["tests/registry/test_evaluation.py", "tests/registry/test_evaluation_folder.py"],
    ),
    "decode": (
        ["src/mlops_kit/etl/decode.py"],
        ["tests/etl/test_decode_properties.py", "tests/etl/test_hostile.py"],
    ),
    "lock": (
        # the leases driven directly; the race tests (two promoting processes, minutes per
        # run) check the same lock through the registry
        ["src/mlops_kit/registry/lock.py"],
        ["tests/registry/test_lock.py"],
    ),
}


def _copy(dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in (
        "src",
        "tests",
        "examples",
        "pyproject.toml",
        ".importlinter",
        "components",
        "pipelines",
    ):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    shared = REPO.parent / "shared"
    if shared.exists() and not (dest.parent / "shared").exists():
        (dest.parent / "shared").symlink_to(shared)


def _configure(dest: Path, modules: list[str], tests: list[str]) -> None:
    text = (dest / "pyproject.toml").read_text()
    text = re.sub(r"\n\[tool\.mutmut\].*?(?=\n\[|\Z)", "\n", text, flags=re.S)
    text += (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        'also_copy = ["examples"]\n'
        f"only_mutate = {json.dumps(modules)}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]\n'
        # a mutant's tests set their fixtures up again in a fresh process, which the
        # per-test durations mutmut times its runs by leave out
        "timeout_constant = 5.0\n"
        # workers fork from a process that has only collected the tests: forked from one
        # that ran them, Polars' and SQLAlchemy's threads are gone and a surviving mutant
        # would hang (and be counted a timeout, as if killed)
        'process_isolation = "forkserver"\n'
    )
    (dest / "pyproject.toml").write_text(text)


def run_target(name: str, work: Path, max_children: int) -> dict[str, object]:
    modules, tests = TARGETS[name]
    dest = work / name
    _copy(dest)
    _configure(dest, modules, tests)
    mutmut = Path(sys.executable).parent / "mutmut"
    t0 = time.perf_counter()
    # tests that start subprocesses (the promotion race, the CLI) import the mutants too:
    # the mutant under test reaches them through MUTANT_UNDER_TEST in the environment
    # (the folder exists before Python starts: an import path missing at start-up stays skipped)
    (dest / "mutants" / "src").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(dest / "mutants" / "src")}
    run = subprocess.run(
        [str(mutmut), "run", "--max-children", str(max_children)],
        cwd=dest,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    subprocess.run([str(mutmut), "export-cicd-stats"], cwd=dest, capture_output=True, check=False)
    stats = json.loads((dest / "mutants" / "mutmut-cicd-stats.json").read_text())
    judged = sum(stats.get(k, 0) for k in ("killed", "survived", "timeout", "no_tests"))
    if stats.get("total", 0) and not judged:
        # mutmut stopped before judging a mutant (its baseline test run failed)
        raise SystemExit(
            f"mutmut judged no mutant of {name} (exit {run.returncode}); its output ends:\n"
            + "\n".join(run.stdout.strip().splitlines()[-15:])
        )
    stats["seconds"] = round(time.perf_counter() - t0)
    stats["modules"] = modules
    print(name, stats, flush=True)
    return stats


def score(s: dict) -> float | None:
    reached = s["total"] - s.get("no_tests", 0) - s.get("skipped", 0)
    detected = s.get("killed", 0) + s.get("timeout", 0)
    return detected / reached if reached else None


def render(results: dict[str, dict]) -> str:
    rows = []
    for name, s in results.items():
        sc = score(s)
        rows.append(
            f"| {name} | {', '.join(f'`{m}`' for m in s['modules'])} | {s['total']} | "
            f"{s.get('killed', 0)} | {s.get('timeout', 0)} | {s.get('survived', 0)} | "
            f"{s.get('no_tests', 0)} | {'-' if sc is None else f'{sc:.0%}'} | {s['seconds']} |"
        )
    table = "\n".join(rows)
    missing = [
        f"`{name}` ({', '.join(m.removeprefix('src/mlops_kit/') for m in TARGETS[name][0])})"
        for name in TARGETS
        if name not in results
    ]
    todo = (
        f"\nNot measured yet: {', '.join(missing)}. "
        f"{'Its' if len(missing) == 1 else 'Their'} tests run whole ETL runs or Feast "
        "joins, seconds to minutes per mutant: each needs direct tests of its module first, "
        "as the measured targets have.\n"
        if missing
        else ""
    )
    notes = "".join(f"\n{name}: {s['note']}\n" for name, s in results.items() if s.get("note"))
    return f"""{START}
Command: `python benchmarks/mutation.py --only TARGET` (mutmut, the target's tests per
mutant, 2 at a time on 2 cores; the seconds depend on the machine's load, the counts do
not: a mutant's limit is CPU time); each row is its target's last run, kept in
`benchmarks/results/mutation.json`. Score = (killed + timed out) / mutants reached by a
test. Target: at least 80% per module.

| target | modules | mutants | killed | timed out | survived | no test | score | s |
|---|---|---:|---:|---:|---:|---:|---:|---:|
{table}
{notes}{todo}{END}"""


def write_doc(section: str) -> None:
    write_section(DOC, START, END, section)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", action="append", choices=sorted(TARGETS), help="a target")
    parser.add_argument("--max-children", type=int, default=2, help="parallel mutants")
    parser.add_argument("--work", type=Path, default=Path("/tmp/mlops-kit-mutation"))
    parser.add_argument("--no-doc", action="store_true", help="print only")
    args = parser.parse_args()
    results: dict[str, dict] = {}
    for name in args.only or TARGETS:
        measured = run_target(name, args.work, args.max_children)  # a new run, no note
        # read again: another run may have recorded its targets meanwhile
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        results[name] = measured
        results = {k: results[k] for k in TARGETS if k in results}
        if not args.no_doc:  # after each target, so a long run keeps what it measured
            RESULTS.write_text(json.dumps(results, indent=2) + "\n")
            write_doc(render(results))
    print(render(results))


if __name__ == "__main__":
    main()

"""Every command in a core-only install: extras named exactly, no traceback, literal text.

The venv holds only what ``pip install mlops-kit`` (no extras) brings, linked from this
environment (see :mod:`tests.lean.lean_env`).
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.lean.lean_env import build, core_distributions, run_cli

HEAVY = (
    "feast",
    "mlflow",
    "torch",
    "ray",
    "kfp",
    "onnx",
    "onnxruntime",
    "sagemaker",
    "kubernetes",
    "jsonschema",
    "psycopg",
    "pandas",
)

JOB = "name: job1\ndata_uri: s3://b/d\noutput_uri: s3://b/o\nimage: 1.dkr.ecr.us-east-1.amazonaws.com/t:1\n"
CONFIG = "cluster:\n  service_account_roles:\n    sagemaker: arn:aws:iam::123456789012:role/sm\n"

# (command, the extra its message must name)
NEEDS_EXTRA = [
    ("features apply", "feast"),
    ("features materialize", "feast"),
    ("features training-set out", "feast"),
    ("features get dev-0001", "feast"),
    ("features get dev-0001 --json", "feast"),
    ("features freshness", "feast"),
    ("model list", "mlflow"),
    ("model show m", "mlflow"),
    ("model register abc --name m", "mlflow"),
    ("model promote m 1", "mlflow"),
    ("model approve m 1 --who a --why b", "mlflow"),
    ("train train --data x --out y", "torch"),
    ("train export --model x", "torch"),
    ("launch job.yaml --backend local", "torch"),
    ("launch job.yaml --backend eks", "k8s"),
    ("launch job.yaml --backend sagemaker", "sagemaker"),
    ("pipelines compile", "kfp"),
    ("pipelines submit {repo}/pipelines/etl.yaml --host http://127.0.0.1:9", "kfp"),
    ("serve local", "serve"),
    ("serve up", "serve"),
    ("serve rollout 2", "serve"),
    ("serve status", "serve"),
    ("serve rollback --why x", "serve"),
    ("serve down", "serve"),
    ("rayjob submit -- etl run", "k8s"),
    ("rayjob status etl-1", "k8s"),
]


@pytest.fixture(scope="module")
def lean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("lean") / "venv")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "job.yaml").write_text(JOB)
    (tmp_path / "mlops_kit.yaml").write_text(CONFIG)
    return tmp_path


def test_the_venv_is_core_only(lean: Path) -> None:
    names = set(core_distributions())
    assert {"pydantic", "typer", "pyarrow", "boto3", "mlops-kit"} <= names
    assert not names & {"feast", "mlflow", "torch", "pandas", "kfp"}
    code = f"import importlib.util as u; print([m for m in {HEAVY!r} if u.find_spec(m)])"
    out = subprocess.run([str(lean), "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    # this environment has them: the difference is the venv's, not the machine's
    assert importlib.util.find_spec("feast") is not None


@pytest.mark.parametrize(("command", "extra"), NEEDS_EXTRA, ids=[c for c, _ in NEEDS_EXTRA])
def test_each_command_names_its_extra(lean: Path, workdir: Path, command: str, extra: str) -> None:
    proc = run_cli(lean, *command.format(repo=REPO).split(), cwd=workdir)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Traceback" not in out, out
    assert f"pip install 'mlops-kit[{extra}]'" in " ".join(out.split()), out


def test_core_commands_work(lean: Path, workdir: Path) -> None:
    for command in (
        ["--help"],
        ["--version"],
        ["config", "show"],
        ["features", "config"],
        ["data", "generate", "in/r.jsonl", "--devices", "3", "--days", "1", "--bad-rate", "0.1"],
        ["ingest", "files", "in/r.jsonl"],
        ["etl", "run"],
        ["etl", "runs"],
        ["etl", "quarantined"],
    ):
        proc = run_cli(lean, *command, cwd=workdir)
        assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr


def _commands() -> list[list[str]]:
    import typer

    from mlops_kit.cli.main import app

    out: list[list[str]] = []

    def walk(cmd: object, path: list[str]) -> None:
        out.append(path)
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return out


def test_every_help_page_renders(lean: Path, workdir: Path) -> None:
    commands = _commands()
    assert ["etl", "release"] in commands and ["data", "register-devices"] in commands
    for path in commands:
        proc = run_cli(lean, *path, "--help", cwd=workdir)
        assert proc.returncode == 0, (path, proc.stderr)
        assert "Traceback" not in proc.stdout + proc.stderr


def test_demo_lists_what_it_skipped(lean: Path, workdir: Path) -> None:
    proc = run_cli(lean, "demo", "--devices", "3", "--days", "1", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    assert "skipped steps" in out
    assert "feature store" in out and "pip install 'mlops-kit[feast]'" in out
    assert "training" in out and "model registry" in out
    assert "rows in = loaded + quarantined + duplicates dropped: holds" in out

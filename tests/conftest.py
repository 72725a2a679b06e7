"""Shared fixtures and the required-services mode.

Fixtures: moto's server over HTTP, a real local PostgreSQL, isolated settings.

Required-services mode (``CI`` or ``MLOPS_KIT_REQUIRE_SERVICES`` set): a test that would
skip because a component is missing (PostgreSQL, terraform, its provider mirror, checkov,
the CRDs of ``../shared/crds``, moto's server, an optional extra) fails instead, naming what
is missing and how to install it. Outside it a skip stays a skip. Either way the end of the
run prints how many tests ran, how many skipped and why (see docs/testing.md).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_MAX_ATTEMPTS"] = "1"
os.environ.pop("AWS_PROFILE", None)
os.environ["PIP_NO_INDEX"] = "1"
# moto reads this when its IAM backend is created: set it before any test imports moto
os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

REQUIRE_ENV = "MLOPS_KIT_REQUIRE_SERVICES"
_FALSE = ("", "0", "false", "no", "off")

# the IoT example data (examples/iot_fleet.py) that many tests build lakes from
sys.path.insert(0, str(REPO / "examples"))


def required_services_mode(environ: Any = os.environ) -> tuple[bool, str]:
    """Whether a missing component fails the test instead of skipping it, and why.

    ``MLOPS_KIT_REQUIRE_SERVICES`` decides when it is set (``0``/``false`` turns the mode
    off even under CI); otherwise ``CI`` does.
    """
    explicit = environ.get(REQUIRE_ENV)
    if explicit is not None:
        return explicit.strip().lower() not in _FALSE, f"{REQUIRE_ENV}={explicit}"
    ci = environ.get("CI")
    if ci is not None and ci.strip().lower() not in _FALSE:
        return True, f"CI={ci}"
    return False, f"CI and {REQUIRE_ENV} unset"


REQUIRED, REQUIRED_BECAUSE = required_services_mode()

# What an optional import belongs to: the extra of pyproject.toml that installs it.
_EXTRA_OF = {
    "torch": "torch",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "onnxscript": "onnx",
    "kfp": "kfp",
    "sagemaker": "sagemaker",
    "kubernetes": "k8s",
    "jsonschema": "k8s",
    "mlflow": "mlflow",
    "feast": "feast",
    "ray": "serve",
    "psycopg": "postgres",
    "moto": "dev",
    "hypothesis": "dev",
    "kubernetes_validate": "dev",
    "tritonclient": "dev",
    "schemathesis": "dev",
    "prometheus_client": "serve",
    "fastapi": "serve",
    "uvicorn": "serve",
}

# (what is missing, a pattern of the skip reason, how to install it); the first match wins.
_COMPONENTS: tuple[tuple[str, str, str], ...] = (
    (
        "PostgreSQL server binaries",
        r"PostgreSQL",
        "run `make postgres` (it runs `apt-get install -y postgresql` where apt-get exists)",
    ),
    (
        "terraform CLI",
        r"terraform CLI",
        "put a terraform >= 1.6 release binary on PATH (from "
        "https://releases.hashicorp.com/terraform/; it is not on PyPI)",
    ),
    (
        "Terraform provider mirror",
        r"provider mirror",
        "set MLOPS_KIT_TF_PLUGIN_MIRROR to a folder holding "
        "registry.terraform.io/hashicorp/aws/<version>/ (made with `terraform providers "
        "mirror <dir>` on a connected machine), or place it at /opt/tf-plugins",
    ),
    (
        "checkov",
        r"checkov",
        "run `make checkov`: it installs infra/terraform/requirements-checkov.txt into "
        ".venv-checkov (needs the package index)",
    ),
    (
        "Kubernetes CRD schemas",
        r"CRD",
        f"put the upstream CRD YAML files (kubeflow.org_pytorchjobs.yaml, "
        f"trainer.kubeflow.org_trainjobs.yaml) in {SHARED / 'crds'}, beside the checkout",
    ),
    (
        "moto server",
        r"moto",
        "pip install 'moto[server]' (part of the dev extra: `make install` installs the lock file)",
    ),
)
_IMPORT = re.compile(r"could not import '([^']+)'")


def missing_component(reason: str) -> tuple[str, str]:
    """``(what is missing, how to install it)`` for the reason a test gave to skip."""
    found = _IMPORT.search(reason)
    if found:
        module = found.group(1)
        extra = _EXTRA_OF.get(module.split(".")[0])
        how = f"pip install -e '.[{extra}]'" if extra else f"pip install the package of {module}"
        return (
            f"Python module {module}",
            f"`make install` (the lock file holds every extra), or {how}",
        )
    for what, pattern, how in _COMPONENTS:
        if re.search(pattern, reason):
            return what, how
    return "an unnamed component", "make the test runnable here, or remove its skip"


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ").strip()


def _require(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Turn a skipped report into a failure that names the missing component."""
    if not REQUIRED or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report)
    what, how = missing_component(reason)
    kind = "module" if isinstance(report, pytest.CollectReport) else "test"
    report.outcome = "failed"
    report.longrepr = (
        f"required-services mode ({REQUIRED_BECAUSE}): this {kind} would have skipped.\n"
        f"missing: {what}\n"
        f"reason: {reason}\n"
        f"install: {how}\n"
        f"(outside CI a missing component skips; {REQUIRE_ENV}=0 turns the mode off)"
    )
    report.missing_component = what


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _require(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    # a module-level importorskip skips the whole module while it is collected
    report = yield
    _require(report)
    return report


def pytest_configure(config: pytest.Config) -> None:
    if REQUIRED:
        # a module whose import is missing fails; the rest of the suite still runs, so a
        # single run names everything that is missing
        config.option.continue_on_collection_errors = True


def _short(reason: str, width: int = 160) -> str:
    line = reason.splitlines()[0] if reason else "no reason given"
    return line if len(line) <= width else line[: width - 3] + "..."


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    stats = terminalreporter.stats
    passed = len(stats.get("passed", []))
    failed = stats.get("failed", []) + stats.get("error", [])
    missing = Counter(r.missing_component for r in failed if hasattr(r, "missing_component"))
    skipped = Counter(_short(_skip_reason(r)) for r in stats.get("skipped", []))
    ran = passed + len(stats.get("failed", [])) + len(stats.get("xfailed", []))
    ran += len(stats.get("xpassed", []))
    parts = [f"{ran} ran", f"{passed} passed"]
    if stats.get("failed"):
        parts.append(f"{len(stats['failed'])} failed")
    if stats.get("error"):
        errors = len(stats["error"])
        parts.append(f"{errors} error" + ("s" if errors > 1 else ""))
    for outcome in ("xfailed", "xpassed"):
        if stats.get(outcome):
            parts.append(f"{len(stats[outcome])} {outcome}")
    head = ", ".join(parts) + f", {sum(skipped.values())} skipped"
    if skipped:
        head += ": " + ", ".join(f"{reason} x {n}" for reason, n in skipped.most_common())
    terminalreporter.write_sep("-", "mlops_kit test summary")
    terminalreporter.write_line(head)
    if missing:
        terminalreporter.write_line(
            f"{sum(missing.values())} failed for a missing component: "
            + ", ".join(f"{what} x {n}" for what, n in missing.most_common())
        )
    state = "on" if REQUIRED else "off"
    effect = "a missing component fails" if REQUIRED else "a missing component skips"
    terminalreporter.write_line(f"required-services mode: {state} ({REQUIRED_BECAUSE}; {effect})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server on a free loopback port, for the whole session."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(moto_endpoint: str) -> Iterator[str]:
    """A fresh bucket on moto's S3; the storage module points at moto while it lives."""
    import boto3

    from mlops_kit import storage

    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(
        Bucket=name
    )
    storage.configure_s3("us-east-1", moto_endpoint)
    yield name
    storage.configure_s3("us-east-1", None)


PG_TOOLS = ("initdb", "pg_ctl")
PG_LIB = Path("/usr/lib/postgresql")


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path.parent.name))


def pg_bindir_candidates() -> list[Path]:
    """Where the PostgreSQL server binaries are looked for, in order.

    PATH first, then ``pg_config --bindir``, then the Debian layout
    ``/usr/lib/postgresql/<version>/bin`` (newest version first): Debian and Ubuntu do not
    put initdb or pg_ctl on PATH.
    """
    found: list[Path] = []
    on_path = shutil.which(PG_TOOLS[0])
    if on_path:
        found.append(Path(on_path).parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            out = ""
        if out:
            found.append(Path(out))
    found.extend(sorted(PG_LIB.glob("*/bin"), key=_version_key, reverse=True))
    return found


def find_pg_bindir() -> Path | None:
    """The first candidate folder that holds both initdb and pg_ctl, or None."""
    for folder in pg_bindir_candidates():
        if all(os.access(folder / tool, os.X_OK) for tool in PG_TOOLS):
            return folder
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server (initdb + pg_ctl) on a free port, for the whole session.

    Skips with the reason when the PostgreSQL binaries are not installed (a failure in
    required-services mode).
    """
    bindir = find_pg_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH, in "
            f"`pg_config --bindir` or in {PG_LIB}/<version>/bin"
        )
    as_root = os.geteuid() == 0
    if as_root:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip(
                "PostgreSQL refuses to run as root and there is no 'postgres' system user "
                "to run it as"
            )
    initdb, pg_ctl = (str(bindir / tool) for tool in PG_TOOLS)
    tmp = tempfile.mkdtemp(prefix="mlk-pg-")
    os.chmod(tmp, 0o777)
    data = os.path.join(tmp, "data")
    port = free_port()
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    subprocess.run(
        [*prefix, initdb, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"],
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*prefix, pg_ctl, "-D", data, "-w", "-o", opts, "-l", os.path.join(tmp, "log"), "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", data, "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated local-profile home; no config file or env from the developer leaks in."""
    for key in list(os.environ):
        if key.startswith("MLOPS_KIT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MLOPS_KIT_CONFIG", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv("MLOPS_KIT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False

"""``mlops-kit doctor``: what is installed, what answers, and how to fix each gap."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from mlops_kit._lazy import is_installed
from mlops_kit.cli._common import styled

if TYPE_CHECKING:
    from mlops_kit.config import Settings

EXTRAS: list[tuple[str, str, str]] = [
    # (module, extra, what it enables)
    ("kfp", "kfp", "compile and run pipelines"),
    ("feast", "feast", "feature store"),
    ("mlflow", "mlflow", "tracking and model registry"),
    ("torch", "torch", "training"),
    ("onnxruntime", "onnx", "ONNX export and inference"),
    ("ray", "serve", "Ray Serve deployments"),
    ("sagemaker", "sagemaker", "SageMaker training jobs"),
    ("kubernetes", "k8s", "EKS job submission"),
    ("psycopg", "postgres", "PostgreSQL / Aurora warehouse"),
]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _extras() -> list[Check]:
    out = []
    for module, extra, what in EXTRAS:
        ok = is_installed(module)
        out.append(
            Check(
                f"extra {extra}",
                ok,
                f"{module} {'installed' if ok else 'missing'}: {what}",
                "" if ok else f"pip install 'mlops-kit[{extra}]'",
            )
        )
    return out


def _storage(settings: Settings) -> Check:
    from mlops_kit import storage

    uri = settings.storage.raw_uri or ""
    probe = storage.join(settings.storage.state_uri or "", "_doctor", "probe")
    try:
        storage.configure_from_settings(settings)
        storage.write_bytes(probe, b"ok")
        storage.delete(probe)
        return Check("storage", True, f"raw zone {uri} is writable")
    except Exception as exc:
        fix = (
            "check the bucket exists and credentials/endpoint (aws.endpoint_url) are right"
            if storage.is_s3(uri)
            else "check the home folder is writable (--home or MLOPS_KIT_HOME)"
        )
        return Check(
            "storage", False, f"cannot write under {settings.storage.state_uri}: {exc}", fix
        )


def _warehouse(settings: Settings) -> Check:
    from mlops_kit.etl.warehouse import open_warehouse

    url = settings.warehouse.url or ""
    try:
        open_warehouse(url).query("SELECT 1")
        return Check("warehouse", True, f"{url.split('@')[-1]} answers")
    except Exception as exc:
        return Check(
            "warehouse",
            False,
            f"{url.split('@')[-1]}: {str(exc).splitlines()[0]}",
            "start the database or set warehouse.url (MLOPS_KIT_WAREHOUSE__URL)",
        )


def _stream(settings: Settings) -> Check:
    if settings.stream.backend == "local":
        return Check("stream", True, f"local stream file {settings.stream.local_path}")
    try:
        client = settings.aws.client("kinesis")
        desc = client.describe_stream_summary(StreamName=settings.stream.stream_name)
        status = desc["StreamDescriptionSummary"]["StreamStatus"]
        return Check(
            "stream", status == "ACTIVE", f"Kinesis {settings.stream.stream_name}: {status}"
        )
    except Exception as exc:
        return Check(
            "stream",
            False,
            f"Kinesis {settings.stream.stream_name}: {str(exc).splitlines()[0]}",
            "create the stream (infra/terraform) or set stream.stream_name / aws.endpoint_url",
        )


def _tools() -> list[Check]:
    out = []
    for tool, why in (("terraform", "infra/terraform tests"), ("initdb", "PostgreSQL tests")):
        path = shutil.which(tool)
        out.append(
            Check(
                f"tool {tool}",
                path is not None,
                f"{path or 'not on PATH'} ({why})",
                "" if path else f"install {tool} to run the {why}",
            )
        )
    return out


def run_doctor(settings: Settings, console: Console) -> bool:
    """Print the checks; True when every backend the settings use answers."""
    checks = _extras()
    core = [_storage(settings), _warehouse(settings), _stream(settings)]
    checks += core + _tools()
    table = Table(title=f"mlops-kit doctor (profile {settings.profile})")
    for col in ("check", "", "detail", "fix"):
        table.add_column(col)
    for c in checks:
        mark = styled(("ok", "green")) if c.ok else styled(("missing", "red"))
        table.add_row(c.name, mark, c.detail, c.fix)
    console.print(table)
    return all(c.ok for c in core)

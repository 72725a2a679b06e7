"""checkov over infra/terraform: no failed check; every inline skip carries a reason.

checkov lives in its own virtualenv (`.venv-checkov`, created here when missing) because it
pins `packaging<24` and its `bc-python-hcl2` clobbers `python-hcl2`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.terraform, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_ROOT = REPO_ROOT / "infra" / "terraform"
REQUIREMENTS = TERRAFORM_ROOT / "requirements-checkov.txt"
VENV = Path(os.environ.get("MLOPS_KIT_CHECKOV_VENV", REPO_ROOT / ".venv-checkov"))
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=(CKV2?_[A-Z0-9_]+)(?::(.*))?")


def _pinned_version() -> str:
    match = re.search(r"^checkov==(\S+)", REQUIREMENTS.read_text(), re.MULTILINE)
    assert match, f"{REQUIREMENTS} must pin checkov==<version>"
    return match.group(1)


@pytest.fixture(scope="session")
def checkov_bin() -> Path:
    """The checkov CLI of the dedicated virtualenv, installed from the pinned requirement when missing."""
    binary = VENV / "bin" / "checkov"
    python = VENV / "bin" / "python"
    wanted = _pinned_version()
    if python.exists():
        probe = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('checkov'))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == wanted and binary.exists():
            return binary
    if not python.exists():
        made = subprocess.run(
            [sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True, check=False
        )
        if made.returncode != 0:
            pytest.skip(
                f"cannot create the checkov virtualenv at {VENV}: {made.stderr.strip()[-500:]}"
            )
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "-r",
            str(REQUIREMENTS),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
        # the suite forbids package indexes for pipeline steps; this install needs one
        env={k: v for k, v in os.environ.items() if k != "PIP_NO_INDEX"},
    )
    if install.returncode != 0 or not binary.exists():
        pytest.skip(
            f"pip could not install checkov=={wanted} into {VENV}: {install.stderr.strip()[-800:]}"
        )
    return binary


def test_checkov_passes(checkov_bin: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "BC_SKIP_MAPPING": "TRUE",
        "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
        "LOG_LEVEL": "WARNING",
    }
    proc = subprocess.run(
        [
            str(checkov_bin),
            "--config-file",
            str(TERRAFORM_ROOT / ".checkov.yaml"),
            "-d",
            str(TERRAFORM_ROOT),
            "-o",
            "json",
            "--output-file-path",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    report_file = tmp_path / "results_json.json"
    assert report_file.exists(), (
        f"checkov wrote no report (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    reports = json.loads(report_file.read_text())
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{c['check_id']} {c['check_name']} -> {c['resource']} ({c['file_path']}:{c['file_line_range'][0]})"
        for report in reports
        for c in report.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(sorted(set(failed)))
    passed = sum(report.get("summary", {}).get("passed", 0) for report in reports)
    assert passed > 100, (
        f"checkov ran suspiciously few checks ({passed}); is the terraform framework on?"
    )
    for report in reports:
        for check in report.get("results", {}).get("skipped_checks", []):
            reason = (check.get("check_result") or {}).get("suppress_comment", "")
            assert len(reason.split()) >= 6, (
                f"{check['check_id']} on {check['resource']} is skipped without a real reason"
            )


def test_every_inline_skip_has_a_reason() -> None:
    problems = []
    for path in sorted(TERRAFORM_ROOT.rglob("*.tf")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = SKIP_COMMENT.search(line)
            if match and len((match.group(2) or "").split()) < 6:
                problems.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}")
    assert not problems, "checkov skips need a reason a reviewer can accept:\n" + "\n".join(
        problems
    )

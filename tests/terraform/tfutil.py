"""Helpers that run the Terraform CLI offline against the bundled configurations."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_ROOT = REPO_ROOT / "infra" / "terraform"
ENVS = ("dev", "staging", "prod")
MIRROR_ENV_VAR = "MLOPS_KIT_TF_PLUGIN_MIRROR"
DEFAULT_MIRRORS = ("/opt/tf-plugins",)
AWS_PROVIDER_PATH = Path("registry.terraform.io") / "hashicorp" / "aws"

# Nothing from a local run of Terraform is copied into a test's working tree.
_IGNORED = shutil.ignore_patterns(
    ".terraform",
    ".terraform.lock.hcl",
    "terraform.tfstate*",
    "*.tfplan",
    "backend.hcl",
    "*_override.tf",
)


class TerraformError(AssertionError):
    """A terraform command exited non-zero; the message carries its output."""


def find_terraform() -> str | None:
    """Return the path of the terraform binary, or None."""
    return shutil.which("terraform")


def mirror_candidates() -> list[str]:
    """Where a provider mirror is looked for: ``$MLOPS_KIT_TF_PLUGIN_MIRROR``, else the usual places."""
    configured = os.environ.get(MIRROR_ENV_VAR)
    return [configured] if configured else list(DEFAULT_MIRRORS)


def find_plugin_mirror() -> Path | None:
    """Return a filesystem mirror holding the hashicorp/aws provider, or None."""
    for candidate in mirror_candidates():
        path = Path(candidate)
        provider_dir = path / AWS_PROVIDER_PATH
        if provider_dir.is_dir() and any(provider_dir.iterdir()):
            return path
    return None


def write_cli_config(path: Path, mirror: Path) -> Path:
    """Write a CLI configuration that installs providers from ``mirror`` only."""
    path.write_text(
        "disable_checkpoint = true\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{mirror}"\n'
        '    include = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "}\n"
    )
    return path


def copy_tree(dest: Path) -> Path:
    """Copy infra/terraform to ``dest`` so that init leaves the repository clean."""
    shutil.copytree(TERRAFORM_ROOT, dest, ignore=_IGNORED)
    return dest


def run(
    terraform: str,
    args: list[str],
    cwd: Path,
    env: dict[str, str],
    timeout: float = 300,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``terraform <args>`` in ``cwd``; raise TerraformError with the output on failure."""
    proc = subprocess.run(
        [terraform, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        raise TerraformError(
            f"terraform {' '.join(args)} failed in {cwd} (exit {proc.returncode})\n"
            f"--- stdout ---\n{proc.stdout[-8000:]}\n--- stderr ---\n{proc.stderr[-8000:]}"
        )
    return proc


def init(terraform: str, cwd: Path, env: dict[str, str]) -> None:
    """``terraform init -backend=false`` from the mirror."""
    run(terraform, ["init", "-backend=false", "-input=false", "-no-color"], cwd, env, timeout=120)

"""Fixtures of the Terraform test layers (fmt, validate, terraform test, checkov, moto apply)."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest


def _load_tfutil() -> ModuleType:
    # Loaded by path so that the helpers work under every pytest import mode.
    name = "mlops_kit_tests_tfutil"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("tfutil.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


tfutil = _load_tfutil()


@pytest.fixture(scope="session")
def tf() -> ModuleType:
    """The Terraform helper module (run, init, copy_tree, paths)."""
    return tfutil


@pytest.fixture(scope="session")
def terraform_bin() -> str:
    """The terraform CLI; the test is skipped where it is absent."""
    path = tfutil.find_terraform()
    if path is None:
        pytest.skip(
            "terraform CLI not found on PATH: Terraform is not installable from a package registry here, "
            "install it (>= 1.6) to run the Terraform tests"
        )
    return path


@pytest.fixture(scope="session")
def plugin_mirror() -> Path:
    """Filesystem mirror of the hashicorp/aws provider; the test is skipped where it is absent."""
    mirror = tfutil.find_plugin_mirror()
    if mirror is None:
        pytest.skip(
            "no Terraform provider mirror holding registry.terraform.io/hashicorp/aws: set "
            f"{tfutil.MIRROR_ENV_VAR} to a filesystem mirror (searched: {', '.join(tfutil.DEFAULT_MIRRORS)})"
        )
    return mirror


@pytest.fixture(scope="session")
def tf_env(
    terraform_bin: str, plugin_mirror: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Environment for terraform: offline CLI config, no prompts, no checkpoint calls."""
    config = tfutil.write_cli_config(
        tmp_path_factory.mktemp("tfcli") / "terraformrc", plugin_mirror
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "AWS_"))}
    env.update(
        {
            "TF_CLI_CONFIG_FILE": str(config),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
        }
    )
    return env


@pytest.fixture(scope="session")
def tf_tree(tf_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of infra/terraform shared by the read-only layers."""
    return tfutil.copy_tree(tmp_path_factory.mktemp("tree") / "terraform")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server on a free loopback port, with IAM's AWS-managed policies loaded."""
    pytest.importorskip("moto.server", reason="moto[server] is not installed")
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in ("MOTO_IAM_LOAD_MANAGED_POLICIES",)}
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

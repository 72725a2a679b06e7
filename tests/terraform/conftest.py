"""Fixtures of the Terraform test layers (fmt, validate, terraform test, checkov, moto apply)."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

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
            f"{tfutil.MIRROR_ENV_VAR} to a filesystem mirror (searched: {', '.join(tfutil.mirror_candidates())})"
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
    """moto's server on a free loopback port."""
    pytest.importorskip("moto.server", reason="moto[server] is not installed")
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _load_sibling(module_name: str, file_name: str) -> ModuleType:
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            module_name, Path(__file__).with_name(file_name)
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The moto apply runs in the background from the first Terraform test on. Its own test,
    # which only waits for the result, moves behind the other Terraform tests (and before
    # anything else) so that they overlap with it and nothing that uses moto does.
    applies = [item for item in items if item.get_closest_marker("tf_apply")]
    if not applies:
        return
    rest = [item for item in items if not item.get_closest_marker("tf_apply")]
    last_tf = max(
        (i for i, item in enumerate(rest) if item.get_closest_marker("terraform")), default=-1
    )
    items[:] = rest[: last_tf + 1] + applies + rest[last_tf + 1 :]


@pytest.fixture(scope="session")
def dev_apply_cycle(
    tf: ModuleType,
    terraform_bin: str,
    tf_env: dict[str, str],
    moto_endpoint: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Future[Any]]:
    """The apply / re-plan / destroy cycle of envs/dev against moto, running in a background thread."""
    pytest.importorskip("boto3")
    cycle = _load_sibling("mlops_kit_tests_moto_cycle", "moto_cycle.py")
    workdir = tmp_path_factory.mktemp("moto-dev")
    # IAM attachments of AWS-managed policies need them loaded; moto reads this when the
    # IAM backend is first used, which happens during the apply.
    saved = os.environ.get("MOTO_IAM_LOAD_MANAGED_POLICIES")
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"

    def restore(_: Future[Any]) -> None:
        if saved is None:
            os.environ.pop("MOTO_IAM_LOAD_MANAGED_POLICIES", None)
        else:
            os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = saved

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="moto-apply") as pool:
        future = pool.submit(cycle.run_cycle, tf, terraform_bin, tf_env, moto_endpoint, workdir)
        future.add_done_callback(restore)
        yield future


@pytest.fixture(autouse=True)
def _start_dev_apply_early(request: pytest.FixtureRequest) -> None:
    """Start the background moto apply with the first Terraform test when the session selected it."""
    if request.node.get_closest_marker("terraform") is None:
        return
    if tfutil.find_terraform() is None or tfutil.find_plugin_mirror() is None:
        return
    if importlib.util.find_spec("moto") is None:
        return
    if any(item.get_closest_marker("tf_apply") for item in request.session.items):
        request.getfixturevalue("dev_apply_cycle")

"""`terraform test` of every module and environment (mock_provider "aws", plan/apply-time asserts).

The runs are independent, so they execute two at a time; each pytest item reports its own.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.terraform

TERRAFORM_ROOT = Path(__file__).resolve().parents[2] / "infra" / "terraform"
TEST_DIRS = sorted(
    {
        str(p.parent.parent.relative_to(TERRAFORM_ROOT))
        for p in TERRAFORM_ROOT.glob("*/*/tests/*.tftest.hcl")
    }
)


def test_every_module_and_env_has_terraform_tests() -> None:
    dirs = {str(p.relative_to(TERRAFORM_ROOT)) for p in TERRAFORM_ROOT.glob("envs/*") if p.is_dir()}
    dirs |= {
        str(p.relative_to(TERRAFORM_ROOT))
        for p in TERRAFORM_ROOT.glob("modules/*")
        if p.is_dir() and p.name not in {"platform", "kms-key", "log-bucket"}
    }
    assert dirs <= set(TEST_DIRS), f"without terraform tests: {sorted(dirs - set(TEST_DIRS))}"


def _terraform_test(
    tf: ModuleType, terraform: str, env: dict[str, str], workdir: Path
) -> subprocess.CompletedProcess[str]:
    tf.init(terraform, workdir, env)
    return tf.run(terraform, ["test", "-no-color"], workdir, env, timeout=300, check=False)


@pytest.fixture(scope="module")
def terraform_tests(
    request: pytest.FixtureRequest,
    tf: ModuleType,
    terraform_bin: str,
    tf_env: dict[str, str],
    tf_tree: Path,
) -> Iterator[dict[str, Future[subprocess.CompletedProcess[str]]]]:
    selected = [
        item.callspec.params["rel"]
        for item in request.session.items
        if item.originalname == "test_terraform_test" and hasattr(item, "callspec")
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {
            rel: pool.submit(_terraform_test, tf, terraform_bin, tf_env, tf_tree / rel)
            for rel in selected
        }


@pytest.mark.parametrize("rel", TEST_DIRS)
def test_terraform_test(
    terraform_tests: dict[str, Future[subprocess.CompletedProcess[str]]], rel: str
) -> None:
    proc = terraform_tests[rel].result()
    assert proc.returncode == 0, (
        f"terraform test failed in {rel}:\n{proc.stdout[-8000:]}\n{proc.stderr[-4000:]}"
    )
    assert "0 failed" in proc.stdout, proc.stdout[-4000:]

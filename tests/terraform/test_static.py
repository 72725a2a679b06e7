"""First layers: `terraform fmt -check` over the tree and `terraform validate` of every root (envs, bootstrap)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.terraform

ROOTS = ("envs/dev", "envs/staging", "envs/prod", "bootstrap")


def test_fmt(tf: ModuleType, terraform_bin: str) -> None:
    # fmt needs no init, no provider and -check writes nothing: it runs on the repository itself.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env["CHECKPOINT_DISABLE"] = "1"
    proc = tf.run(
        terraform_bin,
        ["fmt", "-check", "-recursive", "-diff", "-no-color"],
        tf.TERRAFORM_ROOT,
        env,
        check=False,
    )
    assert proc.returncode == 0, (
        f"run `terraform fmt -recursive infra/terraform`:\n{proc.stdout}{proc.stderr}"
    )


@pytest.mark.parametrize("root", ROOTS)
def test_validate(
    tf: ModuleType, terraform_bin: str, tf_env: dict[str, str], tf_tree: Path, root: str
) -> None:
    env_dir = tf_tree / root
    tf.init(terraform_bin, env_dir, tf_env)
    proc = tf.run(terraform_bin, ["validate", "-json", "-no-color"], env_dir, tf_env, check=False)
    report = json.loads(proc.stdout)
    problems = [
        f"{d['severity']}: {d['summary']}: {d.get('detail', '')}" for d in report["diagnostics"]
    ]
    assert report["valid"], "\n".join(problems)
    assert not problems, "validate reported warnings:\n" + "\n".join(problems)

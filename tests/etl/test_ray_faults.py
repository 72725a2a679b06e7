"""Faults on the ETL's Ray backend: a killed worker, a killed driver.

A worker process that dies mid-task (``os._exit``, as a kill) makes Ray retry the task;
the run then commits whole, the same rows as the local backend. A driver killed after
its tasks staged their files commits nothing; the next run completes the work, nothing
lost or duplicated.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_kit import storage
from mlops_kit._faults import EXIT_CODE, FAULT_ENV, ONCE_ENV
from mlops_kit.config import load_settings
from mlops_kit.etl import run_etl
from mlops_kit.etl.lake import manifests
from mlops_kit.etl.run import layout_of
from tests.etl.conftest import NOW
from tests.etl.ray_lake import committed, first_files, lake_at, land, second_files

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def killing_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local Ray cluster whose first worker to reach ``etl.ray_partition`` dies."""
    import ray

    from mlops_kit.compute import ray_session

    marker = tmp_path_factory.mktemp("fault") / "killed-once"
    ray.shutdown()
    saved = {k: os.environ.get(k) for k in (FAULT_ENV, ONCE_ENV)}
    os.environ[FAULT_ENV], os.environ[ONCE_ENV] = "etl.ray_partition", str(marker)
    try:
        ray_session(load_settings(ray={"num_cpus": 2}))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    yield marker
    ray.shutdown()


def test_a_worker_killed_mid_task_is_retried_and_the_run_commits_whole(
    killing_cluster: Path, tmp_path: Path
) -> None:
    local = lake_at(tmp_path / "local", "local")
    on_ray = lake_at(tmp_path / "ray", "ray")
    for paths in (first_files(tmp_path / "in1"), second_files(tmp_path / "in2")):
        land(local, paths)
        land(on_ray, paths)
        run_etl(local, now=NOW)
        assert run_etl(on_ray, now=NOW).status == "committed"
    assert killing_cluster.exists(), "no worker was killed: the test proves nothing"
    want, got = committed(local), committed(on_ray)
    for name in ("readings", "features", "quarantine"):
        assert got[name].equals(want[name]), name
    assert got["warehouse"] == want["warehouse"]
    assert got["accounting"] == want["accounting"]


_DRIVER = (
    "from datetime import datetime, timezone\n"
    "from mlops_kit.config import load_settings\n"
    "from mlops_kit.etl import run_etl\n"
    "run_etl(load_settings(), now=datetime(2026, 6, 1, tzinfo=timezone.utc))\n"
)


def test_a_driver_killed_before_the_commit_leaves_nothing_and_the_next_run_completes(
    killing_cluster: Path, tmp_path: Path
) -> None:
    import ray

    local = lake_at(tmp_path / "local", "local")
    on_ray = lake_at(tmp_path / "ray", "ray")
    paths = first_files(tmp_path / "in")
    land(local, paths)
    land(on_ray, paths)
    run_etl(local, now=NOW)
    env = {
        **os.environ,
        FAULT_ENV: "etl.after_stage",
        "MLOPS_KIT_HOME": str(on_ray.home),
        "MLOPS_KIT_QUALITY__MAX_QUARANTINE_RATE": "1.0",
        "MLOPS_KIT_ETL__BACKEND": "ray",
        "MLOPS_KIT_ETL__PARTITIONS": "3",
        "MLOPS_KIT_RAY__ADDRESS": ray.get_runtime_context().gcs_address,
    }
    env.pop(ONCE_ENV, None)
    proc = subprocess.run([sys.executable, "-c", _DRIVER], env=env, capture_output=True, text=True)
    assert proc.returncode == EXIT_CODE, proc.stderr[-2000:]
    layout = layout_of(on_ray)
    assert manifests(layout) == []
    assert storage.list_files(layout.staging_root), "the tasks staged nothing before the kill"
    again = run_etl(on_ray, now=NOW)
    assert again.status == "committed"
    assert storage.list_files(layout.staging_root) == []
    want, got = committed(local), committed(on_ray)
    for name in ("readings", "features", "quarantine"):
        assert got[name].equals(want[name]), name
    assert got["accounting"] == want["accounting"]
    assert run_etl(on_ray, now=NOW).status == "noop"

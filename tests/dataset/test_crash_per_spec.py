"""Crash recovery holds for the second dataset too: a kill at a commit step leaves the
old or the new committed state, and the next run completes the work exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from mlops_kit import storage
from mlops_kit.config import Settings, load_settings
from mlops_kit.data.generate import SpecGeneratorConfig, generate, to_raw
from mlops_kit.data.spec import load_spec
from mlops_kit.etl import features_table, read_table, run_etl
from mlops_kit.ingest.raw_zone import land
from tests.backends import BACKENDS, backend_config

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
NOW = T0 + timedelta(days=3)
NAME = "machine_telemetry"
# (point, whether the lake shows the new run after a kill there)
POINTS = [("etl.after_journal", False), ("etl.after_moves", False), ("etl.after_manifest", True)]

_RUN = textwrap.dedent(
    f"""
    from datetime import datetime
    from mlops_kit.config import load_settings
    from mlops_kit.etl import run_etl
    run_etl(load_settings(), now=datetime.fromisoformat({NOW.isoformat()!r}))
    """
)


@pytest.fixture(autouse=True)
def _s3_back_to_default():
    yield
    storage.configure_s3("us-east-1", None)


def _batches() -> tuple[bytes, bytes]:
    spec = load_spec(NAME)
    table = generate(spec, SpecGeneratorConfig(n_entities=4, start=T0, freq_s=900, steps=192))
    first, rest = table.slice(0, table.num_rows // 2), table.slice(table.num_rows // 2)
    return (
        to_raw(spec, first, bad_rate=0.05, seed=1).to_bytes(),
        to_raw(spec, rest, bad_rate=0.05, seed=2).to_bytes(),
    )


def _state(s: Settings) -> tuple:
    key, time = "machine_id", "recorded_at"
    readings = read_table(s, "readings").sort_by([(time, "ascending"), (key, "ascending")])
    feats = read_table(s, features_table(s)).drop_columns(["created_at"])
    feats = feats.sort_by([("event_timestamp", "ascending"), (key, "ascending")])
    return readings.to_pylist(), feats.to_pylist()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple, tuple]:
    first, rest = _batches()
    s = load_settings(home=tmp_path_factory.mktemp("ref") / "home", dataset=NAME)
    land(s.storage.raw_uri or "", "files", first, "jsonl")
    run_etl(s, now=NOW)
    before = _state(s)
    land(s.storage.raw_uri or "", "files", rest, "jsonl")
    run_etl(s, now=NOW)
    return before, _state(s)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("point", "new"), POINTS)
def test_a_kill_mid_commit_is_completed_by_the_next_run(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    reference: tuple[tuple, tuple],
    backend: str,
    point: str,
    new: bool,
) -> None:
    before, after = reference
    assert before != after
    cfg = backend_config(backend, tmp_path, request, dataset=NAME)
    first, rest = _batches()
    s = load_settings(**cfg)
    storage.configure_from_settings(s)
    land(s.storage.raw_uri or "", "files", first, "jsonl")
    run_etl(s, now=NOW)
    land(s.storage.raw_uri or "", "files", rest, "jsonl")
    config = tmp_path / "mlops_kit.yaml"
    config.write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_KIT_")}
    env.update(MLOPS_KIT_CONFIG=str(config), MLOPS_KIT_FAULT_AT=point)
    proc = subprocess.run([sys.executable, "-c", _RUN], env=env, capture_output=True, text=True)
    assert proc.returncode == 137, proc.stderr
    assert _state(s) == (after if new else before)
    run_etl(s, now=NOW)
    assert _state(s) == after
    assert run_etl(s, now=NOW).status == "noop"

"""The evaluation of an exported folder with the policy's latency warm-up, directly and
through the KFP evaluation step (the graph and folder of ``test_evaluation``)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mlops_kit.registry import evaluate as ev
from mlops_kit.registry.errors import MissingArtifactError
from mlops_kit.registry.policy import EvaluationSpec

from . import test_evaluation as base
from .test_evaluation import UNTIMED, _expected, _table, spied_sessions

graph, folder = base.graph, base.folder  # the fixtures: a logistic graph and its folder


def test_evaluate_folder_warms_up_as_asked(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = spied_sessions(monkeypatch)
    spec = EvaluationSpec(label_column="failed")
    ev.evaluate_folder(str(folder), _table("failed"), spec, latency_calls=2, latency_warmup=4)
    ev.evaluate_folder(str(folder), _table("failed"), spec, latency_calls=2)
    assert [len(s.calls) for s in sessions] == [1 + 4 + 2, 1 + 50 + 2]


def test_the_pipeline_step_warms_up_as_the_policy_says(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The KFP evaluation step times the policy's calls after its warm-up calls."""
    from mlops_kit.components.runtime.registry import evaluate_model_step

    from .test_registry import _Artifact

    table = tmp_path / "evaluation.parquet"
    pq.write_table(_table("failed"), table)
    policy = {"latency": {"max_p99_ms": 1e6, "calls": 10, "warmup": 5}}
    sessions = spied_sessions(monkeypatch)
    metrics, scores = _Artifact(tmp_path / "m"), _Artifact(tmp_path / "s")
    passed = tmp_path / "out" / "passed"
    evaluate_model_step(
        _Artifact(folder),
        _Artifact(table),
        metrics,
        scores,
        str(passed),
        json.dumps(policy),
        "failed",
        "all",
        json.dumps({"home": str(tmp_path / "home")}),
    )
    assert [len(s.calls) for s in sessions] == [1 + 5 + 10]
    assert scores.metrics["roc_auc"] == pytest.approx(23 / 30)


def test_evaluate_folder_reads_the_bundle_and_the_spec(folder: Path) -> None:
    spec = EvaluationSpec(label_column="failed", threshold=0.6)
    result = ev.evaluate_folder(str(folder), _table("failed"), spec)
    assert result.to_dict() == {**_expected(0.6), **UNTIMED}
    once = ev.evaluate_folder(str(folder), _table("failed"), spec, latency_calls=1)
    assert once.latency_calls == 1 and isinstance(once.latency_p50_ms, float)
    assert once.latency_p50_ms == once.latency_p99_ms and once.latency_p50_ms >= 0.0


@pytest.mark.parametrize("lacking", ["model.onnx", "preprocess.json"])
def test_evaluate_folder_names_the_missing_file(folder: Path, lacking: str) -> None:
    (folder / lacking).unlink()
    with pytest.raises(MissingArtifactError) as info:
        ev.evaluate_folder(str(folder), _table(), EvaluationSpec(label_column="y"))
    assert str(info.value) == (
        f"'{folder}' has no {lacking}: give the folder export_onnx wrote "
        "(model.onnx and preprocess.json side by side)"
    )
    assert info.value.code == "MISSING_ARTIFACT"

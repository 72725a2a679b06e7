"""The promotion policy and the evaluation, driven directly (no MLflow, no training): each
policy field's default and bounds, the messages of a refused policy, the evaluation table's
columns and labels, the ROC curve and the metrics of a tiny logistic-regression graph whose
figures are worked out by hand."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from mlops_kit.model.preprocess import Preprocessor
from mlops_kit.registry import evaluate as ev
from mlops_kit.registry.errors import PolicyError, RegistryError
from mlops_kit.registry.evaluate import Evaluation
from mlops_kit.registry.policy import (
    ChampionGate,
    EvaluationSpec,
    LatencyGate,
    PromotionPolicy,
    Thresholds,
    load_policy,
    parse_policy,
)

UNKNOWN = "unknown key (check the spelling; see docs/registry.md)"

# The evaluation rows: the graph's logit is a' - b with a' = (a - 1) / 2 (the preprocessor's
# standardisation), so a = 2 * (logit + b) + 1 gives each row the logit below.
LOGITS = [-3.0, -1.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0]
LABELS = [0, 0, 1, 0, 0, 0, 1, 1]
B = [0.5, -1.0, 1.0, 0.0, 2.0, -0.5, 1.5, 0.0]
# 3 positives, 5 negatives. ROC-AUC: the positive at -1 beats one negative and ties one
# (1.5), those at 2 and 3 beat all five: 11.5 / 15. Average precision, thresholds from the
# top: recall 1/3 and 2/3 at precision 1, the last third at precision 3/7: 2/3 + 1/7.
# At 0.5 (logit >= 0): tp 2, fp 3, fn 1, tn 2, F1 = 4 / 8. At 0.6 (logit >= 0.405): tp 2,
# fp 2, fn 1, tn 3, F1 = 4 / 7.
ROC_AUC = 23 / 30
PR_AUC = 17 / 21


def _table(label: str = "y") -> pa.Table:
    a = [2.0 * (z + b) + 1.0 for z, b in zip(LOGITS, B, strict=True)]
    return pa.table({"a": a, "note": ["x"] * len(a), "b": B, label: LABELS})


def _standardised() -> np.ndarray:
    return np.column_stack([np.add(LOGITS, B), B]).astype(np.float32)


def _preprocessor() -> Preprocessor:
    return Preprocessor(feature_names=("a", "b"), means=(1.0, 0.0), scales=(2.0, 1.0))


@pytest.fixture(scope="module")
def graph() -> bytes:
    """``probability = sigmoid(features @ [1, -1])``, with ``logit`` beside it."""
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.array([[1.0], [-1.0]], dtype=np.float32), "W")
    bias = numpy_helper.from_array(np.array([0.0], dtype=np.float32), "B")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "B"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], ["probability"]),
        ],
        "logistic",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 2])],
        [
            helper.make_tensor_value_info("logit", TensorProto.FLOAT, ["batch", 1]),
            helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch", 1]),
        ],
        initializer=[weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


@pytest.fixture
def folder(tmp_path: Path, graph: bytes) -> Path:
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "model.onnx").write_bytes(graph)
    _preprocessor().save(str(out / "preprocess.json"))
    return out


class Counting:
    """An ONNX Runtime session that records each ``run`` call."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.calls: list[tuple[list[str], dict[str, np.ndarray]]] = []

    def run(self, outputs: list[str], feed: dict[str, np.ndarray]) -> Any:
        self.calls.append((list(outputs), feed))
        return self.session.run(outputs, feed)


class Clock:
    """A ``perf_counter_ns`` whose i-th timed interval (read pairs) lasts ``(i + 1)`` ms."""

    def __init__(self) -> None:
        self.reads = 0
        self.now = 0

    def __call__(self) -> int:
        if self.reads % 2:
            self.now += (self.reads // 2 + 1) * 1_000_000
        self.reads += 1
        return self.now


# ------------------------------------------------------------------------------ policy
DEFAULTS = {
    "thresholds": {"roc_auc": 0.85, "pr_auc": None, "f1": None},
    "champion": {"enabled": True, "metric": "roc_auc", "margin": 0.0},
    "require_parity": True,
    "require_data_quality": True,
    "latency": {"max_p99_ms": 5.0, "calls": 1000, "warmup": 50},
    "require_approval": True,
    "evaluation": {
        "uri": None,
        "label_column": "label",
        "split": "all",
        "timestamp_column": "event_timestamp",
        "validation_fraction": 0.2,
        "threshold": 0.5,
    },
}
# (section, field, value) at the edge of what each field takes
ACCEPTED = [
    *[("thresholds", f, v) for f in ("roc_auc", "pr_auc", "f1") for v in (0.0, 1.0)],
    *[("champion", "margin", v) for v in (-1.0, 1.0)],
    *[("champion", "metric", v) for v in ("roc_auc", "pr_auc", "f1")],
    *[("latency", f, v) for f, v in [("max_p99_ms", 1e-6), ("calls", 10), ("calls", 10**6)]],
    *[("latency", "warmup", v) for v in (0, 100_000)],
    *[("evaluation", f, v) for f in ("validation_fraction", "threshold") for v in (1e-6, 0.999)],
    *[("evaluation", "split", v) for v in ("all", "validation")],
]
# (section, field, value, part of pydantic's reason)
REFUSED = [
    *[("thresholds", f, -0.01, "greater than or equal to 0") for f in ("roc_auc", "pr_auc", "f1")],
    *[("thresholds", f, 1.01, "less than or equal to 1") for f in ("roc_auc", "pr_auc", "f1")],
    ("champion", "margin", -1.01, "greater than or equal to -1"),
    ("champion", "margin", 1.01, "less than or equal to 1"),
    ("champion", "metric", "accuracy", "'roc_auc', 'pr_auc' or 'f1'"),
    ("champion", "enabled", "maybe", "valid boolean"),
    ("latency", "max_p99_ms", 0.0, "greater than 0"),
    ("latency", "max_p99_ms", "fast", "valid number"),
    ("latency", "calls", 9, "greater than or equal to 10"),
    ("latency", "calls", 1_000_001, "less than or equal to 1000000"),
    ("latency", "calls", 2.5, "valid integer"),
    ("latency", "warmup", -1, "greater than or equal to 0"),
    ("latency", "warmup", 100_001, "less than or equal to 100000"),
    *[("evaluation", f, 0.0, "greater than 0") for f in ("validation_fraction", "threshold")],
    *[("evaluation", f, 1.0, "less than 1") for f in ("validation_fraction", "threshold")],
    ("evaluation", "split", "train", "'all' or 'validation'"),
]


def test_defaults_of_every_section() -> None:
    policy = parse_policy(None)
    assert policy == parse_policy({}) == PromotionPolicy() == load_policy(None)
    assert policy.model_dump() == DEFAULTS
    assert Thresholds().model_dump() == DEFAULTS["thresholds"]
    assert ChampionGate().model_dump() == DEFAULTS["champion"]
    assert LatencyGate().model_dump() == DEFAULTS["latency"]
    assert EvaluationSpec().model_dump() == DEFAULTS["evaluation"]


@pytest.mark.parametrize(("section", "field", "value"), ACCEPTED)
def test_values_at_their_bounds_are_accepted(section: str, field: str, value: object) -> None:
    assert getattr(getattr(parse_policy({section: {field: value}}), section), field) == value


@pytest.mark.parametrize(("section", "field", "value", "why"), REFUSED)
def test_bad_values_are_refused_naming_the_field(
    section: str, field: str, value: object, why: str
) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy({section: {field: value}}, "'p.yaml'")
    message = str(info.value)
    assert message.startswith(f"invalid promotion policy 'p.yaml':\n  {section}.{field}: ")
    assert why in message and message.endswith(f" (got {value!r})")
    assert info.value.code == "POLICY_INVALID"


def test_unknown_keys_are_refused_each_named() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy({"thresholds": {"roc_acu": 0.9}, "gates": []}, "'p.yaml'")
    assert str(info.value) == (
        "invalid promotion policy 'p.yaml':\n"
        f"  thresholds.roc_acu: {UNKNOWN} (got 0.9)\n"
        f"  gates: {UNKNOWN} (got [])"
    )
    for section in ("champion", "latency", "evaluation"):
        with pytest.raises(PolicyError) as info:
            parse_policy({section: {"extra": 1}})
        assert str(info.value) == f"invalid promotion policy:\n  {section}.extra: {UNKNOWN} (got 1)"


def test_a_policy_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy([1, 2], "'p.yaml'")
    assert str(info.value) == (
        "promotion policy 'p.yaml' must be a mapping of sections (thresholds, champion, "
        "latency, evaluation...), got list"
    )
    with pytest.raises(PolicyError) as info:
        parse_policy("thresholds")
    assert str(info.value) == (
        "promotion policy must be a mapping of sections (thresholds, champion, latency, "
        "evaluation...), got str"
    )
    with pytest.raises(PolicyError, match=r"^invalid promotion policy:\n  latency: .*\(got 5\)$"):
        parse_policy({"latency": 5})
    for flag in ("require_parity", "require_data_quality", "require_approval"):
        with pytest.raises(
            PolicyError, match=rf"^invalid promotion policy:\n  {flag}: .*'often'\)$"
        ):
            parse_policy({flag: "often"})


def test_policies_are_frozen() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        parse_policy({}).thresholds.roc_auc = 0.1  # type: ignore[misc]


def test_sha256_is_short_stable_and_follows_the_content() -> None:
    a = parse_policy({"thresholds": {"roc_auc": 0.9, "pr_auc": 0.4}, "latency": {"calls": 500}})
    b = parse_policy({"latency": {"calls": 500}, "thresholds": {"pr_auc": 0.4, "roc_auc": 0.9}})
    dumped = json.dumps(a.model_dump(mode="json"), sort_keys=True)
    assert a.sha256() == b.sha256() == hashlib.sha256(dumped.encode()).hexdigest()[:12]
    assert len(a.sha256()) == 12 and int(a.sha256(), 16) >= 0
    assert PromotionPolicy().sha256() == parse_policy({}).sha256()
    assert parse_policy({"latency": {"calls": 501}}).sha256() != parse_policy({}).sha256()
    assert parse_policy({"require_approval": False}).sha256() != parse_policy({}).sha256()


def test_load_policy_reads_yaml_and_json_files(tmp_path: Path) -> None:
    yaml_file = tmp_path / "policy.yaml"
    yaml_file.write_text(
        "thresholds: {roc_auc: 0.9, f1: 0.3}\n"
        "champion: {metric: pr_auc, margin: 0.005}\n"
        "latency: {max_p99_ms: 2.0, calls: 2000}\n"
        "require_approval: false  # for target champion\n"
        "evaluation: {uri: /data/eval.parquet, label_column: failed}\n"
    )
    policy = load_policy(yaml_file)
    assert policy == parse_policy(
        {
            "thresholds": {"roc_auc": 0.9, "f1": 0.3},
            "champion": {"metric": "pr_auc", "margin": 0.005},
            "latency": {"max_p99_ms": 2.0, "calls": 2000},
            "require_approval": False,
            "evaluation": {"uri": "/data/eval.parquet", "label_column": "failed"},
        }
    )
    assert policy.latency.warmup == 50 and policy.thresholds.pr_auc is None
    assert load_policy(str(yaml_file)) == policy
    json_file = tmp_path / "policy.json"
    json_file.write_text(json.dumps(policy.model_dump(mode="json")))
    assert load_policy(json_file) == policy
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_policy(empty) == PromotionPolicy()


def test_load_policy_names_the_file_in_each_refusal(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(PolicyError, match=rf"^cannot read promotion policy '{missing}': .*exist"):
        load_policy(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("thresholds: [1,\n")
    with pytest.raises(PolicyError, match=rf"^promotion policy '{broken}' is not valid YAML: "):
        load_policy(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- thresholds\n")
    with pytest.raises(PolicyError) as info:
        load_policy(listed)
    assert str(info.value) == (
        f"promotion policy '{listed}' must be a mapping of sections (thresholds, champion, "
        "latency, evaluation...), got list"
    )
    typo = tmp_path / "typo.yaml"
    typo.write_text("champion:\n  margn: 0.01\n")
    with pytest.raises(PolicyError) as info:
        load_policy(typo)
    assert str(info.value) == (
        f"invalid promotion policy '{typo}':\n  champion.margn: {UNKNOWN} (got 0.01)"
    )


# --------------------------------------------------------------------- evaluation table
def _write(path: Path, table: pa.Table) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return str(path)


def _timed(n: int) -> pa.Table:
    at = [datetime(2026, 1, 1) + timedelta(hours=i) for i in range(n)]
    return pa.table({"at": at, "a": np.arange(n, dtype=float), "failed": np.arange(n) % 2})


def test_reads_a_parquet_file_with_the_needed_columns(tmp_path: Path) -> None:
    uri = _write(tmp_path / "eval.parquet", _table("label"))
    table = ev.read_evaluation_table(uri, None, ["a", "b"])
    assert table.column_names == ["a", "note", "b", "label"] and table.num_rows == 8
    assert ev.read_evaluation_table(uri).equals(table)
    other = _write(tmp_path / "y.parquet", _table("y"))
    assert ev.read_evaluation_table(other, EvaluationSpec(label_column="y")).num_rows == 8


def test_a_training_set_folder_is_read_through_its_data_file(tmp_path: Path) -> None:
    folder = tmp_path / "ts"
    _write(folder / "data.parquet", _table("label"))
    _write(folder / "extra" / "more.parquet", _table("label"))
    assert ev.read_evaluation_table(str(folder)).num_rows == 8
    prefix = tmp_path / "prefix"
    _write(prefix / "part-0.parquet", _table("label"))
    _write(prefix / "part-1.parquet", _table("label"))
    assert ev.read_evaluation_table(str(prefix)).num_rows == 16


def test_nothing_readable_or_no_rows_is_a_registry_error(tmp_path: Path) -> None:
    uri = str(tmp_path / "nowhere")
    with pytest.raises(RegistryError) as info:
        ev.read_evaluation_table(uri)
    assert str(info.value).startswith(f"cannot read the evaluation table '{uri}': no training")
    assert info.value.code == "REGISTRY_ERROR"
    empty = _write(tmp_path / "eval.parquet", _table("label").slice(0, 0))
    with pytest.raises(RegistryError) as info:
        ev.read_evaluation_table(empty)
    assert str(info.value) == f"evaluation table '{empty}' has no rows"


def test_missing_columns_are_all_named_with_the_fix(tmp_path: Path) -> None:
    uri = _write(tmp_path / "eval.parquet", _table("y"))
    with pytest.raises(RegistryError) as info:
        ev.read_evaluation_table(uri, None, ["a", "c"])
    assert str(info.value) == (
        f"evaluation table '{uri}' lacks column(s) ['label', 'c'] (has ['a', 'note', 'b', 'y']); "
        "set evaluation.label_column in the policy or pass a table with the model's features"
    )
    spec = EvaluationSpec(label_column="y", split="validation")
    with pytest.raises(RegistryError, match=r"lacks column\(s\) \['event_timestamp'\] "):
        ev.read_evaluation_table(uri, spec, ["a"])


def test_the_validation_split_keeps_the_latest_rows(tmp_path: Path) -> None:
    uri = _write(tmp_path / "eval.parquet", _timed(10))
    spec = EvaluationSpec(split="validation", timestamp_column="at", label_column="failed")
    assert ev.read_evaluation_table(uri, spec, ["a"])["a"].to_pylist() == [8.0, 9.0]
    wider = spec.model_copy(update={"validation_fraction": 0.3})
    assert ev.read_evaluation_table(uri, wider, ["a"])["a"].to_pylist() == [7.0, 8.0, 9.0]
    assert ev.read_evaluation_table(uri, spec)["a"].to_pylist() == [8.0, 9.0]
    everything = spec.model_copy(update={"split": "all"})
    assert ev.read_evaluation_table(uri, everything, ["a"]).num_rows == 10


@pytest.mark.parametrize("kind", [pa.int64(), pa.int8(), pa.float32(), pa.bool_()])
def test_labels_of_each_type_become_0_and_1(kind: pa.DataType) -> None:
    table = pa.table({"y": pa.array([0, 1, 1]).cast(kind)})
    y = ev._labels(table, "y")
    assert y.dtype == np.float64 and y.tolist() == [0.0, 1.0, 1.0]
    chunked = pa.Table.from_batches([table.to_batches()[0]] * 2)
    assert ev._labels(chunked, "y").tolist() == [0.0, 1.0, 1.0] * 2


@pytest.mark.parametrize("values", [[0, 1, 2], [0, -1], [0.5, 1.0]])
def test_labels_other_than_0_and_1_are_refused(values: list[Any]) -> None:
    with pytest.raises(RegistryError) as info:
        ev._labels(pa.table({"y": values}), "y")
    assert str(info.value) == "label column 'y' of the evaluation table must hold 0/1"
    with pytest.raises(RegistryError) as info:
        ev._labels(pa.table({"y": [0, None, 1]}), "y")
    assert str(info.value) == "label column 'y' of the evaluation table has nulls"


# ------------------------------------------------------------------------------- digest
def test_digest_covers_features_then_labels_as_float32() -> None:
    x = np.array([[0.5, 1.0], [2.0, -3.0]])
    y = np.array([0.0, 1.0])
    expected = hashlib.sha256(np.float32(x).tobytes() + np.float32(y).tobytes()).hexdigest()
    assert ev._digest(x, y) == expected
    assert ev._digest(x.astype(np.float32), y.astype(np.int64)) == expected
    assert ev._digest(np.asfortranarray(x), y) == expected
    assert ev._digest(x.T.copy().T, y) == expected
    assert ev._digest(x, y) != ev._digest(x, 1.0 - y)
    assert ev._digest(x, y) != ev._digest(x + 1.0, y)
    assert ev._digest(x, y) != ev._digest(x[::-1], y)


# ---------------------------------------------------------------------------- ROC curve
Y8 = np.array([0, 1, 0, 1, 0, 0, 1, 0], dtype=float)
S8 = np.array([0.3, 0.3, 0.6, 0.8, 0.1, 0.7, 0.9, 0.5])


def test_roc_curve_of_a_small_case_with_a_tie() -> None:
    # by score: 0.9 T, 0.8 T, 0.7 F, 0.6 F, 0.5 F, 0.3 F and T (tied: one point), 0.1 F
    curve = ev.roc_curve(Y8, S8)
    assert curve == {
        "fpr": [0.0, 0.0, 0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
        "tpr": [0.0, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3, 1.0, 1.0],
        "threshold": [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.3, 0.1],
    }
    assert all(type(v) is float for values in curve.values() for v in values)


def test_roc_curve_thresholds_are_clipped_to_probabilities() -> None:
    curve = ev.roc_curve(np.array([1.0, 0.0, 1.0]), np.array([2.5, -1.0, 0.25]))
    assert curve["threshold"] == [1.0, 1.0, 0.25, 0.0]
    assert (curve["fpr"], curve["tpr"]) == ([0.0, 0.0, 0.0, 1.0], [0.0, 0.5, 1.0, 1.0])


def test_roc_curve_with_one_class_only_stays_finite() -> None:
    negatives = ev.roc_curve(np.zeros(2), np.array([0.2, 0.7]))
    assert negatives["fpr"] == [0.0, 0.5, 1.0] and negatives["tpr"] == [0.0, 0.0, 0.0]
    positives = ev.roc_curve(np.ones(2), np.array([0.2, 0.7]))
    assert positives["tpr"] == [0.0, 0.5, 1.0] and positives["fpr"] == [0.0, 0.0, 0.0]
    one = ev.roc_curve(np.array([1.0, 0.0, 0.0]), np.array([0.9, 0.4, 0.1]))
    assert one["tpr"] == [0.0, 1.0, 1.0, 1.0] and one["fpr"] == [0.0, 0.0, 0.5, 1.0]


def test_roc_curve_is_thinned_to_points_keeping_both_ends() -> None:
    seven = ev.roc_curve(Y8, S8, points=7)  # positions 0, 1, 2, 4, 5, 6, 7 of the eight
    assert seven["fpr"] == [0.0, 0.0, 0.0, 0.4, 0.6, 0.8, 1.0]
    assert seven["threshold"] == [1.0, 0.9, 0.8, 0.6, 0.5, 0.3, 0.1]
    three = ev.roc_curve(Y8, S8, points=3)  # positions 0, 4 (3.5 rounds to even), 7
    assert three == {"fpr": [0.0, 0.4, 1.0], "tpr": [0.0, 2 / 3, 1.0], "threshold": [1.0, 0.6, 0.1]}
    rng = np.random.default_rng(0)
    many = ev.roc_curve((rng.random(500) < 0.3).astype(float), rng.random(500))
    assert ev.ROC_POINTS == 51 and len(many["fpr"]) == len(many["tpr"]) == 51
    assert (many["fpr"][0], many["tpr"][0], many["fpr"][-1], many["tpr"][-1]) == (0, 0, 1, 1)
    assert many["fpr"] == sorted(many["fpr"]) and many["tpr"] == sorted(many["tpr"])


# ------------------------------------------------------------------------------ latency
def test_measure_latency_times_each_call_after_the_warm_up(
    graph: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops_kit.model.predictor import onnx_session

    session = Counting(onnx_session(graph))
    clock = Clock()
    monkeypatch.setattr(ev.time, "perf_counter_ns", clock)
    p50, p99 = ev.measure_latency(session, np.array([0.5, -1.0]), calls=100, warmup=7)
    monkeypatch.undo()
    # the timed calls last 1, 2, ..., 100 ms
    assert (p50, p99) == (50.5, float(np.percentile(np.arange(1.0, 101.0), 99)))
    assert clock.reads == 200 and len(session.calls) == 107
    for outputs, feed in session.calls:
        assert outputs == ["probability"] and list(feed) == ["features"]
        x = feed["features"]
        assert x.dtype == np.float32 and x.shape == (1, 2) and x.flags["C_CONTIGUOUS"]
        assert x.tolist() == [[0.5, -1.0]]
    session = Counting(onnx_session(graph))  # fifty warm-up calls by default, real clock
    p50, p99 = ev.measure_latency(session, np.array([[1.0, 2.0]]), calls=10)
    assert len(session.calls) == 60
    assert isinstance(p50, float) and isinstance(p99, float) and 0.0 <= p50 <= p99


# --------------------------------------------------------------------------- evaluation
def _expected(threshold: float = 0.5) -> dict[str, Any]:
    x = _standardised()
    confusion, f1 = ([[2, 3], [1, 2]], 0.5) if threshold == 0.5 else ([[3, 2], [1, 2]], 4 / 7)
    return {
        "roc_auc": pytest.approx(ROC_AUC),
        "pr_auc": pytest.approx(PR_AUC),
        "f1": pytest.approx(f1),
        "positive_rate": 0.375,
        "n": 8,
        "threshold": threshold,
        "confusion": confusion,
        "data_sha256": hashlib.sha256(x.tobytes() + np.float32(LABELS).tobytes()).hexdigest(),
    }


UNTIMED = {"latency_p50_ms": None, "latency_p99_ms": None, "latency_calls": 0}


def _figures(result: Evaluation) -> dict[str, Any]:
    return {k: v for k, v in result.to_dict().items() if not k.startswith("latency")}


def test_evaluate_onnx_scores_a_logistic_regression(graph: bytes, tmp_path: Path) -> None:
    result = ev.evaluate_onnx(graph, _preprocessor(), _table(), label_column="y")
    assert result.to_dict() == {**_expected(), **UNTIMED}
    probability = 1.0 / (1.0 + np.exp(-np.array(LOGITS)))
    assert result.roc["fpr"] == [0.0, 0.0, 0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert result.roc["tpr"] == pytest.approx([0.0, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 2 / 3, 1.0, 1.0])
    assert result.roc["threshold"][5] == 0.5
    assert result.roc["threshold"][1:] == pytest.approx(sorted(set(probability), reverse=True))
    path = tmp_path / "model.onnx"
    path.write_bytes(graph)
    for source in (path, str(path)):
        by_path = ev.evaluate_onnx(source, _preprocessor(), _table(), label_column="y")
        assert by_path == result


def test_evaluate_onnx_with_another_threshold_and_label(graph: bytes) -> None:
    table = _table("failed")
    result = ev.evaluate_onnx(graph, _preprocessor(), table, label_column="failed", threshold=0.6)
    assert _figures(result) == _expected(0.6)
    sk = pytest.importorskip("sklearn.metrics")
    p = 1.0 / (1.0 + np.exp(-np.array(LOGITS)))
    assert result.roc_auc == pytest.approx(sk.roc_auc_score(LABELS, p))
    assert result.pr_auc == pytest.approx(sk.average_precision_score(LABELS, p))
    assert result.f1 == pytest.approx(sk.f1_score(LABELS, p >= 0.6))
    with pytest.raises(RegistryError, match="label column 'label' of the evaluation table"):
        ev.evaluate_onnx(graph, _preprocessor(), table.append_column("label", pa.array([2] * 8)))


def spied_sessions(monkeypatch: pytest.MonkeyPatch) -> list[Counting]:
    """Every ONNX Runtime session made from now on, recording its calls."""
    from mlops_kit.model import predictor

    sessions: list[Counting] = []
    real = predictor.onnx_session
    spy = lambda model: sessions.append(Counting(real(model))) or sessions[-1]  # noqa: E731
    monkeypatch.setattr(predictor, "onnx_session", spy)
    return sessions


def test_evaluate_onnx_times_single_rows_when_asked(
    graph: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = spied_sessions(monkeypatch)
    clock = Clock()
    monkeypatch.setattr(ev.time, "perf_counter_ns", clock)
    result = ev.evaluate_onnx(
        graph, _preprocessor(), _table(), label_column="y", latency_calls=20, latency_warmup=3
    )
    ev.evaluate_onnx(graph, _preprocessor(), _table(), label_column="y", latency_calls=2)
    monkeypatch.undo()
    session, by_default = sessions
    assert len(session.calls) == 1 + 3 + 20 and len(by_default.calls) == 1 + 50 + 2
    assert session.calls[0][1]["features"].shape == (8, 2)
    assert session.calls[1][1]["features"].tolist() == [_standardised()[0].tolist()]
    assert result.latency_calls == 20 and result.latency_p50_ms == 10.5
    assert result.latency_p99_ms == float(np.percentile(np.arange(1.0, 21.0), 99))
    assert result.to_dict()["latency_p99_ms"] == result.latency_p99_ms


# ------------------------------------------------------------------------ Evaluation
def _evaluation(**roc: list[float]) -> Evaluation:
    return Evaluation(0.9, 0.6, 0.5, 0.25, 4, 0.5, [[2, 1], [0, 1]], "ab", roc=roc)


def test_to_dict_leaves_the_curve_out_unless_asked() -> None:
    plain = {
        "roc_auc": 0.9,
        "pr_auc": 0.6,
        "f1": 0.5,
        "positive_rate": 0.25,
        "n": 4,
        "threshold": 0.5,
        "confusion": [[2, 1], [0, 1]],
        "data_sha256": "ab",
        "latency_p50_ms": None,
        "latency_p99_ms": None,
        "latency_calls": 0,
    }
    result = _evaluation(fpr=[0.0, 1.0], tpr=[0.0, 1.0], threshold=[1.0, 0.0])
    assert result.to_dict() == result.to_dict(with_curve=False) == plain
    curve = {"fpr": [0.0, 1.0], "tpr": [0.0, 1.0], "threshold": [1.0, 0.0]}
    assert result.to_dict(with_curve=True) == {**plain, "roc": curve}
    assert json.loads(json.dumps(result.to_dict(with_curve=True)))["roc"] == curve
    assert _evaluation().to_dict(with_curve=True)["roc"] == {}


def test_metric_reads_a_figure_by_name() -> None:
    result = _evaluation()
    assert [result.metric(m) for m in ("roc_auc", "pr_auc", "f1")] == [0.9, 0.6, 0.5]
    assert all(type(result.metric(m)) is float for m in ("roc_auc", "pr_auc", "f1"))
    for name in ("accuracy", "to_dict", "n"):
        with pytest.raises(PolicyError) as info:
            result.metric(name)
        assert str(info.value) == (
            f"no metric {name!r} to compare: use one of roc_auc, pr_auc, f1 "
            "(champion.metric in the promotion policy)"
        )

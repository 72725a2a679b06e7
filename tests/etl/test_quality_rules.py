"""The quality rules driven directly on small Arrow tables: which rows each rule rejects,
with which reason, field and message; the first failing rule names a row's reason; the
uniqueness check within a batch and against rows already loaded."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest

from mlops_kit.data.spec import default_spec
from mlops_kit.etl import quality as q

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
TS = pa.timestamp("us", tz="UTC")


def _table(**cols: list) -> pa.Table:
    n = len(next(iter(cols.values())))
    base = {
        "device_id": [f"d{i}" for i in range(n)],
        "ts": [NOW - timedelta(minutes=i) for i in range(n)],
    }
    base.update(cols)
    arrays = {k: pa.array(v, TS) if k == "ts" else pa.array(v) for k, v in base.items()}
    return pa.table(arrays)


def _run(table: pa.Table, *rules: q._Rule, **kw: object) -> q.QualityResult:
    ruleset = q.RuleSet(rules=list(rules), unique_key=["device_id", "ts"])
    return q.check(table, ruleset, now=NOW, **kw)  # type: ignore[arg-type]


def _rejects(res: q.QualityResult) -> list[tuple[str, str, str, str]]:
    qt = res.quarantined
    return list(
        zip(
            qt["device_id"].to_pylist(),
            qt["reason"].to_pylist(),
            qt["field"].to_pylist(),
            qt["detail"].to_pylist(),
            strict=True,
        )
    )


def _kept(res: q.QualityResult) -> list[str]:
    return res.valid["device_id"].to_pylist()


def test_not_null_names_the_column_and_keeps_the_others() -> None:
    t = _table(a=[1.0, None, 3.0], b=["x", "y", None])
    res = _run(t, q.NotNull(columns=["a", "b"]))
    assert _kept(res) == ["d0"]
    assert _rejects(res) == [
        ("d1", "null", "a", "a is required: the record has no value for it"),
        ("d2", "null", "b", "b is required: the record has no value for it"),
    ]
    assert res.reasons == {"null": 2}
    assert res.valid.schema == t.schema


def test_not_null_on_an_absent_column_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"rule not_null needs column\(s\) \['zz'\]"):
        _run(_table(a=[1.0]), q.NotNull(columns=["a", "zz"]))


@pytest.mark.parametrize("dtype", [pa.float64(), pa.float32(), pa.int64()])
def test_range_is_inclusive_and_nulls_pass(dtype: pa.DataType) -> None:
    t = _table(v=pa.array([-1, 0, 5, 10, 11, None], dtype))
    res = _run(t, q.Range(column="v", min=0, max=10, unit="kPa"))
    assert _kept(res) == ["d1", "d2", "d3", "d5"]
    detail = "v must be within [0.0, 10.0] kPa"
    assert _rejects(res) == [
        ("d0", "out_of_range", "v", detail),
        ("d4", "out_of_range", "v", detail),
    ]


@pytest.mark.parametrize(
    ("lo", "hi", "kept"),
    [(None, 10, ["d0", "d1", "d2", "d3"]), (0, None, ["d1", "d2", "d3", "d4"]), (None, None, None)],
)
def test_range_with_one_bound(lo: float | None, hi: float | None, kept: list[str] | None) -> None:
    t = _table(v=[-1.0, 0.0, 5.0, 10.0, 11.0])
    res = _run(t, q.Range(column="v", min=lo, max=hi))
    assert _kept(res) == (kept or ["d0", "d1", "d2", "d3", "d4"])
    if lo is not None or hi is not None:
        assert res.quarantined["detail"][0].as_py() == (
            f"v must be within [{lo if lo is None else float(lo)}, "
            f"{hi if hi is None else float(hi)}]"
        )


def test_range_over_chunks_slices_and_empty_chunks() -> None:
    big = pa.array([1.0, 2.0, 99.0, 3.0], pa.float32())
    col = pa.chunked_array(
        [big.slice(3), pa.array([], pa.float32()), pa.array([4.0, 5.0], pa.float32())]
    )
    t = pa.table({"device_id": ["a", "b", "c"], "ts": pa.array([NOW] * 3, TS), "v": col})
    # the out-of-range value lies before the slice's offset: every row is kept
    assert _kept(_run(t, q.Range(column="v", min=0, max=10))) == ["a", "b", "c"]
    col = pa.chunked_array([big.slice(1, 2), pa.array([4.0], pa.float32())])
    t = pa.table({"device_id": ["a", "b", "c"], "ts": pa.array([NOW] * 3, TS), "v": col})
    assert _kept(_run(t, q.Range(column="v", min=0, max=10))) == ["a", "c"]
    lo = pa.chunked_array([pa.array([5.0, -3.0])])
    t = pa.table({"device_id": ["a", "b"], "ts": pa.array([NOW] * 2, TS), "v": lo})
    assert _kept(_run(t, q.Range(column="v", min=0, max=10))) == ["a"]


def test_range_with_nan_or_only_nulls() -> None:
    t = _table(v=[float("nan"), 50.0, 5.0])
    assert _kept(_run(t, q.Range(column="v", min=0, max=10))) == ["d0", "d2"]
    t = _table(v=pa.array([None, None], pa.float64()))
    assert _kept(_run(t, q.Range(column="v", min=0, max=10))) == ["d0", "d1"]


def test_rules_on_an_absent_optional_column_pass() -> None:
    t = _table(a=[1.0, 2.0])
    res = _run(
        t,
        q.Range(column="zz", min=0, max=1),
        q.AcceptedValues(column="zz", values=["x"]),
        q.Pattern(column="zz", pattern="^x$"),
    )
    assert _kept(res) == ["d0", "d1"] and res.quarantined.num_rows == 0


def test_accepted_values() -> None:
    t = _table(u=["C", "F", "X", None, "k"])
    res = _run(t, q.AcceptedValues(column="u", values=["C", "F", "K"]))
    assert _kept(res) == ["d0", "d1", "d3"]
    detail = "u must be one of ['C', 'F', 'K']"
    assert _rejects(res) == [
        ("d2", "unaccepted_value", "u", detail),
        ("d4", "unaccepted_value", "u", detail),
    ]
    ints = _run(_table(n=[1, 2, 3]), q.AcceptedValues(column="n", values=[1, 3]))
    assert _kept(ints) == ["d0", "d2"]
    nulls = _run(
        _table(u=pa.array([None, None], pa.string())), q.AcceptedValues(column="u", values=["C"])
    )
    assert _kept(nulls) == ["d0", "d1"]


def test_freshness_future_and_stale() -> None:
    ts = [
        NOW,
        NOW + timedelta(seconds=300),  # at the skew: kept
        NOW + timedelta(seconds=301),
        NOW - timedelta(days=10),  # at the age: kept
        NOW - timedelta(days=10, seconds=1),
        None,
    ]
    t = pa.table({"device_id": [f"d{i}" for i in range(6)], "ts": pa.array(ts, TS)})
    res = _run(t, q.Freshness(column="ts", max_future_skew_s=300, max_age_days=10))
    assert _kept(res) == ["d0", "d1", "d3", "d5"]
    assert _rejects(res) == [
        ("d2", "future_timestamp", "ts", "ts is more than 300s in the future (clock skew?)"),
        ("d4", "stale_timestamp", "ts", "ts is older than 10 days"),
    ]
    fresh = pa.table({"device_id": ["a"], "ts": pa.array([NOW], TS)})
    assert _kept(_run(fresh, q.Freshness(column="ts"))) == ["a"]


def test_freshness_defaults() -> None:
    rule = q.Freshness(column="ts")
    assert (rule.max_future_skew_s, rule.max_age_days) == (300, 3650)
    ts = [NOW + timedelta(seconds=299), NOW + timedelta(seconds=301), NOW - timedelta(days=3651)]
    t = pa.table({"device_id": ["a", "b", "c"], "ts": pa.array(ts, TS)})
    assert [r[1] for r in _rejects(_run(t, rule))] == ["future_timestamp", "stale_timestamp"]


def test_referential() -> None:
    t = _table(a=[1, 2, 3, 4])
    t = t.set_column(0, "device_id", pa.array(["d0", "zz", None, "d3"]))
    rule = q.Referential(column="device_id", entity="device")
    res = _run(t, rule, references={"devices": pa.array(["d0", "d3"])})
    assert res.valid["a"].to_pylist() == [1, 3, 4]  # a null passes (pair with not_null)
    assert _rejects(res) == [
        (
            "zz",
            "unknown_entity",
            "device_id",
            "device_id is not a known device: add it to the registry of known ids first "
            "(mlops-kit data register-devices)",
        )
    ]
    assert (rule.reference, q.Referential(column="x").entity) == ("devices", "entity")


def test_referential_needs_its_reference() -> None:
    rule = q.Referential(column="device_id", reference="fleet")
    with pytest.raises(ValueError) as err:
        _run(_table(a=[1]), rule)
    assert str(err.value) == (
        "rule referential on 'device_id' needs the reference table 'fleet': "
        "pass references={'fleet': ...}"
    )


def test_pattern() -> None:
    t = _table(site=["ABC-1", "abc-1", None, "XYZ-22", "ABC-"])
    res = _run(t, q.Pattern(column="site", pattern="^[A-Z]{3}-[0-9]+$"))
    assert _kept(res) == ["d0", "d2", "d3"]
    detail = "site must match ^[A-Z]{3}-[0-9]+$"
    assert _rejects(res) == [
        ("d1", "pattern_mismatch", "site", detail),
        ("d4", "pattern_mismatch", "site", detail),
    ]
    nulls = _table(site=pa.array([None], pa.string()))
    assert _kept(_run(nulls, q.Pattern(column="site", pattern="^x$"))) == ["d0"]


def test_the_first_failing_rule_names_the_reason() -> None:
    t = _table(a=[None, 50.0, 50.0, 1.0], u=["X", "X", "C", "X"])
    rules = (
        q.NotNull(columns=["a"]),
        q.Range(column="a", max=10),
        q.AcceptedValues(column="u", values=["C"]),
    )
    res = _run(t, *rules)
    assert [(r[0], r[1]) for r in _rejects(res)] == [
        ("d0", "null"),
        ("d1", "out_of_range"),
        ("d2", "out_of_range"),
        ("d3", "unaccepted_value"),
    ]
    assert res.reasons == {"null": 1, "out_of_range": 2, "unaccepted_value": 1}
    flipped = _run(t, rules[2], rules[1], rules[0])
    assert [r[1] for r in _rejects(flipped)] == ["unaccepted_value"] * 2 + ["out_of_range"] + [
        "unaccepted_value"
    ]
    assert flipped.valid.num_rows == 0


def test_a_clean_batch_has_an_empty_quarantine_with_the_reason_columns() -> None:
    t = _table(a=[1.0, 2.0])
    res = _run(t, q.NotNull(columns=["a"]), q.Range(column="a", min=0, max=5))
    assert res.valid.equals(t)
    assert res.quarantined.num_rows == 0
    assert res.quarantined.schema.names == [*t.schema.names, "reason", "field", "detail"]
    assert res.reasons == {} and res.duplicates_dropped == 0
    empty = _run(t.slice(0, 0), q.Range(column="a", min=5, max=6))
    assert empty.valid.num_rows == 0 and empty.quarantined.num_rows == 0


def _keyed(ids: list[str], ts: list[int], **cols: list) -> pa.Table:
    when = [NOW - timedelta(minutes=m) for m in ts]
    return pa.table(
        {"device_id": ids, "ts": pa.array(when, TS), **{k: pa.array(v) for k, v in cols.items()}}
    )


def test_an_exact_copy_is_dropped_and_a_conflict_quarantined() -> None:
    t = _keyed(["a", "b", "a", "a", "c"], [1, 1, 1, 1, 1], v=[1.0, 2.0, 1.0, 9.0, 3.0])
    res = _run(t)
    assert res.valid.to_pydict()["v"] == [1.0, 2.0, 3.0]
    assert res.duplicates_dropped == 1
    assert _rejects(res) == [
        (
            "a",
            "duplicate_key",
            "device_id,ts",
            "another record with the same device_id and ts and different values was kept",
        )
    ]
    assert res.quarantined["v"].to_pylist() == [9.0]
    assert res.reasons == {"duplicate_key": 1}


def test_rows_sorted_by_the_key_in_either_order_have_no_duplicates() -> None:
    by_device = _keyed(["a", "a", "b", "b"], [3, 2, 3, 2], v=[1.0, 2.0, 3.0, 4.0])
    by_time = _keyed(["a", "b", "a", "b"], [3, 3, 2, 2], v=[1.0, 2.0, 3.0, 4.0])
    for t in (by_device, by_time):
        assert q._strictly_sorted(t, ["device_id", "ts"])
        res = _run(t)
        assert res.valid.equals(t) and res.duplicates_dropped == 0
    repeated = _keyed(["a", "a", "b"], [3, 3, 2], v=[1.0, 1.0, 2.0])
    assert not q._strictly_sorted(repeated, ["device_id", "ts"])
    assert _run(repeated).duplicates_dropped == 1
    assert not q._strictly_sorted(repeated, ["device_id"])  # not a two-column key
    assert q._strictly_sorted(repeated.slice(0, 1), ["device_id", "ts"])
    with_null = _keyed(["a", None], [2, 1], v=[1.0, 2.0])  # type: ignore[list-item]
    assert not q._strictly_sorted(with_null, ["device_id", "ts"])


def test_uniqueness_against_rows_already_loaded() -> None:
    loaded = _keyed(["a", "b"], [1, 1], v=[1.0, 2.0])
    batch = _keyed(["a", "b", "c", "c"], [1, 1, 1, 1], v=[1.0, 5.0, 3.0, 3.0])
    res = _run(batch, existing_keys=loaded)
    assert res.valid["device_id"].to_pylist() == ["c"]
    assert res.duplicates_dropped == 2  # a (already loaded) and the second c
    assert _rejects(res)[0][:2] == ("b", "duplicate_key")
    # a sorted batch is still checked against what was loaded
    sorted_batch = _keyed(["a", "z"], [1, 1], v=[7.0, 1.0])
    res = _run(sorted_batch, existing_keys=loaded)
    assert res.valid["device_id"].to_pylist() == ["z"] and res.quarantined["v"].to_pylist() == [7.0]
    none_loaded = _run(sorted_batch, existing_keys=loaded.slice(0, 0))
    assert none_loaded.valid.equals(sorted_batch)


def test_unit_fields_and_internal_columns_do_not_make_records_differ() -> None:
    t = _keyed(
        ["a", "a", "a"], [1, 1, 1], v=[1.0, 1.0, 1.0], v_unit=["C", "K", "C"], _src=["x", "y", "z"]
    )
    ruleset = q.RuleSet(rules=[], unique_key=["device_id", "ts"], unit_fields=["v_unit"])
    res = q.check(t, ruleset, now=NOW)
    assert res.valid.num_rows == 1 and res.duplicates_dropped == 2
    strict = q.check(t, ruleset.model_copy(update={"unit_fields": []}), now=NOW)
    assert strict.valid.num_rows == 1 and strict.duplicates_dropped == 1
    assert strict.quarantined["v_unit"].to_pylist() == ["K"]


def test_nulls_compare_equal_in_the_duplicate_check() -> None:
    t = _keyed(["a", "a", "a"], [1, 1, 1], v=[None, None, 1.0])
    res = _run(t)
    assert res.duplicates_dropped == 1 and res.quarantined["v"].to_pylist() == [1.0]


def test_no_key_means_no_uniqueness_check() -> None:
    t = _keyed(["a", "a"], [1, 1], v=[1.0, 2.0])
    res = q.check(t, q.RuleSet(rules=[], unique_key=[]), now=NOW)
    assert res.valid.equals(t)


def test_keyed_defaults_from_the_spec() -> None:
    spec = default_spec()
    bare = q.RuleSet(rules=[])
    keyed = bare.keyed(spec)
    assert keyed.unique_key == ["device_id", "ts"] and keyed.unit_fields == ["temperature_unit"]
    own = q.RuleSet(rules=[], unique_key=["x"], unit_fields=["y"])
    assert own.keyed(spec) is own
    assert q.check(_keyed(["a", "a"], [1, 1], v=[1.0, 2.0]), bare, now=NOW).reasons == {
        "duplicate_key": 1
    }


def test_default_rules_follow_the_spec_in_order() -> None:
    rules = q.default_rules(max_future_skew_s=5, max_age_days=7)
    kinds = [r.kind for r in rules.rules]
    assert kinds == ["not_null", "accepted_values", *["range"] * 7, "freshness", "referential"]
    assert rules.rules[0].columns[:2] == ["device_id", "ts"]  # type: ignore[union-attr]
    assert rules.rules[1].column == "temperature_unit"  # type: ignore[union-attr]
    fresh = rules.rules[-2]
    assert (fresh.max_future_skew_s, fresh.max_age_days) == (5, 7)  # type: ignore[union-attr]
    spec_fresh = q.default_rules().rules[-2]
    assert (spec_fresh.max_future_skew_s, spec_fresh.max_age_days) == (300, 3650)  # type: ignore[union-attr]
    assert rules.rules[-1] == q.Referential(column="device_id", entity="device")
    assert rules.unique_key == ["device_id", "ts"] and rules.unit_fields == ["temperature_unit"]
    temp = rules.rules[2]
    assert (temp.column, temp.min, temp.max, temp.unit) == ("temperature", -40.0, 150.0, "C")  # type: ignore[union-attr]


def test_timings_add_up_per_stage() -> None:
    timings: dict[str, float] = {"rules": 1.0}
    _run(_keyed(["a", "a"], [1, 1], v=[1.0, 9.0]), q.Range(column="v", max=5), timings=timings)
    assert set(timings) == {"rules", "split", "unique"}
    assert timings["rules"] > 1.0 and timings["split"] > 0 and timings["unique"] > 0


def test_a_rule_set_is_data() -> None:
    rs = q.RuleSet.model_validate(
        {
            "rules": [
                {"kind": "range", "column": "v", "max": 1},
                {"kind": "pattern", "column": "s", "pattern": "x"},
            ]
        }
    )
    assert isinstance(rs.rules[0], q.Range) and isinstance(rs.rules[1], q.Pattern)
    with pytest.raises(ValueError, match="extra"):
        q.RuleSet.model_validate({"rules": [{"kind": "range", "column": "v", "maximum": 1}]})


def test_default_rules_of_a_spec_with_every_column_fact() -> None:
    from mlops_kit.data.spec import load_spec, spec_from_dict

    d = load_spec("machine_telemetry").model_dump(mode="json", exclude_none=True)
    d["entity"]["known_ids"] = {"source": "values", "values": ["M1", "M2"]}
    d["columns"]["current"].pop("max")  # a floor only
    d["columns"]["temperature"].pop("min")  # a ceiling only
    d["columns"]["torque"].pop("min")
    d["columns"]["torque"].pop("max")  # no range at all
    d["columns"]["serial"] = {"type": "string", "nullable": True, "pattern": "^S[0-9]+$"}
    spec = spec_from_dict(d)
    rules = q.default_rules(spec)
    assert [r.model_dump(exclude_none=True) for r in rules.rules] == [
        {
            "kind": "not_null",
            "columns": [
                "machine_id",
                "recorded_at",
                "temperature",
                "torque",
                "cycle_count",
                "line",
            ],
        },
        {"kind": "accepted_values", "column": "torque_unit", "values": ["N*m", "lbf*ft"]},
        {"kind": "range", "column": "temperature", "max": 120.0, "unit": "C"},
        {"kind": "range", "column": "current", "min": 0.0, "unit": "A"},
        {"kind": "range", "column": "cycle_count", "min": 0.0, "max": 100000000.0},
        {"kind": "range", "column": "fault", "min": 0.0, "max": 1.0},
        {"kind": "accepted_values", "column": "line", "values": ["A", "B", "C"]},
        {"kind": "pattern", "column": "serial", "pattern": "^S[0-9]+$"},
        {
            "kind": "freshness",
            "column": "recorded_at",
            "max_future_skew_s": 60,
            "max_age_days": 365,
        },
        {"kind": "accepted_values", "column": "machine_id", "values": ["M1", "M2"]},
    ]
    assert rules.unique_key == ["machine_id", "recorded_at"] and rules.unit_fields == [
        "torque_unit"
    ]
    d["entity"]["known_ids"] = {"source": "none", "values": []}
    assert q.default_rules(spec_from_dict(d)).rules[-1].kind == "freshness"


def test_range_on_floats_past_a_chunk_with_nan_or_an_empty_chunk() -> None:
    nan = pa.array([float("nan"), 1.0])
    for first in (nan, pa.array([], pa.float64()), pa.array([2.0, 3.0])):
        col = pa.chunked_array([first, pa.array([4.0, 99.0])])
        n = len(col)
        t = pa.table(
            {"device_id": [f"d{i}" for i in range(n)], "ts": pa.array([NOW] * n, TS), "v": col}
        )
        res = _run(t, q.Range(column="v", min=0, max=10))
        assert res.quarantined["v"].to_pylist() == [99.0]
    high_nan = pa.chunked_array([pa.array([1.0, float("nan")]), pa.array([-5.0])])
    t = pa.table({"device_id": ["a", "b", "c"], "ts": pa.array([NOW] * 3, TS), "v": high_nan})
    assert _run(t, q.Range(column="v", min=0, max=10)).quarantined["device_id"].to_pylist() == ["c"]
    assert q._bounds(pa.chunked_array([pa.array([], pa.float64())])) is None
    assert q._bounds(pa.chunked_array([pa.array([3.0, -1.0])])) == (-1.0, 3.0)
    # the fast path reads only the chunks' own values, past empty chunks too
    after_empty = pa.chunked_array([pa.array([], pa.float64()), pa.array([4.0, 9.0])])
    assert q._bounds(after_empty) == (4.0, 9.0)
    head = pa.array([1.0, 2.0, 99.0]).slice(0, 2)
    assert q._bounds(pa.chunked_array([head])) == (1.0, 2.0)


@pytest.mark.parametrize(
    "passing",
    [
        q.Range(column="absent", min=0, max=1),  # an absent optional column
        q.Range(column="a", min=0, max=100),  # every value within bounds
        q.Range(column="a"),  # no bounds
        q.AcceptedValues(column="nulls", values=["x"]),  # only nulls
        q.Pattern(column="nulls", pattern="^x$"),
    ],
)
def test_a_rule_every_row_passes_does_not_stop_the_rules_after_it(passing: q._Rule) -> None:
    t = _table(a=[1.0, 2.0, None], nulls=pa.array([None, None, None], pa.string()))
    res = _run(t, passing, q.NotNull(columns=["a"]))
    assert _kept(res) == ["d0", "d1"] and [r[1] for r in _rejects(res)] == ["null"]


def test_two_rows_or_a_one_column_key_are_still_checked_for_duplicates() -> None:
    pair = _keyed(["a", "a"], [1, 1], v=[1.0, 2.0])
    assert _run(pair).reasons == {"duplicate_key": 1}
    three = _keyed(["a", "b", "b"], [2, 1, 1], v=[1.0, 2.0, 2.0])
    assert _run(three).duplicates_dropped == 1
    by_id = _keyed(["a", "a"], [2, 1], v=[1.0, 1.0])
    res = q.check(by_id, q.RuleSet(rules=[], unique_key=["device_id"]), now=NOW)
    assert res.valid.num_rows == 1 and res.reasons == {"duplicate_key": 1}  # ts differs


def test_nothing_to_deduplicate_drops_nothing() -> None:
    t = _keyed(["a", "a"], [1, 1], v=[1.0, 1.0])
    assert q.check(t, q.RuleSet(rules=[], unique_key=[]), now=NOW).duplicates_dropped == 0
    assert _run(t.slice(0, 0)).duplicates_dropped == 0
    loaded = _keyed(["z"], [5], v=[0.0])
    res = _run(_keyed(["a", "b"], [1, 1], v=[1.0, 2.0]), existing_keys=loaded)
    assert res.duplicates_dropped == 0 and res.valid.num_rows == 2


def test_a_single_loaded_row_is_checked_against() -> None:
    loaded = _keyed(["a"], [1], v=[1.0])
    res = _run(_keyed(["a", "b"], [1, 1], v=[2.0, 3.0]), existing_keys=loaded)
    assert res.valid["device_id"].to_pylist() == ["b"] and res.reasons == {"duplicate_key": 1}


def test_timings_accumulate_over_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter(range(100))
    monkeypatch.setattr(q.time, "perf_counter", lambda: float(next(ticks)))
    timings: dict[str, float] = {"rules": 10.0}
    t = _keyed(["a", "a"], [1, 1], v=[1.0, 9.0])
    _run(t, q.Range(column="v", max=5), timings=timings)
    assert timings == {"rules": 11.0, "split": 1.0, "unique": 1.0}
    _run(t, q.Range(column="v", max=5), timings=timings)
    assert timings == {"rules": 12.0, "split": 2.0, "unique": 2.0}
    fresh: dict[str, float] = {}
    _run(t, q.Range(column="v", max=5), timings=fresh)
    assert fresh == {"rules": 1.0, "split": 1.0, "unique": 1.0}

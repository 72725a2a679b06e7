"""Feast's online wire formats in plain Python (mlops_kit.features.wire) against Feast's own
functions and protobuf messages, and the online readers without Feast imported."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from feast.infra.key_encoding_utils import serialize_entity_key as feast_serialize
from feast.infra.online_stores.helpers import compute_entity_id
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from google.protobuf.message import DecodeError
from hypothesis import example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from mlops_kit.config import load_settings
from mlops_kit.features import wire
from mlops_kit.features.errors import EntityKeyError, OnlineValueError
from mlops_kit.features.store import FeatureClient

from .conftest import T0, feature_table, write_features

REPO = Path(__file__).resolve().parents[2]

WIRE = hypothesis_settings(max_examples=300, derandomize=True, database=None, deadline=None)
"""Pure functions, so many examples; derandomized (a fixed seed per test)."""

INT32 = st.integers(-(1 << 31), (1 << 31) - 1)
INT64 = st.integers(-(1 << 63), (1 << 63) - 1)
KEY_VALUES = {
    "string_val": st.text(),
    "bytes_val": st.binary(),
    "int32_val": INT32,
    "int64_val": INT64,
    "unix_timestamp_val": INT64,
}
TEXT_KINDS = ("string_val", "json_val", "uuid_val", "time_uuid_val", "decimal_val")
SCALARS: dict[str, st.SearchStrategy[Any]] = {
    **{kind: st.text() for kind in TEXT_KINDS},
    "bytes_val": st.binary(),
    "int32_val": INT32,
    "int64_val": INT64,
    "unix_timestamp_val": INT64,
    "double_val": st.floats(),
    "float_val": st.floats(width=32),
    "bool_val": st.booleans(),
    "null_val": st.just(0),
}
LISTS: dict[str, st.SearchStrategy[Any]] = {
    "bytes_list_val": st.binary(),
    "string_list_val": st.text(),
    "int32_list_val": INT32,
    "int64_list_val": INT64,
    "double_list_val": st.floats(),
    "float_list_val": st.floats(width=32),
    "bool_list_val": st.booleans(),
    "unix_timestamp_list_val": INT64,
    "json_list_val": st.text(),
    "uuid_list_val": st.text(),
    "time_uuid_list_val": st.text(),
    "decimal_list_val": st.text(),
}


def _feast_key(join_keys: list[str], kinds: list[str], values: list[Any]) -> EntityKey:
    return EntityKey(
        join_keys=join_keys,
        entity_values=[Value(**{k: v}) for k, v in zip(kinds, values, strict=True)],
    )


def _feast_value(blob: bytes) -> Any:
    """What Feast's protobuf reads from ``blob``: the set field's value."""
    proto = Value.FromString(blob)
    kind = proto.WhichOneof("val")
    if kind is None or kind == "null_val":
        return None
    got = getattr(proto, kind)
    return list(got.val) if kind in LISTS else got


def _same(a: Any, b: Any) -> bool:
    """Equal values of equal types, NaN equal to NaN (bit for bit is not promised)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


# ---------------------------------------------------------------- entity keys


@WIRE
@given(value=st.text())
@example(value="")
@example(value="device-0001")
@example(value="\U0001f600 é \x00 ﬁ")
def test_a_string_key_is_feasts(value: str) -> None:
    ours = wire.serialize_entity_key(["device_id"], [value])
    assert ours == feast_serialize(_feast_key(["device_id"], ["string_val"], [value]))
    assert wire.entity_id(ours) == compute_entity_id(
        _feast_key(["device_id"], ["string_val"], [value]), entity_key_serialization_version=3
    )


@WIRE
@given(kind=st.sampled_from(sorted(KEY_VALUES)), data=st.data())
def test_every_key_kind_is_feasts(kind: str, data: st.DataObject) -> None:
    value = data.draw(KEY_VALUES[kind])
    key = _feast_key(["k"], [kind], [value])
    ours = wire.serialize_entity_key(["k"], [value], [kind])
    assert ours == feast_serialize(key, entity_key_serialization_version=3)
    assert wire.entity_id(ours) == compute_entity_id(key, entity_key_serialization_version=3)


@pytest.mark.parametrize("value", [-(1 << 63), (1 << 63) - 1, -1, 0, 1])
@pytest.mark.parametrize("kind", ["int64_val", "unix_timestamp_val"])
def test_int64_extremes_are_feasts(kind: str, value: int) -> None:
    assert wire.serialize_entity_key(["k"], [value], [kind]) == feast_serialize(
        _feast_key(["k"], [kind], [value])
    )


@st.composite
def _entity_keys(draw: st.DrawFn) -> tuple[list[str], list[str], list[Any]]:
    join_keys = draw(st.lists(st.text(), min_size=0, max_size=4, unique=True))
    kinds = [draw(st.sampled_from(sorted(KEY_VALUES))) for _ in join_keys]
    values = [draw(KEY_VALUES[k]) for k in kinds]
    return join_keys, kinds, values


@WIRE
@given(key=_entity_keys())
@example(key=(["b", "a", "B", "é", ""], ["string_val"] * 5, ["1", "2", "3", "4", "5"]))
def test_several_join_keys_are_sorted_as_feast_sorts_them(
    key: tuple[list[str], list[str], list[Any]],
) -> None:
    join_keys, kinds, values = key
    ours = wire.serialize_entity_key(join_keys, values, kinds)
    feast_key = _feast_key(join_keys, kinds, values)
    assert ours == feast_serialize(feast_key)
    assert wire.entity_id(ours) == compute_entity_id(feast_key, entity_key_serialization_version=3)


def test_key_kinds_default_from_the_python_type() -> None:
    assert wire.serialize_entity_key(["a", "b", "c"], ["x", b"y", -5]) == feast_serialize(
        _feast_key(["a", "b", "c"], ["string_val", "bytes_val", "int64_val"], ["x", b"y", -5])
    )


@pytest.mark.parametrize(
    ("join_keys", "values", "kinds", "match"),
    [
        (["k"], [1 << 31], ["int32_val"], "outside the range of int32_val"),
        (["k"], [-(1 << 63) - 1], ["int64_val"], "outside the range of int64_val"),
        (["k"], [1 << 63], None, "outside the range of int64_val"),
        (["k"], [True], None, "type bool"),
        (["k"], [1.5], None, "type float"),
        (["k"], [None], None, "type NoneType"),
        (["k"], ["7"], ["int64_val"], "must be an int, got str"),
        (["k"], [7], ["string_val"], "must be a str, got int"),
        (["k"], [7], ["bytes_val"], "must be bytes, got int"),
        (["k"], [1.5], ["double_val"], "kind 'double_val' cannot be part"),
        (["k"], ["\ud800"], None, "not valid Unicode"),
        (["k", "k"], ["a", "b"], None, "name one key twice"),
        (["a", "b"], ["x"], None, "2 join keys, 1 values"),
        (["a"], ["x"], ["string_val", "string_val"], "1 join keys, 1 values, 2 kinds"),
    ],
)
def test_a_key_feast_cannot_encode_is_refused_naming_it(
    join_keys: list[str], values: list[Any], kinds: list[str] | None, match: str
) -> None:
    with pytest.raises(EntityKeyError, match=match) as err:
        wire.serialize_entity_key(join_keys, values, kinds)
    assert err.value.code == "FEATURE_ENTITY_KEY_INVALID"


# ---------------------------------------------------------------- values


@WIRE
@given(kind=st.sampled_from(sorted(SCALARS)), data=st.data())
def test_every_scalar_kind_decodes_as_protobuf_reads_it(kind: str, data: st.DataObject) -> None:
    blob = Value(**{kind: data.draw(SCALARS[kind])}).SerializeToString()
    assert _same(wire.decode_value(blob), _feast_value(blob))


@WIRE
@given(kind=st.sampled_from(sorted(LISTS)), data=st.data())
def test_every_list_kind_decodes_as_protobuf_reads_it(kind: str, data: st.DataObject) -> None:
    items = data.draw(st.lists(LISTS[kind], max_size=6))
    blob = Value(**{kind: {"val": items}}).SerializeToString()
    assert _same(wire.decode_value(blob), _feast_value(blob))


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("int32_val", -(1 << 31)),
        ("int32_val", -1),
        ("int64_val", -(1 << 63)),
        ("int64_val", (1 << 63) - 1),
        ("double_val", math.inf),
        ("double_val", -0.0),
        ("float_val", 3.4028234663852886e38),
        ("float_val", 1e-45),
        ("bool_val", False),
        ("string_val", ""),
        ("bytes_val", b""),
        ("int64_val", 0),
    ],
)
def test_edge_values_decode_as_protobuf_reads_them(kind: str, value: Any) -> None:
    blob = Value(**{kind: value}).SerializeToString()
    got = wire.decode_value(blob)
    assert _same(got, _feast_value(blob))
    assert math.copysign(1, got) == math.copysign(1, value) if kind == "double_val" else True


def test_an_unset_value_is_none() -> None:
    assert wire.decode_value(b"") is None is _feast_value(b"")


def test_groups_as_deep_as_protobuf_allows_are_skipped() -> None:
    blob = b"\x4b" * 100 + b"\x4c" * 100 + Value(int64_val=7).SerializeToString()
    assert wire.decode_value(blob) == _feast_value(blob) == 7


@pytest.mark.parametrize("kind", ["int32_val", "int64_val", "unix_timestamp_val", "bool_val"])
@pytest.mark.parametrize(
    "raw", [2, (1 << 31), (1 << 32) - 1, (1 << 32) + 5, (1 << 40), (1 << 63), (1 << 64) - 1]
)
def test_any_varint_reads_as_protobuf_reads_it(kind: str, raw: int) -> None:
    """A varint wider than its field (int32 from a 64-bit varint, bool from 2) reads as
    protobuf reads it: the low bits, two's complement; any non-zero bool is true."""
    number = Value.DESCRIPTOR.fields_by_name[kind].number
    blob = _tag(number, 0) + wire_varint(raw)
    assert _same(wire.decode_value(blob), _feast_value(blob))


def test_every_value_field_is_read_or_refused_by_name() -> None:
    """Each field of Feast's ``Value`` is decoded or refused naming its kind, so a field
    a Feast upgrade adds shows up here."""
    kinds = [f.name for f in Value.DESCRIPTOR.oneofs_by_name["val"].fields]
    assert set(wire.VALUE_KINDS) <= set(kinds)
    for kind in kinds:
        if kind in wire.VALUE_KINDS:
            continue
        proto = Value()
        getattr(proto, kind).SetInParent()
        with pytest.raises(OnlineValueError, match=f"'temp' is stored as {kind}"):
            wire.decode_value(proto.SerializeToString(), "temp")


@pytest.mark.parametrize(
    ("blob", "match"),
    [
        (Value(double_val=1.0).SerializeToString()[:-1], "run past the end"),
        (Value(string_val="abc").SerializeToString()[:-1], "run past the end"),
        (b"\x20" + b"\xff" * 11, "longer than 10 bytes"),
        (b"\x20\xff", "runs past the end"),
        (b"\x12\x02\xc3\x28", "utf-8"),
        (b"\x00\x01", "field number 0"),
        (b"\x1e", "wire type 6 does not exist"),
        (b"\x1c", "ends without starting"),
        (b"\x1b\x20\x01", "does not end"),
        (b"\x4b" * 101 + b"\x4c" * 101, "nest deeper than 100"),
    ],
)
def test_bytes_that_are_no_value_are_refused_naming_the_feature(blob: bytes, match: str) -> None:
    with pytest.raises(DecodeError):
        Value.FromString(blob)
    with pytest.raises(OnlineValueError, match=match) as err:
        wire.decode_value(blob, "temperature_mean_1h")
    assert "'temperature_mean_1h'" in err.value.message
    assert err.value.code == "FEATURE_ONLINE_VALUE_UNREADABLE"


def _tag(number: int, wire_type: int) -> bytes:
    return wire_varint(number << 3 | wire_type)


def wire_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@st.composite
def _raw_field(draw: st.DrawFn) -> bytes:
    """One field of any number (Value's and others) with any wire type and payload."""
    number = draw(st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 14, 16, 19, 20, 32, 42, 99]))
    wire_type = draw(st.sampled_from([0, 1, 2, 3, 5]))
    if wire_type == 0:
        return _tag(number, 0) + wire_varint(draw(st.integers(0, (1 << 64) - 1)))
    if wire_type in (1, 5):
        return _tag(number, wire_type) + draw(
            st.binary(min_size=4, max_size=4).map(lambda b: b * (2 if wire_type == 1 else 1))
        )
    if wire_type == 3:
        inner = draw(st.lists(st.binary(max_size=3), max_size=2))
        body = b"".join(_tag(9, 2) + wire_varint(len(b)) + b for b in inner)
        return _tag(number, 3) + body + _tag(number, 4)
    payload = draw(
        st.one_of(
            st.binary(max_size=12),
            st.builds(
                lambda items: b"".join(_tag(1, 0) + wire_varint(i) for i in items),
                st.lists(st.integers(0, (1 << 64) - 1), max_size=3),
            ),
        )
    )
    return _tag(number, 2) + wire_varint(len(payload)) + payload


_VALID = st.sampled_from(sorted(SCALARS)).flatmap(
    lambda kind: SCALARS[kind].map(lambda v: Value(**{kind: v}).SerializeToString())
)
_VALID_LIST = st.sampled_from(sorted(LISTS)).flatmap(
    lambda kind: st.lists(LISTS[kind], max_size=3).map(
        lambda items: Value(**{kind: {"val": items}}).SerializeToString()
    )
)


@hypothesis_settings(WIRE, max_examples=1000)
@given(parts=st.lists(st.one_of(_VALID, _VALID_LIST, _raw_field()), max_size=4))
def test_any_message_reads_as_protobuf_reads_it(parts: list[bytes]) -> None:
    """Fields repeated, out of order, of unknown numbers or wire types, groups, packed
    and unpacked lists: where protobuf reads a value the decoder reads the same one, and
    it never fails but with OnlineValueError. (Protobuf also refuses a malformed field
    that a later one overrides; the decoder reads only the field that wins.)"""
    blob = b"".join(parts)
    try:
        expected = _feast_value(blob)
    except DecodeError:
        try:
            wire.decode_value(blob)
        except OnlineValueError:
            pass
        return
    kind = Value.FromString(blob).WhichOneof("val")
    if kind is not None and kind not in wire.VALUE_KINDS:
        with pytest.raises(OnlineValueError, match=kind):
            wire.decode_value(blob)
    else:
        assert _same(wire.decode_value(blob), expected), (blob, expected)


# ---------------------------------------------------------------- readers without Feast

DEVICES = [f"dev-{i:03d}" for i in range(8)]

_READ = """
import json, sys
from mlops_kit.config import Settings
from mlops_kit.features.online import SqliteReader
from mlops_kit.features.store import FeatureClient

settings = Settings.model_validate_json(sys.argv[1])
ids = json.loads(sys.argv[2])
client = FeatureClient(settings)
got = client.online(ids, fast=True)
rows = {}
if settings.features.online_store == "sqlite":
    p = client.placement
    reader = SqliteReader(p.online_path, p.project, client.catalog.join_key)
    read = reader.read("device_hourly", ids, ["temperature_mean_1h", "readings_1h"])
    rows = {d: [when.isoformat(), values] for d, (when, values) in read.items()}
heavy = [m for m in ("feast", "torch", "google.protobuf") if m in sys.modules]
print(json.dumps({"columns": got.columns, "missing": got.missing, "rows": rows, "heavy": heavy}))
"""


@pytest.fixture(scope="module", params=["sqlite", pytest.param("dynamodb", marks=pytest.mark.aws)])
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FeatureClient]:
    root: Path = tmp_path_factory.mktemp(f"wire-{request.param}")
    features: dict[str, Any] = {
        "online_store": request.param,
        "source_uri": str(root / "feature-rows"),
    }
    aws: dict[str, Any] = {}
    if request.param == "dynamodb":
        features["dynamodb_table"] = f"w{uuid.uuid4().hex[:8]}"
        aws = {"endpoint_url": request.getfixturevalue("moto_endpoint")}
    c = FeatureClient(load_settings(home=root, features=features, aws=aws))
    rows = [(d, T0 + timedelta(hours=h)) for i, d in enumerate(DEVICES) for h in range(1, 6 + i)]
    write_features(c.placement.source_uri, feature_table(rows))
    c.apply()
    assert c.materialize(T0 + timedelta(days=1)).status == "materialized"
    yield c
    c.close()


def test_the_readers_read_feasts_values_without_importing_feast(client: FeatureClient) -> None:
    """In a fresh interpreter the online path reads a Feast-materialized store without
    importing Feast, and its values equal ``FeatureStore.get_online_features``'s."""
    ids = [*DEVICES, "ghost", DEVICES[2]]
    proc = subprocess.run(
        [sys.executable, "-c", _READ, client.settings.model_dump_json(), json.dumps(ids)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["heavy"] == []
    feast = client.online(ids, fast=False)
    assert out["missing"] == feast.missing == ["ghost"]
    assert out["columns"].keys() == feast.columns.keys()
    derived = set(client.catalog.derived)  # computed: by Feast's pandas view, by ours
    for name, ours in out["columns"].items():
        if name in derived:
            assert ours == pytest.approx(feast.columns[name], nan_ok=True), name
        else:
            assert ours == feast.columns[name], name
    if out["rows"]:
        newest = {d: T0 + timedelta(hours=5 + i) for i, d in enumerate(DEVICES)}
        assert sorted(out["rows"]) == sorted(DEVICES)
        for device, (when, values) in out["rows"].items():
            assert when == newest[device].isoformat()
            for name, value in values.items():
                assert value == feast.columns[name][ids.index(device)], (device, name)

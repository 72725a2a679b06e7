"""Feast's online wire formats in plain Python: entity keys, entity ids, stored values.

The online readers (:mod:`mlops_kit.features.online`) look rows up by the bytes Feast
writes and decode the values Feast stores; importing Feast for that costs seconds of a
serving replica's start-up. This module writes and reads the same bytes without it, as
Feast 0.67 does with ``entity_key_serialization_version`` 3:

* :func:`serialize_entity_key`: ``feast.infra.key_encoding_utils.serialize_entity_key``,
  the SQLite store's ``entity_key`` column;
* :func:`entity_id`: ``feast.infra.online_stores.helpers.compute_entity_id``, the
  DynamoDB store's ``entity_id`` (MurmurHash3 x64 128 of the key, through ``mmh3``, a
  dependency of Feast);
* :func:`decode_value`: ``feast.types.Value.FromString`` followed by reading the set
  field, for every scalar kind and the lists of scalars.

    >>> serialize_entity_key(["id"], ["a"]).hex()
    '0100000002000000020000006964020000000100000061'
    >>> decode_value(bytes.fromhex("290000000000c05e40"))
    123.0

The tests compare every function with Feast's own on arbitrary inputs.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from mlops_kit.features.errors import EntityKeyError, OnlineValueError

KEY_KINDS: dict[str, int] = {
    "bytes_val": 1,
    "string_val": 2,
    "int32_val": 3,
    "int64_val": 4,
    "unix_timestamp_val": 8,
}
"""The ``feast.types.Value`` kinds a join key can have, with their ``ValueType`` number."""

_INT_RANGE = {
    "int32_val": (-(1 << 31), (1 << 31) - 1),
    "int64_val": (-(1 << 63), (1 << 63) - 1),
    "unix_timestamp_val": (-(1 << 63), (1 << 63) - 1),
}
_U32 = struct.Struct("<I")


def _kind_of(value: Any) -> str:
    if isinstance(value, str):
        return "string_val"
    if isinstance(value, (bytes, bytearray)):
        return "bytes_val"
    if isinstance(value, int) and not isinstance(value, bool):
        return "int64_val"
    raise EntityKeyError(
        f"a join key value of type {type(value).__name__} ({value!r}) has no Feast entity "
        "key encoding: pass a str, bytes or int, or name its kind (one of "
        f"{', '.join(KEY_KINDS)})",
        kind=type(value).__name__,
    )


def _encode(join_key: str, kind: str, value: Any) -> bytes:
    """One value's ``type, length, bytes`` as Feast's ``_serialize_val`` writes them."""
    number = KEY_KINDS.get(kind)
    if number is None:
        raise EntityKeyError(
            f"join key '{join_key}': kind '{kind}' cannot be part of a Feast entity key; "
            f"use one of {', '.join(KEY_KINDS)}",
            join_key=join_key,
            kind=kind,
        )
    if kind == "string_val":
        if not isinstance(value, str):
            raise _wrong_type(join_key, kind, value, "a str")
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError:
            raise EntityKeyError(
                f"join key '{join_key}': {value!r} is not valid Unicode (a lone "
                "surrogate); send the id as UTF-8 text",
                join_key=join_key,
                kind=kind,
            ) from None
    elif kind == "bytes_val":
        if not isinstance(value, (bytes, bytearray)):
            raise _wrong_type(join_key, kind, value, "bytes")
        raw = bytes(value)
    else:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _wrong_type(join_key, kind, value, "an int")
        low, high = _INT_RANGE[kind]
        if not low <= value <= high:
            raise EntityKeyError(
                f"join key '{join_key}': {value} is outside the range of {kind} "
                f"[{low}, {high}]; use a key of the entity's type",
                join_key=join_key,
                kind=kind,
            )
        raw = struct.pack("<i" if kind == "int32_val" else "<q", value)
    return _U32.pack(number) + _U32.pack(len(raw)) + raw


def _wrong_type(join_key: str, kind: str, value: Any, want: str) -> EntityKeyError:
    return EntityKeyError(
        f"join key '{join_key}': a {kind} must be {want}, got {type(value).__name__} "
        f"({value!r}); pass the value the entity's type holds",
        join_key=join_key,
        kind=kind,
    )


def serialize_entity_key(
    join_keys: Sequence[str],
    values: Sequence[Any],
    kinds: Sequence[str] | None = None,
) -> bytes:
    """The bytes Feast's ``serialize_entity_key`` writes for an entity key (version 3).

    Args:
        join_keys: the entity's join key names.
        values: one value per join key.
        kinds: one ``feast.types.Value`` kind per join key (a key of :data:`KEY_KINDS`);
            default from the value: ``str`` -> ``string_val``, ``bytes`` -> ``bytes_val``,
            ``int`` -> ``int64_val``.

    Returns:
        The number of keys, then each join key (sorted by name, as Feast sorts them) as
        ``type, length, UTF-8``, then each value in the same order as ``type, length,
        bytes``; every number a little-endian unsigned 32-bit integer, integers
        little-endian signed.

    Raises:
        EntityKeyError: lengths differ, a join key repeats, or a value has no encoding
            (an int out of its kind's range, a float, a lone surrogate...).
    """
    if len(values) != len(join_keys) or (kinds is not None and len(kinds) != len(join_keys)):
        raise EntityKeyError(
            f"an entity key needs one value (and one kind) per join key: {len(join_keys)} "
            f"join keys, {len(values)} values"
            + (f", {len(kinds)} kinds" if kinds is not None else ""),
        )
    if len(set(join_keys)) != len(join_keys):
        raise EntityKeyError(
            f"join keys {list(join_keys)} name one key twice: give each join key once",
        )
    chosen = list(kinds) if kinds is not None else [_kind_of(v) for v in values]
    order = sorted(range(len(join_keys)), key=lambda i: join_keys[i])
    out = [_U32.pack(len(join_keys))]
    for i in order:
        name = join_keys[i].encode("utf-8")
        out.append(_U32.pack(KEY_KINDS["string_val"]) + _U32.pack(len(name)) + name)
    for i in order:
        out.append(_encode(join_keys[i], chosen[i], values[i]))
    return b"".join(out)


def entity_id(serialized_key: bytes) -> str:
    """Feast's ``compute_entity_id`` of a serialized key: the DynamoDB item's ``entity_id``.

    Raises:
        MissingExtraError: ``mmh3`` (installed with Feast) is missing.
    """
    from mlops_kit._lazy import require

    mmh3 = require("mmh3", "DynamoDB online reads")
    return str(mmh3.hash_bytes(serialized_key).hex())


# ---------------------------------------------------------------- feast.types.Value

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_F64 = struct.Struct("<d")
_F32 = struct.Struct("<f")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """The unsigned varint at ``pos`` and the position after it."""
    result = shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise ValueError("a varint runs past the end")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & 0xFFFF_FFFF_FFFF_FFFF, pos
        shift += 7
        if shift >= 70:
            raise ValueError("a varint is longer than 10 bytes")


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


_SGROUP, _EGROUP = 3, 4
_MAX_FIELD = (1 << 29) - 1
_MAX_DEPTH = 100  # protobuf's own recursion limit


def _field(data: bytes, pos: int, depth: int = 0) -> tuple[int, int, Any, int]:
    """The field at ``pos`` as ``(number, wire type, payload, next position)``: the
    payload is the varint, the 4 or 8 raw bytes, the length-delimited bytes, or ``None``
    for a group (skipped whole, as an unknown field) and a group's end."""
    tag, pos = _varint(data, pos)
    number, wire = tag >> 3, tag & 7
    if not 0 < number <= _MAX_FIELD:
        raise ValueError(f"field number {number} is out of range")
    if wire == _VARINT:
        payload, pos = _varint(data, pos)
        return number, wire, payload, pos
    if wire in (_I64, _I32, _LEN):
        if wire == _LEN:
            size, pos = _varint(data, pos)
        else:
            size = 8 if wire == _I64 else 4
        if pos + size > len(data):
            raise ValueError(f"field {number}: {size} bytes run past the end")
        return number, wire, data[pos : pos + size], pos + size
    if wire == _SGROUP:
        if depth >= _MAX_DEPTH:
            raise ValueError(f"groups nest deeper than {_MAX_DEPTH}")
        while True:
            if pos >= len(data):
                raise ValueError(f"group {number} does not end")
            inner, inner_wire, _, pos = _field(data, pos, depth + 1)
            if inner_wire == _EGROUP:
                if inner != number:
                    raise ValueError(f"group {number} ends as group {inner}")
                return number, wire, None, pos
    if wire == _EGROUP:
        return number, wire, None, pos
    raise ValueError(f"field {number}: wire type {wire} does not exist")


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """Every field of a message as ``(number, wire type, payload)`` (groups left out)."""
    out: list[tuple[int, int, Any]] = []
    pos, end = 0, len(data)
    while pos < end:
        number, wire, payload, pos = _field(data, pos)
        if wire == _EGROUP:
            raise ValueError(f"group {number} ends without starting")
        if wire != _SGROUP:
            out.append((number, wire, payload))
    return out


def _text(raw: bytes) -> str:
    return raw.decode("utf-8")


def _int(bits: int) -> Callable[[int], int]:
    return lambda v: _signed(v, bits)


# number -> (kind, wire type, convert)
_SCALARS: dict[int, tuple[str, int, Callable[[Any], Any]]] = {
    1: ("bytes_val", _LEN, bytes),
    2: ("string_val", _LEN, _text),
    3: ("int32_val", _VARINT, _int(32)),
    4: ("int64_val", _VARINT, _int(64)),
    5: ("double_val", _I64, lambda raw: _F64.unpack(raw)[0]),
    6: ("float_val", _I32, lambda raw: _F32.unpack(raw)[0]),
    7: ("bool_val", _VARINT, bool),
    8: ("unix_timestamp_val", _VARINT, _int(64)),
    19: ("null_val", _VARINT, lambda _: None),
    32: ("json_val", _LEN, _text),
    36: ("uuid_val", _LEN, _text),
    37: ("time_uuid_val", _LEN, _text),
    44: ("decimal_val", _LEN, _text),
}

# number -> (kind, element wire type, convert one element); the list's field 1 repeats
_LISTS: dict[int, tuple[str, int, Callable[[Any], Any]]] = {
    11: ("bytes_list_val", _LEN, bytes),
    12: ("string_list_val", _LEN, _text),
    13: ("int32_list_val", _VARINT, _int(32)),
    14: ("int64_list_val", _VARINT, _int(64)),
    15: ("double_list_val", _I64, lambda raw: _F64.unpack(raw)[0]),
    16: ("float_list_val", _I32, lambda raw: _F32.unpack(raw)[0]),
    17: ("bool_list_val", _VARINT, bool),
    18: ("unix_timestamp_list_val", _VARINT, _int(64)),
    33: ("json_list_val", _LEN, _text),
    38: ("uuid_list_val", _LEN, _text),
    39: ("time_uuid_list_val", _LEN, _text),
    45: ("decimal_list_val", _LEN, _text),
}

_UNSUPPORTED: dict[int, str] = {
    20: "map_val",
    21: "map_list_val",
    22: "bytes_set_val",
    23: "string_set_val",
    24: "int32_set_val",
    25: "int64_set_val",
    26: "double_set_val",
    27: "float_set_val",
    28: "bool_set_val",
    29: "unix_timestamp_set_val",
    34: "struct_val",
    35: "struct_list_val",
    40: "uuid_set_val",
    41: "time_uuid_set_val",
    42: "list_val",
    43: "set_val",
    46: "decimal_set_val",
    47: "scalar_map_val",
    48: "zoned_timestamp_val",
}

VALUE_KINDS: tuple[str, ...] = tuple(k for k, _, _ in (*_SCALARS.values(), *_LISTS.values()))
"""The ``feast.types.Value`` kinds :func:`decode_value` reads (the others are refused)."""


def _packed(raw: bytes, wire: int) -> list[Any]:
    """The elements of a packed repeated scalar field, still raw (varints, 4 or 8 bytes)."""
    if wire == _VARINT:
        out, pos = [], 0
        while pos < len(raw):
            value, pos = _varint(raw, pos)
            out.append(value)
        return out
    size = 8 if wire == _I64 else 4
    if len(raw) % size:
        raise ValueError(f"a packed list of {len(raw)} bytes is not a whole number of {size}")
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def _list(raw: bytes, wire: int, convert: Callable[[Any], Any]) -> list[Any]:
    out: list[Any] = []
    for number, got, payload in _fields(raw):
        if number != 1:
            continue  # an unknown field, skipped as protobuf does
        if got == wire:
            out.append(convert(payload))
        elif got == _LEN:
            out.extend(convert(v) for v in _packed(payload, wire))
        # another wire type makes it an unknown field to protobuf: skipped
    return out


def decode_value(data: bytes, feature: str = "value") -> Any:
    """The Python value of a serialized ``feast.types.Value``, as Feast stores it online.

    What ``Value.FromString(data)`` holds in its set field: ``None`` when none is set or
    the null kind is; an int, float, bool, str or bytes for a scalar; a list for a list
    kind. ``unix_timestamp_val`` stays the integer Feast stores (epoch seconds).

    Args:
        data: the stored bytes (a SQLite ``value``, a DynamoDB ``B`` attribute).
        feature: the feature's name, for the error message.

    Raises:
        OnlineValueError: the bytes are not a ``Value`` (truncated, a wire type that
            does not exist, invalid UTF-8), or the kind is one not read here (maps, sets, structs; listed
            in the message).
    """
    fast = _ONE_FIELD.get(data[:1])
    if fast is not None:
        try:
            value, end = fast(data)
        except (ValueError, UnicodeDecodeError, struct.error):
            pass  # the general path below says what is wrong
        else:
            if end == len(data):
                return value
    try:
        fields = [f for f in _fields(data) if _expected_wire(f[0]) == f[1]]
    except ValueError as exc:
        raise _unreadable(feature, str(exc)) from None
    if not fields:
        return None  # nothing set, or unknown fields only: protobuf leaves the oneof unset
    # of a oneof set more than once the last field wins; a message field repeated at the
    # end is merged, as protobuf merges it (a list's elements add up)
    number = fields[-1][0]
    tail: list[bytes] = []
    for got, _, payload in reversed(fields):
        if got != number:
            break
        tail.append(payload)
    try:
        scalar = _SCALARS.get(number)
        if scalar is not None:
            return scalar[2](tail[0])
        listed = _LISTS.get(number)
        if listed is not None:
            _, element, convert = listed
            return [v for raw in reversed(tail) for v in _list(raw, element, convert)]
    except (ValueError, UnicodeDecodeError) as exc:
        raise _unreadable(feature, str(exc)) from None
    raise OnlineValueError(
        f"feature '{feature}' is stored as {_UNSUPPORTED[number]}, which the direct online "
        f"reader does not decode (it reads {', '.join(VALUE_KINDS)}): read it through "
        "Feast (features.fast_online: false) or give the feature a scalar type",
        feature=feature,
        kind=_UNSUPPORTED[number],
    )


def _one_field(wire_type: int, convert: Callable[[Any], Any]) -> Callable[[bytes], tuple[Any, int]]:
    """A reader of a message made of one field of a one-byte tag: ``(value, end)``."""
    if wire_type == _VARINT:

        def read(data: bytes) -> tuple[Any, int]:
            value, end = _varint(data, 1)
            return convert(value), end

    elif wire_type == _LEN:

        def read(data: bytes) -> tuple[Any, int]:
            size, start = _varint(data, 1)
            return convert(data[start : start + size]), start + size

    else:
        size = 8 if wire_type == _I64 else 4

        def read(data: bytes) -> tuple[Any, int]:
            return convert(data[1 : 1 + size]), 1 + size

    return read


_ONE_FIELD: dict[bytes, Callable[[bytes], tuple[Any, int]]] = {
    bytes([number << 3 | wire_type]): _one_field(wire_type, convert)
    for number, (_, wire_type, convert) in _SCALARS.items()
    if number < 16
}
"""The common case: a message of one scalar field of a one-byte tag, read in one step
(a result that does not end where the data does goes the general way)."""


def _expected_wire(number: int) -> int | None:
    """The wire type field ``number`` of a ``Value`` has (None: not a field of it). A
    field sent with another wire type is an unknown field to protobuf, not this one."""
    scalar = _SCALARS.get(number)
    if scalar is not None:
        return scalar[1]
    if number in _LISTS or number in _UNSUPPORTED:
        return _LEN
    return None


def _unreadable(feature: str, why: str) -> OnlineValueError:
    return OnlineValueError(
        f"feature '{feature}': the online store holds bytes that are not a Feast value "
        f"({why}); materialize the feature view again to rewrite it",
        feature=feature,
    )

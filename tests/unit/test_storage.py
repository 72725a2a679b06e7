"""Storage by URI: local and S3 (moto's server over HTTP) behave the same."""

from __future__ import annotations

import os

import pyarrow as pa
import pytest

from mlops_kit import storage
from mlops_kit.errors import StorageError


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path / "root")
    bucket = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/root"


def test_bytes_json_parquet_round_trip(root: str) -> None:
    storage.write_bytes(storage.join(root, "a", "b.bin"), b"\x00\x01")
    assert storage.read_bytes(storage.join(root, "a", "b.bin")) == b"\x00\x01"
    storage.write_json(storage.join(root, "m.json"), {"rows": 3})
    assert storage.read_json(storage.join(root, "m.json")) == {"rows": 3}
    table = pa.table({"x": [1, 2, 3]})
    storage.write_parquet(storage.join(root, "t", "p.parquet"), table)
    assert storage.read_parquet(storage.join(root, "t", "p.parquet")).equals(table)
    listed = storage.list_files(root)
    assert [os.path.basename(u) for u in listed] == ["b.bin", "m.json", "p.parquet"]
    assert all(u.startswith("s3://") for u in listed) == root.startswith("s3://")


def test_overwrite_is_whole_and_move_and_delete(root: str) -> None:
    uri = storage.join(root, "f.txt")
    storage.write_bytes(uri, b"old")
    storage.write_bytes(uri, b"new")
    assert storage.read_bytes(uri) == b"new"
    dst = storage.join(root, "g", "f.txt")
    storage.move(uri, dst)
    assert not storage.exists(uri) and storage.read_bytes(dst) == b"new"
    storage.delete(dst)
    storage.delete(dst)  # deleting twice is fine
    assert not storage.exists(dst)


def test_missing_object_names_the_uri(root: str) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        storage.read_bytes(storage.join(root, "nope.bin"))


def test_unsupported_scheme_lists_supported() -> None:
    with pytest.raises(StorageError, match=r"gs://.*file://, s3://"):
        storage.resolve("gs://bucket/key")


def test_local_write_failure_leaves_no_partial_file(tmp_path) -> None:
    target = tmp_path / "out.parquet"
    storage.write_bytes(str(target), b"complete")

    with pytest.raises(AttributeError):  # the writer fails after the temp file was opened
        storage.write_parquet(str(target), pa.table({"x": [1]}), compression=object())
    # the previous complete file is intact and no temporary is left behind
    assert target.read_bytes() == b"complete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]

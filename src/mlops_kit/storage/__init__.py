"""Object storage by URI: local paths, ``file://`` and ``s3://``.

Every write is atomic: locally the bytes go to a hidden temporary file in the target
directory and are renamed into place; on S3 an object only becomes visible when its
upload completes. A reader never sees a partial file.

Example:
    >>> from mlops_kit.storage import write_bytes, read_bytes
    >>> write_bytes("/tmp/demo/hello.txt", b"hi")
    >>> read_bytes("/tmp/demo/hello.txt")
    b'hi'
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from mlops_kit.errors import StorageError

if TYPE_CHECKING:
    from mlops_kit.config import Settings

SUPPORTED_SCHEMES = ("file://", "s3://", "a plain path")


@dataclass(frozen=True)
class S3Options:
    """How S3 is reached (region and optional endpoint, e.g. moto's server)."""

    region: str = "us-east-1"
    endpoint_url: str | None = None


_default_s3 = S3Options(
    region=os.environ.get("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1")),
    endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3", os.environ.get("AWS_ENDPOINT_URL")),
)


def configure_s3(region: str = "us-east-1", endpoint_url: str | None = None) -> None:
    """Set the S3 region and endpoint used for ``s3://`` URIs in this process."""
    global _default_s3
    _default_s3 = S3Options(region=region, endpoint_url=endpoint_url)


def configure_from_settings(settings: Settings) -> None:
    """Point S3 at the region and endpoint of a :class:`~mlops_kit.config.Settings`."""
    configure_s3(settings.aws.region, settings.aws.endpoint_for("s3"))


@lru_cache(maxsize=8)
def _s3fs(opts: S3Options) -> pafs.FileSystem:
    kwargs: dict[str, Any] = {"region": opts.region}
    if opts.endpoint_url:
        parsed = urlparse(opts.endpoint_url)
        kwargs["endpoint_override"] = parsed.netloc or parsed.path
        kwargs["scheme"] = parsed.scheme or "https"
        kwargs["allow_bucket_creation"] = False
    kwargs["check_directory_existence_before_creation"] = False
    return pafs.S3FileSystem(**kwargs)


_local = pafs.LocalFileSystem()


def resolve(uri: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and path behind ``uri``.

    Raises:
        StorageError: for a scheme other than ``file://`` or ``s3://``.
    """
    uri = os.fspath(uri)
    if uri.startswith("s3://"):
        return _s3fs(_default_s3), uri[len("s3://") :].rstrip("/")
    if uri.startswith("file://"):
        return _local, str(Path(urlparse(uri).path).absolute())
    if "://" in uri:
        scheme = uri.split("://", 1)[0]
        raise StorageError(
            f"unsupported storage URI scheme '{scheme}://' in '{uri}': "
            f"use one of {', '.join(SUPPORTED_SCHEMES)}"
        )
    return _local, str(Path(uri).absolute())


def is_s3(uri: str) -> bool:
    return os.fspath(uri).startswith("s3://")


def join(base: str | os.PathLike[str], *parts: str) -> str:
    """Join URI parts with ``/`` (keeps the scheme)."""
    base = os.fspath(base)
    if "://" in base:
        return posixpath.join(base.rstrip("/"), *parts)
    return str(Path(base, *parts))


def _wrap(op: str, uri: str, exc: Exception) -> StorageError:
    return StorageError(f"could not {op} '{uri}': {exc}")


def exists(uri: str) -> bool:
    fs, path = resolve(uri)
    try:
        return fs.get_file_info(path).type != pafs.FileType.NotFound
    except OSError as exc:
        raise _wrap("stat", uri, exc) from exc


def read_bytes(uri: str) -> bytes:
    fs, path = resolve(uri)
    try:
        with fs.open_input_stream(path) as f:
            return bytes(f.read())
    except FileNotFoundError as exc:
        raise StorageError(f"'{uri}' does not exist") from exc
    except OSError as exc:
        if "Path does not exist" in str(exc) or "NoSuchKey" in str(exc):
            raise StorageError(f"'{uri}' does not exist") from exc
        raise _wrap("read", uri, exc) from exc


def _atomic_local(path: str, writer: Any) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_bytes(uri: str, data: bytes) -> None:
    """Write ``data`` to ``uri`` atomically (a reader sees the old or the new object)."""
    fs, path = resolve(uri)
    try:
        if fs is _local:
            _atomic_local(path, lambda f: f.write(data))
        else:
            with fs.open_output_stream(path) as out:
                out.write(data)
    except OSError as exc:
        raise _wrap("write", uri, exc) from exc


def write_json(uri: str, obj: Any) -> None:
    write_bytes(uri, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())


def read_json(uri: str) -> Any:
    return json.loads(read_bytes(uri))


def write_parquet(uri: str, table: pa.Table, **options: Any) -> None:
    """Write ``table`` as one Parquet file at ``uri``, atomically."""
    options.setdefault("compression", "snappy")
    fs, path = resolve(uri)
    try:
        if fs is _local:
            _atomic_local(path, lambda f: pq.write_table(table, f, **options))
        else:
            buf = io.BytesIO()
            pq.write_table(table, buf, **options)
            with fs.open_output_stream(path) as out:
                out.write(buf.getvalue())
    except OSError as exc:
        raise _wrap("write", uri, exc) from exc


def read_parquet(uris: str | Iterable[str], columns: list[str] | None = None) -> pa.Table:
    """Read one Parquet file or several (concatenated; schemas must match)."""
    items = [uris] if isinstance(uris, str) else list(uris)
    tables = []
    for uri in items:
        fs, path = resolve(uri)
        try:
            tables.append(pq.read_table(path, filesystem=fs, columns=columns))
        except OSError as exc:
            raise _wrap("read", uri, exc) from exc
    if not tables:
        raise StorageError("no Parquet files to read")
    return pa.concat_tables(tables, promote_options="default")


def list_files(prefix: str, suffix: str = "", recursive: bool = True) -> list[str]:
    """URIs of the files under ``prefix`` (sorted), skipping hidden temporaries."""
    fs, path = resolve(prefix)
    scheme = "s3://" if is_s3(prefix) else ""
    try:
        infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True, recursive=recursive))
    except OSError as exc:
        raise _wrap("list", prefix, exc) from exc
    out = []
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        if os.path.basename(info.path).startswith(".") or not info.path.endswith(suffix):
            continue
        out.append(scheme + info.path)
    return sorted(out)


def delete(uri: str) -> None:
    """Delete a file; deleting a missing file is not an error."""
    fs, path = resolve(uri)
    try:
        fs.delete_file(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if "does not exist" in str(exc) or "NoSuchKey" in str(exc):
            return
        raise _wrap("delete", uri, exc) from exc


def delete_tree(prefix: str) -> None:
    """Delete everything under ``prefix``."""
    for uri in list_files(prefix):
        delete(uri)
    fs, path = resolve(prefix)
    if fs is _local and os.path.isdir(path):
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def move(src: str, dst: str) -> None:
    """Move a file (a rename locally; copy then delete on S3). Idempotent when done."""
    fs, spath = resolve(src)
    _, dpath = resolve(dst)
    try:
        if fs is _local:
            os.makedirs(os.path.dirname(dpath), exist_ok=True)
            os.replace(spath, dpath)
        else:
            fs.copy_file(spath, dpath)
            fs.delete_file(spath)
    except OSError as exc:
        raise _wrap("move", src, exc) from exc


__all__ = [
    "SUPPORTED_SCHEMES",
    "S3Options",
    "configure_from_settings",
    "configure_s3",
    "delete",
    "delete_tree",
    "exists",
    "is_s3",
    "join",
    "list_files",
    "move",
    "read_bytes",
    "read_json",
    "read_parquet",
    "resolve",
    "write_bytes",
    "write_json",
    "write_parquet",
]

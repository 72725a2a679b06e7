"""Lineage of a training run: which data, which features, which code, which launcher.

No mlflow import here. :class:`Lineage` becomes the run's ``mlops_kit.*`` tags::

    mlops_kit.data_manifest_sha256     sha256 of the training set's manifest.json
    mlops_kit.feature_service          e.g. device_failure_v1 ("none" for a custom list)
    mlops_kit.feature_service_version  e.g. 1 ("none" likewise)
    mlops_kit.dataset                  the dataset spec's name, e.g. iot_readings
    mlops_kit.dataset_version          its version
    mlops_kit.dataset_digest           sha256 of the spec ("none" without a manifest)
    mlops_kit.git_commit               git rev-parse HEAD, else "unknown"
    mlops_kit.launcher                 local | eks | sagemaker
    mlops_kit.version                  mlops_kit.__version__
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mlops_kit import storage
from mlops_kit._version import __version__

TAG_PREFIX = "mlops_kit."
UNKNOWN = "unknown"
NONE = "none"
MANIFEST = "manifest.json"
COMMIT_ENVS = ("GIT_COMMIT", "GITHUB_SHA")
"""Environment variables read when ``git`` cannot tell (e.g. inside a container image)."""

Launcher = Literal["local", "eks", "sagemaker"]
LAUNCHERS: tuple[str, ...] = ("local", "eks", "sagemaker")

_SERVICE_VERSION = re.compile(r"_v(\d+)$")


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str:
    """The commit checked out at ``cwd`` (default: the current directory).

    ``git rev-parse HEAD`` first; then ``GIT_COMMIT`` or ``GITHUB_SHA`` (set them when
    building an image, which has no ``.git``); else ``"unknown"``.
    """
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        sha = done.stdout.strip()
        if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", sha):
            return sha
    except (OSError, subprocess.SubprocessError):
        pass
    for name in COMMIT_ENVS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return UNKNOWN


def sha256_of(uris: list[str]) -> str:
    """sha256 over the bytes of ``uris``, in the given order."""
    digest = hashlib.sha256()
    for uri in uris:
        digest.update(storage.read_bytes(uri))
    return digest.hexdigest()


def _training_set_files(uri: str) -> tuple[str | None, list[str]]:
    """``(manifest URI or None, data files)`` of a training-set folder or table."""
    manifest = storage.join(uri, MANIFEST)
    if not uri.endswith(".parquet") and storage.exists(manifest):
        return manifest, []
    if uri.endswith(".parquet") and storage.exists(uri):
        return None, [uri]
    files = sorted(storage.list_files(uri, ".parquet")) if storage.exists(uri) else []
    return None, files


@dataclass(frozen=True)
class Lineage:
    """What a model was trained from and by.

    Attributes:
        data_manifest_sha256: sha256 of the training set's ``manifest.json`` (of the
            data bytes when the training table has no manifest).
        feature_service: the Feast feature service the features came from.
        feature_service_version: its version.
        dataset: the dataset spec's name; ``dataset_version`` and ``dataset_digest`` its
            version and the sha256 of its canonical form.
        git_commit: the code's commit (default: :func:`git_commit` of the current
            directory).
        launcher: where training ran: ``local`` (in-process, also a pipeline's own pod),
            ``eks`` or ``sagemaker``.
        version: the mlops_kit version.
        extra: further tags (keys without the ``mlops_kit.`` prefix).
    """

    data_manifest_sha256: str = UNKNOWN
    feature_service: str = NONE
    feature_service_version: str = NONE
    dataset: str = NONE
    dataset_version: str = NONE
    dataset_digest: str = NONE
    git_commit: str = field(default_factory=lambda: git_commit())
    launcher: str = "local"
    version: str = __version__
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.launcher not in LAUNCHERS:
            from mlops_kit.errors import ConfigError

            raise ConfigError(f"launcher '{self.launcher}' is not one of {', '.join(LAUNCHERS)}")

    @classmethod
    def from_training_set(
        cls,
        uri: str,
        *,
        launcher: str = "local",
        cwd: str | os.PathLike[str] | None = None,
        **extra: str,
    ) -> Lineage:
        """Lineage of a training set written by ``features.build_training_set``.

        Args:
            uri: the training-set folder (``data.parquet`` + ``manifest.json``), or a
                training table without manifest (a Parquet file or prefix), whose data
                bytes are hashed instead.
            launcher: ``local``, ``eks`` or ``sagemaker``.
            cwd: where to ask git for the commit.
            **extra: further tags.
        """
        manifest_uri, files = _training_set_files(uri)
        service, version = NONE, NONE
        dataset: dict[str, Any] = {}
        if manifest_uri is not None:
            digest = sha256_of([manifest_uri])
            manifest = storage.read_json(manifest_uri)
            name = manifest.get("service") if isinstance(manifest, dict) else None
            if name:
                service = str(name)
                match = _SERVICE_VERSION.search(service)
                version = match.group(1) if match else UNKNOWN
            if isinstance(manifest, dict) and isinstance(manifest.get("dataset"), dict):
                dataset = manifest["dataset"]
        else:
            digest = sha256_of(files) if files else UNKNOWN
        return cls(
            data_manifest_sha256=digest,
            feature_service=service,
            feature_service_version=version,
            dataset=str(dataset.get("name", NONE)),
            dataset_version=str(dataset.get("version", NONE)),
            dataset_digest=str(dataset.get("digest", NONE)),
            git_commit=git_commit(cwd),
            launcher=launcher,
            extra=dict(extra),
        )

    def tags(self) -> dict[str, str]:
        """The run tags, keys prefixed with ``mlops_kit.``."""
        out = {f"{TAG_PREFIX}{k}": str(v) for k, v in asdict(self).items() if k != "extra"}
        out.update({f"{TAG_PREFIX}{k}": str(v) for k, v in self.extra.items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lineage:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if "extra" in known:
            known["extra"] = {str(k): str(v) for k, v in dict(known["extra"]).items()}
        return cls(**known)

    def with_launcher(self, launcher: str) -> Lineage:
        """A copy with another launcher."""
        data = self.to_dict()
        data["launcher"] = launcher
        return Lineage.from_dict(data)


LINEAGE_TAGS: tuple[str, ...] = tuple(
    f"{TAG_PREFIX}{k}"
    for k in (
        "data_manifest_sha256",
        "feature_service",
        "feature_service_version",
        "dataset",
        "dataset_version",
        "dataset_digest",
        "git_commit",
        "launcher",
        "version",
    )
)
"""The tags every tracked training run carries."""


__all__ = [
    "COMMIT_ENVS",
    "LAUNCHERS",
    "LINEAGE_TAGS",
    "TAG_PREFIX",
    "Launcher",
    "Lineage",
    "git_commit",
    "sha256_of",
]

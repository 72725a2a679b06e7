"""Where runs are tracked: the MLflow tracking URI, experiment and artifact location.

No mlflow import here. The tracking URI is, in order:

1. the ``uri`` argument;
2. the ``MLFLOW_TRACKING_URI`` environment variable (a server ``http(s)://...``, or a
   database URI such as ``postgresql+psycopg://...``);
3. the ``tracking.uri`` setting (``MLOPS_KIT_TRACKING__URI``, ``mlops_kit.yaml``);
4. for the ``local`` profile, ``sqlite:///<home>/mlflow.db``, with artifacts under
   ``<storage.models_uri>/mlflow-artifacts``.

The ``aws`` profile has no default: set ``tracking.uri`` or ``MLFLOW_TRACKING_URI`` to the
tracking server (the one backed by RDS PostgreSQL) on the pods and machines that train.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from mlops_kit.errors import ConfigError

if TYPE_CHECKING:
    from mlops_kit.config import Settings

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
"""Environment variable holding the tracking URI (MLflow's own)."""
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
"""Environment variable holding the experiment name (MLflow's own)."""
DEFAULT_EXPERIMENT = "mlops-kit"
"""Experiment of runs that name none."""
ARTIFACTS_DIR = "mlflow-artifacts"
"""Folder under ``storage.models_uri`` that holds run artifacts of a database store."""

_SERVER_SCHEMES = ("http", "https", "databricks")


@dataclass(frozen=True)
class TrackingTarget:
    """A resolved tracking location.

    Attributes:
        uri: the MLflow tracking URI.
        experiment: the experiment name runs go to.
        artifact_location: artifact root given to a *new* experiment (``None``: the
            server or MLflow decides; an existing experiment keeps its own).
    """

    uri: str
    experiment: str = DEFAULT_EXPERIMENT
    artifact_location: str | None = None

    @property
    def is_server(self) -> bool:
        """True for a tracking server reached over HTTP(S)."""
        return urlsplit(self.uri).scheme in _SERVER_SCHEMES

    @property
    def display_uri(self) -> str:
        """The URI with any password replaced by ``***`` (safe for logs and metadata)."""
        return redact(self.uri)


def redact(uri: str) -> str:
    """``uri`` with the password of its user-info replaced by ``***``."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _as_uri(location: str) -> str:
    if "://" in location:
        return location
    return Path(location).expanduser().resolve().as_uri()


def tracking_target_of(
    settings: Settings | None = None,
    *,
    uri: str | None = None,
    experiment: str | None = None,
) -> TrackingTarget:
    """The tracking location for ``settings`` (see the module docstring for the order).

    Args:
        settings: :class:`~mlops_kit.config.Settings` (default: :func:`load_settings`).
        uri: explicit tracking URI; ``None`` or ``""`` resolves it.
        experiment: experiment name; ``None`` or ``""`` takes ``MLFLOW_EXPERIMENT_NAME``,
            else :data:`DEFAULT_EXPERIMENT`.

    Raises:
        ConfigError: the ``aws`` profile without ``MLFLOW_TRACKING_URI``.
    """
    if settings is None:
        from mlops_kit.config import load_settings

        settings = load_settings()
    configured = getattr(settings, "tracking", None)
    name = (
        experiment
        or os.environ.get(EXPERIMENT_ENV)
        or (configured.experiment if configured else None)
        or DEFAULT_EXPERIMENT
    )
    chosen = uri or os.environ.get(TRACKING_URI_ENV) or (configured.uri if configured else "") or ""
    if not chosen:
        if settings.profile != "local":
            raise ConfigError(
                f"profile '{settings.profile}' needs a tracking server: set tracking.uri or "
                f"{TRACKING_URI_ENV} "
                "(e.g. https://mlflow.internal.example.com, the server in front of RDS "
                "PostgreSQL) on the pods and machines that train"
            )
        home = Path(settings.home).expanduser().resolve()
        home.mkdir(parents=True, exist_ok=True)
        chosen = f"sqlite:///{home / 'mlflow.db'}"
    artifacts: str | None = None
    if urlsplit(chosen).scheme not in _SERVER_SCHEMES and settings.storage.models_uri:
        artifacts = _as_uri(str(settings.storage.models_uri)).rstrip("/") + "/" + ARTIFACTS_DIR
    return TrackingTarget(uri=chosen, experiment=name, artifact_location=artifacts)


__all__ = [
    "ARTIFACTS_DIR",
    "DEFAULT_EXPERIMENT",
    "EXPERIMENT_ENV",
    "TRACKING_URI_ENV",
    "TrackingTarget",
    "redact",
    "tracking_target_of",
]

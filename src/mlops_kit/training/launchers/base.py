"""The launcher interface: a handle, a status, the launch errors, and the ABC.

A :class:`~mlops_kit.training.launchers.spec.TrainingJobSpec` describes one training run of
``python -m mlops_kit.training train`` independently of where it runs; a
:class:`TrainingLauncher` (local, EKS or SageMaker) validates it, submits it and reports a
:class:`JobStatus`::

    launcher = launcher_for("eks", settings)
    handle = launcher.submit(TrainingJobSpec(name="failure-mlp-1", data_uri=..., output_uri=...))
    status = launcher.wait(handle, timeout=3600)

The spec and its checks are in :mod:`~mlops_kit.training.launchers.spec`, the trainer's
command line in :mod:`~mlops_kit.training.launchers.arguments`. This module imports
neither torch nor a cloud SDK.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar, Literal

from mlops_kit.config import Settings, load_settings
from mlops_kit.training.errors import TrainingError
from mlops_kit.training.launchers.arguments import flatten_config, train_arguments
from mlops_kit.training.launchers.spec import (
    TrainingJobSpec,
    default_image,
    parse_job_spec,
    require_image,
    require_remote_uri,
)

Backend = Literal["local", "eks", "sagemaker"]


class LaunchError(TrainingError):
    """A job could not be submitted or its status could not be read."""

    code = "TRAINING_LAUNCH_FAILED"


class TrainingJobFailedError(LaunchError):
    """The job ended in the ``Failed`` phase; ``status`` carries the reason and message."""

    code = "TRAINING_JOB_FAILED"

    def __init__(self, message: str, *, status: JobStatus, **details: Any) -> None:
        super().__init__(message, status=status, **details)
        self.status = status


class TrainingJobTimeoutError(LaunchError):
    """The job did not finish within the ``timeout`` given to ``wait``."""

    code = "TRAINING_JOB_TIMEOUT"

    def __init__(self, message: str, *, status: JobStatus, **details: Any) -> None:
        super().__init__(message, status=status, **details)
        self.status = status


class JobPhase(str, Enum):
    """Where a job is in its life, the same words on every backend."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def done(self) -> bool:
        """True for the terminal phases."""
        return self in (JobPhase.SUCCEEDED, JobPhase.FAILED)


@dataclass(frozen=True)
class JobStatus:
    """A job's status as reported by its backend.

    Attributes:
        phase: Pending, Running, Succeeded or Failed.
        reason: a short machine-readable reason (the condition's ``reason``, SageMaker's
            secondary status, or the error code the trainer printed).
        message: the human-readable detail (failure message, last condition message).
        start_time: when the job started running, when known.
        end_time: when it finished, when known.
        raw: the backend's own status object (for debugging; not compared).
    """

    phase: JobPhase
    reason: str | None = None
    message: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        """True once the job succeeded or failed."""
        return self.phase.done

    @property
    def succeeded(self) -> bool:
        return self.phase is JobPhase.SUCCEEDED

    def describe(self) -> str:
        """One line: phase, reason and message."""
        text = self.phase.value
        if self.reason:
            text += f" ({self.reason})"
        if self.message:
            text += f": {self.message}"
        return text


@dataclass(frozen=True)
class JobHandle:
    """What identifies a submitted job on its backend (plain strings, safe to store).

    Attributes:
        backend: ``local``, ``eks`` or ``sagemaker``.
        name: the job's name on the backend (SageMaker appends a timestamp to the spec name).
        kind: ``PyTorchJob``, ``TrainJob``, ``TrainingJob``, ``process`` or ``thread``.
        namespace: the Kubernetes namespace (EKS only).
        uid: the backend's own id (Kubernetes uid, SageMaker ARN, process id).
    """

    backend: str
    name: str
    kind: str
    namespace: str | None = None
    uid: str | None = None


class TrainingLauncher(ABC):
    """Submits :class:`TrainingJobSpec` runs to one backend and follows them.

    Every backend offers the same four calls: :meth:`validate`, :meth:`submit`,
    :meth:`status` and :meth:`wait` (plus :meth:`run`, submit then wait).

    Args:
        settings: mlops_kit settings (default: :func:`~mlops_kit.config.load_settings`).
    """

    backend: ClassVar[str]
    #: seconds between status polls in :meth:`wait` unless told otherwise
    default_poll_s: ClassVar[float] = 10.0

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else load_settings()

    @abstractmethod
    def validate(self, spec: TrainingJobSpec) -> TrainingJobSpec:
        """Check ``spec`` against this backend and fill its backend defaults.

        Returns:
            The spec with defaults resolved (e.g. the image).

        Raises:
            ConfigError: naming the field that cannot work on this backend.
        """

    @abstractmethod
    def submit(self, spec: TrainingJobSpec) -> JobHandle:
        """Validate ``spec`` and start the job; returns without waiting for it.

        Raises:
            ConfigError: the spec is invalid for this backend (nothing was submitted).
            LaunchError: the backend refused the job.
        """

    @abstractmethod
    def status(self, handle: JobHandle) -> JobStatus:
        """The job's current status.

        Raises:
            LaunchError: the backend does not know the job or cannot be reached.
        """

    def wait(
        self,
        handle: JobHandle,
        timeout: float | None = None,
        poll: float | None = None,
        *,
        raise_on_failure: bool = True,
    ) -> JobStatus:
        """Poll :meth:`status` until the job succeeds or fails.

        Args:
            handle: the submitted job.
            timeout: seconds to wait at most; None waits for ever.
            poll: seconds between polls (default: the backend's ``default_poll_s``).
            raise_on_failure: raise :class:`TrainingJobFailedError` when the job fails
                (otherwise return its Failed status).

        Raises:
            TrainingJobFailedError: the job failed (its reason and message in the text).
            TrainingJobTimeoutError: ``timeout`` passed first.
        """
        interval = self.default_poll_s if poll is None else poll
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status(handle)
            if status.done:
                return self._finish(handle, status, raise_on_failure)
            if deadline is not None and time.monotonic() >= deadline:
                raise TrainingJobTimeoutError(
                    f"{handle.kind} '{handle.name}' did not finish within {timeout:g} s "
                    f"(last status: {status.describe()})",
                    status=status,
                )
            time.sleep(
                interval
                if deadline is None
                else max(0.0, min(interval, deadline - time.monotonic()))
            )

    def run(
        self, spec: TrainingJobSpec, timeout: float | None = None, poll: float | None = None
    ) -> JobStatus:
        """Submit ``spec`` and wait for it (raising when it fails)."""
        return self.wait(self.submit(spec), timeout=timeout, poll=poll)

    @staticmethod
    def _finish(handle: JobHandle, status: JobStatus, raise_on_failure: bool) -> JobStatus:
        if status.phase is JobPhase.FAILED and raise_on_failure:
            detail = f" ({status.reason})" if status.reason else ""
            message = f": {status.message}" if status.message else ""
            raise TrainingJobFailedError(
                f"{handle.backend} {handle.kind} '{handle.name}' failed{detail}{message}",
                status=status,
            )
        return status


__all__ = [
    "Backend",
    "JobHandle",
    "JobPhase",
    "JobStatus",
    "LaunchError",
    "TrainingJobFailedError",
    "TrainingJobSpec",
    "TrainingJobTimeoutError",
    "TrainingLauncher",
    "default_image",
    "flatten_config",
    "parse_job_spec",
    "require_image",
    "require_remote_uri",
    "train_arguments",
]

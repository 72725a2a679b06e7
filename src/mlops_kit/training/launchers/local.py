"""Local backend: the trainer in this process, or ``torchrun`` subprocesses.

A spec with one node and one process runs :func:`mlops_kit.training.train` in a
background thread of this process (no start-up cost). More processes per node
(``procs_per_node``, or ``gpus_per_node`` on a GPU machine), or ``mode="subprocess"``,
run ``python -m torch.distributed.run --standalone --nproc_per_node=N -m
mlops_kit.training train ...``, the very command the container runs on EKS; its output
goes to ``<log_dir>/<name>.log`` and a failure's reason is the error code the trainer
printed (``error [CODE]: message``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Literal

from mlops_kit.config import Settings
from mlops_kit.errors import ConfigError, MlopsKitError
from mlops_kit.training.launchers.arguments import train_arguments
from mlops_kit.training.launchers.base import (
    JobHandle,
    JobPhase,
    JobStatus,
    LaunchError,
    TrainingLauncher,
)
from mlops_kit.training.launchers.spec import TrainingJobSpec

Mode = Literal["auto", "inprocess", "subprocess"]
_ERROR_LINE = re.compile(
    r"error \[(?P<code>[A-Z0-9_]+)\]: (?P<message>.*?)(?=error \[[A-Z0-9_]+\]: |$)"
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class _Run:
    kind: str
    started: datetime
    thread: threading.Thread | None = None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    ended: datetime | None = None
    error: BaseException | None = None
    result: Any = None
    detail: dict[str, Any] = field(default_factory=dict)


class LocalLauncher(TrainingLauncher):
    """Runs jobs on this machine.

    Args:
        settings: mlops_kit settings (``home`` holds the logs by default).
        mode: ``auto`` (in-process for a single process, else torchrun), ``inprocess`` or
            ``subprocess``.
        log_dir: where subprocess logs go (default ``<home>/launcher``).
        python: the interpreter of subprocesses (default: this one).
    """

    backend: ClassVar[str] = "local"
    default_poll_s: ClassVar[float] = 0.5

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        mode: Mode = "auto",
        log_dir: str | os.PathLike[str] | None = None,
        python: str | None = None,
    ) -> None:
        super().__init__(settings)
        if mode not in ("auto", "inprocess", "subprocess"):
            raise ConfigError(f"mode: expected auto, inprocess or subprocess, got '{mode}'")
        self.mode = mode
        self.log_dir = (
            Path(log_dir) if log_dir is not None else Path(self.settings.home) / "launcher"
        )
        self.python = python or sys.executable
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()

    def _uses_subprocess(self, spec: TrainingJobSpec) -> bool:
        if self.mode != "auto":
            return self.mode == "subprocess"
        return (
            spec.nproc_per_node > 1
            or spec.command is not None
            or bool(spec.env)
            or bool(spec.extra_args)
        )

    def validate(self, spec: TrainingJobSpec) -> TrainingJobSpec:
        """Local checks: one node, no Kubernetes secrets, enough local GPUs.

        Raises:
            ConfigError: naming ``nodes``, ``env_from_secrets``, ``gpus_per_node`` or ``mode``.
        """
        if spec.nodes != 1:
            raise ConfigError(
                f"nodes: the local backend runs on one machine (got {spec.nodes}); use the "
                "eks or sagemaker backend for multi-node jobs"
            )
        if spec.env_from_secrets:
            raise ConfigError(
                "env_from_secrets: Kubernetes secrets do not exist locally; put the values "
                "in env or in this process's environment"
            )
        if spec.is_gpu:
            from mlops_kit._lazy import require

            torch = require("torch", "local GPU training")
            have = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if have < spec.gpus_per_node:
                raise ConfigError(
                    f"gpus_per_node: the job asks for {spec.gpus_per_node} GPUs but this "
                    f"machine has {have}"
                )
        if not self._uses_subprocess(spec):
            if spec.nproc_per_node > 1:
                raise ConfigError(
                    "procs_per_node: an in-process run is one process; use mode='subprocess' "
                    "(torchrun) or 'auto'"
                )
            for name in ("env", "extra_args", "command"):
                if getattr(spec, name):
                    raise ConfigError(
                        f"{name}: an in-process run cannot apply it; use mode='subprocess' "
                        "or 'auto'"
                    )
        spec.resolved_config()
        return spec

    # -- submit ---------------------------------------------------------------------------------

    def submit(self, spec: TrainingJobSpec) -> JobHandle:
        spec = self.validate(spec)
        with self._lock:
            previous = self._runs.get(spec.name)
            if previous is not None and previous.ended is None and self._alive(previous):
                raise LaunchError(f"a local job named '{spec.name}' is still running")
        if self._uses_subprocess(spec):
            run = self._start_process(spec)
            handle = JobHandle(
                "local", spec.name, "process", None, str(run.process.pid if run.process else "")
            )
        else:
            run = self._start_thread(spec)
            handle = JobHandle("local", spec.name, "thread", None, None)
        with self._lock:
            self._runs[spec.name] = run
        return handle

    def command(self, spec: TrainingJobSpec) -> list[str]:
        """The subprocess command line of ``spec``."""
        if spec.command is not None:
            return list(spec.command)
        return [
            self.python,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nnodes=1",
            f"--nproc_per_node={spec.nproc_per_node}",
            "-m",
            "mlops_kit.training",
            *train_arguments(spec),
        ]

    def _start_process(self, spec: TrainingJobSpec) -> _Run:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.name}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **spec.env}
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                self.command(spec), stdout=log, stderr=subprocess.STDOUT, env=env
            )
        return _Run("process", _now(), process=process, log_path=log_path)

    def _start_thread(self, spec: TrainingJobSpec) -> _Run:
        from mlops_kit.training.trainer import train

        config = spec.resolved_config()
        if spec.checkpoint_uri is not None:
            config = config.model_copy(update={"checkpoint_uri": spec.checkpoint_uri})
        run = _Run("thread", _now())

        def target() -> None:
            try:
                run.result = train(config, spec.data_uri, spec.output_uri)
            except BaseException as exc:
                run.error = exc
                run.detail["traceback"] = traceback.format_exc()
            finally:
                run.ended = _now()

        run.thread = threading.Thread(
            target=target, name=f"mlops-kit-train-{spec.name}", daemon=True
        )
        run.thread.start()
        return run

    # -- status ---------------------------------------------------------------------------------

    @staticmethod
    def _alive(run: _Run) -> bool:
        if run.thread is not None:
            return run.thread.is_alive()
        return run.process is not None and run.process.poll() is None

    def _run(self, handle: JobHandle) -> _Run:
        with self._lock:
            run = self._runs.get(handle.name)
        if run is None:
            raise LaunchError(f"no local job named '{handle.name}' was started by this launcher")
        return run

    @staticmethod
    def _failure_from_log(path: Path | None) -> tuple[str | None, str | None]:
        if path is None or not path.exists():
            return None, None
        lines = path.read_text(errors="replace").splitlines()
        for line in reversed(lines):
            # ranks of one job share the log: two error lines may have run together
            found = list(_ERROR_LINE.finditer(line.strip()))
            if found:
                return found[-1].group("code"), found[-1].group("message")
        tail = [ln for ln in lines if ln.strip()][-5:]
        return None, "\n".join(tail) or None

    def status(self, handle: JobHandle) -> JobStatus:
        run = self._run(handle)
        if run.thread is not None:
            if run.thread.is_alive():
                return JobStatus(JobPhase.RUNNING, start_time=run.started)
            if run.error is None:
                return JobStatus(
                    JobPhase.SUCCEEDED,
                    "Completed",
                    None,
                    run.started,
                    run.ended,
                    {"result": run.result},
                )
            reason = (
                run.error.code if isinstance(run.error, MlopsKitError) else type(run.error).__name__
            )
            return JobStatus(
                JobPhase.FAILED, reason, str(run.error), run.started, run.ended, dict(run.detail)
            )
        assert run.process is not None
        code = run.process.poll()
        if code is None:
            return JobStatus(JobPhase.RUNNING, start_time=run.started)
        if run.ended is None:
            run.ended = _now()
        raw: dict[str, Any] = {"returncode": code, "log": str(run.log_path)}
        if code == 0:
            return JobStatus(JobPhase.SUCCEEDED, "Completed", None, run.started, run.ended, raw)
        error_code, message = self._failure_from_log(run.log_path)
        return JobStatus(
            JobPhase.FAILED,
            error_code or f"ExitCode{code}",
            message,
            run.started,
            run.ended,
            raw,
        )

    def wait(
        self,
        handle: JobHandle,
        timeout: float | None = None,
        poll: float | None = None,
        *,
        raise_on_failure: bool = True,
    ) -> JobStatus:
        run = self._run(handle)
        deadline = None if timeout is None else time.monotonic() + timeout
        if run.thread is not None:
            run.thread.join(timeout)
        elif run.process is not None:
            try:
                run.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        return super().wait(handle, timeout=remaining, poll=poll, raise_on_failure=raise_on_failure)

    def cancel(self, handle: JobHandle) -> None:
        """Stop a subprocess job (threads cannot be stopped; they run to their end)."""
        run = self._run(handle)
        if run.process is not None and run.process.poll() is None:
            run.process.terminate()
            try:
                run.process.wait(10)
            except subprocess.TimeoutExpired:
                run.process.kill()


__all__ = ["LocalLauncher", "Mode"]

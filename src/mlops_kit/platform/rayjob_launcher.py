"""Submit RayJobs (:mod:`mlops_kit.platform.rayjob`) to the cluster and follow them::

    launcher = RayJobLauncher(settings)
    handle = launcher.submit(["mlops-kit", "etl", "run"])
    print(launcher.logs_command(handle))    # kubectl logs -n data-pipeline job/<name> --follow
    status = launcher.wait(handle, timeout=3600)

Objects go through ``kubernetes.client.CustomObjectsApi`` with the client set-up of the EKS
training launcher (a kubeconfig and context, else the in-cluster service account), checked
first with :func:`~mlops_kit.platform.rayjob.check_rayjob`. A submit is idempotent: when a
RayJob of that name exists with the same spec (its digest annotation), it is followed rather
than created again; one with another spec is refused, since KubeRay does not run a RayJob
again when its spec changes. Statuses map onto the launchers'
:class:`~mlops_kit.training.launchers.base.JobPhase` (:func:`rayjob_status`).
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from mlops_kit._lazy import require
from mlops_kit.config import Settings, load_settings
from mlops_kit.platform.errors import (
    RayJobExistsError,
    RayJobFailedError,
    RayJobSubmitError,
    RayJobTimeoutError,
)
from mlops_kit.platform.rayjob import (
    GROUP,
    KIND,
    PLURAL,
    SPEC_ANNOTATION,
    VERSION,
    build_rayjob,
    check_rayjob,
    spec_digest,
)
from mlops_kit.training.launchers.base import JobHandle, JobPhase, JobStatus, LaunchError
from mlops_kit.training.launchers.eks import EksLauncher


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def rayjob_status(obj: Mapping[str, Any]) -> JobStatus:
    """The :class:`JobStatus` of a RayJob from ``status.jobDeploymentStatus`` and
    ``status.jobStatus``.

    ``Failed`` and ``ValidationFailed`` deployments are Failed; ``Complete`` is Succeeded
    when the Ray job SUCCEEDED, else Failed (a STOPPED job); the deployment ``Running`` is
    Running once the Ray job runs (or has ended and its submitter is finishing), else
    Pending, as are ``Initializing``, ``Retrying``, ``Suspended`` and a new RayJob. The
    reason is the operator's (``AppFailed``, ``DeadlineExceeded``, ...), else the Ray job's
    or the deployment's status.
    """
    status = _dict(obj.get("status"))
    deployment = str(status.get("jobDeploymentStatus") or "")
    job = str(status.get("jobStatus") or "")
    times = (_time(status.get("startTime")), _time(status.get("endTime")))
    message = status.get("message") or None
    if deployment in ("Failed", "ValidationFailed") or (
        deployment == "Complete" and job != "SUCCEEDED"
    ):
        phase, reason = JobPhase.FAILED, status.get("reason") or job or deployment
    elif deployment == "Complete":
        phase, reason = JobPhase.SUCCEEDED, status.get("reason") or None
    elif deployment == "Running" and job in ("RUNNING", "SUCCEEDED", "FAILED", "STOPPED"):
        phase, reason = JobPhase.RUNNING, status.get("reason") or None
    else:
        phase, reason = JobPhase.PENDING, status.get("reason") or job or deployment or "New"
    return JobStatus(phase, reason, message, *times, raw=status)


# -- launcher ---------------------------------------------------------------------------------


class RayJobLauncher:
    """Submits RayJobs through the Kubernetes API and follows them.

    Args:
        settings: mlops_kit settings (``ray``, ``images.pipeline``, the cluster's roles and
            everything the command reads); default: loaded from the environment.
        api_client: a ``kubernetes.client.ApiClient``; default: from ``kubeconfig`` /
            ``context``, or the in-cluster service account.
        kubeconfig: kubeconfig file (default ``$KUBECONFIG`` or ``~/.kube/config``).
        context: kubeconfig context (e.g. the EKS cluster's ARN).
        crd: the RayJob CRD (``ray.io_rayjobs.yaml``) to check every object against before
            it is sent; KubeRay's own rules are always checked.
        customize: called with each built object before the checks; may edit it in place or
            return a replacement (e.g. to add node selectors or annotations).
    """

    backend: ClassVar[str] = "eks"
    default_poll_s: ClassVar[float] = 15.0

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        api_client: Any = None,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        crd: str | os.PathLike[str] | None = None,
        customize: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
    ) -> None:
        self.settings = settings if settings is not None else load_settings()
        self._client = EksLauncher(
            self.settings, api_client=api_client, kubeconfig=kubeconfig, context=context
        )
        self._crd = crd
        self._customize = customize

    def build(self, entrypoint: Sequence[str], *, name: str | None = None) -> dict[str, Any]:
        """The object :meth:`submit` would send (built, customized, checked).

        Raises:
            RayJobConfigError: a setting or argument cannot work on the cluster (named).
            RayJobInvalidError: the object breaks the CRD or KubeRay's rules.
        """
        obj = build_rayjob(self.settings, entrypoint, name=name)
        if self._customize is not None:
            replaced = self._customize(obj)
            if replaced is not None:
                obj = replaced
            obj["metadata"].setdefault("annotations", {})[SPEC_ANNOTATION] = spec_digest(
                obj.get("spec") or {}
            )
        check_rayjob(obj, self._crd)
        return obj

    def handle(self, name: str, namespace: str | None = None) -> JobHandle:
        """The handle of the RayJob ``name`` (in ``ray.namespace`` unless told)."""
        return JobHandle(self.backend, name, KIND, namespace or self.settings.ray.namespace)

    # -- API ------------------------------------------------------------------------------------

    def _api(self) -> Any:
        require("kubernetes", "submitting RayJobs")
        try:
            return self._client.custom_objects()
        except LaunchError as exc:
            raise RayJobSubmitError(exc.message) from None

    @staticmethod
    def _error(exc: Any, what: str) -> RayJobSubmitError:
        error = EksLauncher.api_error(exc, what)
        return RayJobSubmitError(error.message, http_status=error.details.get("status"))

    def submit(self, entrypoint: Sequence[str], *, name: str | None = None) -> JobHandle:
        """Check and create the RayJob running ``entrypoint``; returns without waiting.

        Raises:
            RayJobConfigError, RayJobInvalidError: nothing was sent (see :meth:`build`).
            RayJobExistsError: a RayJob of that name exists with another spec.
            RayJobSubmitError: the API server refused it or could not be reached.
        """
        obj = self.build(entrypoint, name=name)
        api = self._api()
        k8s = require("kubernetes")
        handle = self.handle(obj["metadata"]["name"], obj["metadata"]["namespace"])
        try:
            created = api.create_namespaced_custom_object(
                GROUP, VERSION, handle.namespace, PLURAL, obj
            )
        except k8s.client.ApiException as exc:
            if exc.status != 409:
                where = f"{handle.namespace}/{handle.name}"
                raise self._error(exc, f"creating RayJob {where}") from None
            created = self._same(handle, obj)
        uid = _dict(_dict(created).get("metadata")).get("uid")
        return JobHandle(self.backend, handle.name, KIND, handle.namespace, uid)

    def _same(self, handle: JobHandle, obj: Mapping[str, Any]) -> dict[str, Any]:
        existing = self.get(handle)
        theirs = _dict(_dict(existing.get("metadata")).get("annotations")).get(SPEC_ANNOTATION)
        if theirs != obj["metadata"]["annotations"][SPEC_ANNOTATION]:
            ns, name = handle.namespace, handle.name
            raise RayJobExistsError(
                f"RayJob {ns}/{name} already exists with another spec, and KubeRay does not "
                "run a RayJob again when its spec changes; pick another name (--name) or "
                f"delete it first (kubectl delete rayjob -n {ns} {name})",
                http_status=409,
            )
        return existing

    def get(self, handle: JobHandle) -> dict[str, Any]:
        """The RayJob as the API server has it now.

        Raises:
            RayJobSubmitError: it does not exist (HTTP 404) or the API cannot be read.
        """
        api = self._api()
        k8s = require("kubernetes")
        namespace = handle.namespace or self.settings.ray.namespace
        try:
            obj = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, handle.name)
        except k8s.client.ApiException as exc:
            raise self._error(exc, f"reading RayJob {namespace}/{handle.name}") from None
        return dict(obj)

    def status(self, handle: JobHandle) -> JobStatus:
        """The RayJob's current status (:func:`rayjob_status`)."""
        return rayjob_status(self.get(handle))

    def wait(
        self,
        handle: JobHandle,
        timeout: float | None = None,
        poll: float | None = None,
        *,
        raise_on_failure: bool = True,
        on_status: Callable[[JobStatus], None] | None = None,
    ) -> JobStatus:
        """Poll :meth:`status` until the RayJob succeeds or fails.

        Args:
            handle: the submitted RayJob.
            timeout: seconds to wait at most; None waits for ever.
            poll: seconds between polls (default :attr:`default_poll_s`).
            raise_on_failure: raise :class:`RayJobFailedError` when it fails (otherwise
                return its Failed status).
            on_status: called with every status read (e.g. to print changes).

        Raises:
            RayJobFailedError: it failed (the operator's reason and message in the text).
            RayJobTimeoutError: ``timeout`` passed first.
        """
        interval = self.default_poll_s if poll is None else poll
        deadline = None if timeout is None else time.monotonic() + timeout
        status = self.status(handle)
        while not status.done:
            if on_status is not None:
                on_status(status)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise RayJobTimeoutError(
                    f"RayJob '{handle.name}' did not finish within {timeout:g} s (last "
                    f"status: {status.describe()}); follow it with: {self.logs_command(handle)}",
                    status=status,
                )
            time.sleep(interval if left is None else min(interval, left))
            status = self.status(handle)
        if on_status is not None:
            on_status(status)
        if status.phase is JobPhase.FAILED and raise_on_failure:
            raise RayJobFailedError(
                f"RayJob '{handle.name}' failed: {status.describe()}; its logs: "
                f"{self.logs_command(handle)}",
                status=status,
            )
        return status

    def logs_command(self, handle: JobHandle) -> str:
        """The command that prints the job's output: the logs of KubeRay's submitter Job,
        which follows the Ray job (named after the RayJob)."""
        namespace = handle.namespace or self.settings.ray.namespace
        return shlex.join(["kubectl", "logs", "-n", namespace, f"job/{handle.name}", "--follow"])


__all__ = ["RayJobLauncher", "rayjob_status"]

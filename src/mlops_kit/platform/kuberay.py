"""Pieces of the KubeRay objects mlops_kit generates, shared by the RayJob
(:mod:`mlops_kit.platform.rayjob`) and the RayService (:mod:`mlops_kit.serving.deploy`).

Pure functions of their arguments that return plain dicts (no Kubernetes or Ray import):

* :func:`settings_env` -- the ``MLOPS_KIT_*`` variables that rebuild the settings in a pod
  (never a password: a URL carrying one is refused);
* :func:`labels` -- the labels of every generated object;
* :func:`ray_container` and :func:`pod_template` -- a Ray node's container (requests equal
  to limits) and its pod template, run as non-root with every capability dropped;
* :func:`service_account` -- the ServiceAccount carrying a workload's IRSA role;
* :func:`manifest_yaml` -- objects as YAML documents (block scalars, no anchors).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import BaseModel

from mlops_kit._version import __version__
from mlops_kit.config import Settings
from mlops_kit.platform.errors import SettingsSecretError

ENV_PREFIX = "MLOPS_KIT_"
ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
"""The annotation that gives a service account's pods an IAM role (IRSA)."""
POD_SECURITY: Mapping[str, Any] = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY: Mapping[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}
HEAD_PORTS: Mapping[str, int] = {
    "gcs-server": 6379,
    "dashboard": 8265,
    "client": 10001,
    "metrics": 8080,
}
"""The ports of a Ray head: GCS, dashboard (job submission), Ray client, metrics."""
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
"""A Kubernetes namespace name (RFC 1123 label; at most 63 characters besides)."""

_PASSWORD_IN_URL = re.compile(r"://[^/@:\s]+:[^/@\s]+@")


def _env_leaves(model: BaseModel, prefix: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in model.model_dump(mode="json", exclude_defaults=True).items():
        key = f"{prefix}{name.upper()}"
        child = getattr(model, name)
        if isinstance(child, BaseModel):
            out.update(_env_leaves(child, f"{key}__"))
        elif isinstance(value, (dict, list)):
            out[key] = json.dumps(value, sort_keys=True)
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif value is not None:
            out[key] = str(value)
        if isinstance(value, str) and _PASSWORD_IN_URL.search(value):
            dotted = key.removeprefix(ENV_PREFIX).lower().replace("__", ".")
            raise SettingsSecretError(
                f"{dotted}: the URL carries a password, which would be written in clear into "
                "the generated files (as an environment variable of the pods or the Serve "
                "application); leave it out of the URL (the warehouse reads it from "
                "warehouse.secret_arn, MLflow from its own environment)",
                field=dotted,
            )
    return out


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``MLOPS_KIT_*`` environment variables that rebuild ``settings`` in a pod.

    Every value that differs from its default, nested sections joined with ``__``, lists
    and mappings as JSON, sorted by name: ``load_settings()`` with these variables set (and
    no config file) equals ``settings``.

    Raises:
        SettingsSecretError: a URL carries a password (names the setting).
    """
    return dict(sorted(_env_leaves(settings, ENV_PREFIX).items()))


def labels(name: str) -> dict[str, str]:
    """The labels of every object and pod mlops_kit generates, ``name`` its component (e.g.
    ``mlops-kit-serving``)."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": "mlops-kit",
        "app.kubernetes.io/managed-by": "mlops-kit",
        "app.kubernetes.io/version": __version__,
    }


def ray_container(
    name: str,
    image: str,
    ports: Mapping[str, int],
    resources: Mapping[str, str],
    **extra: Any,
) -> dict[str, Any]:
    """A Ray node's container: ``resources`` as both requests and limits (Guaranteed QoS),
    no privilege escalation, no capability; ``extra`` fields (``env``, ``volumeMounts``)
    follow."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": k, "containerPort": v} for k, v in ports.items()],
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "securityContext": copy.deepcopy(dict(CONTAINER_SECURITY)),
        **extra,
    }


def pod_template(
    container: dict[str, Any],
    account: str | None,
    *,
    labels: Mapping[str, str],
    annotations: Mapping[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The pod template of one container, run as non-root under ``account`` (the namespace's
    default service account when None); ``extra`` pod fields (``volumes``) follow."""
    spec: dict[str, Any] = {"securityContext": copy.deepcopy(dict(POD_SECURITY))}
    spec["containers"] = [container]
    if account:
        spec["serviceAccountName"] = account
    spec.update(extra)
    metadata: dict[str, Any] = {"labels": dict(labels)}
    if annotations is not None:
        metadata["annotations"] = dict(annotations)
    return {"metadata": metadata, "spec": spec}


def service_account(
    name: str, namespace: str, role_arn: str, labels: Mapping[str, str]
) -> dict[str, Any]:
    """A ServiceAccount whose pods take the IAM role ``role_arn`` (IRSA)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": {ROLE_ANNOTATION: role_arn},
        },
    }


class _Dumper(yaml.SafeDumper):
    """Block scalars for multi-line strings, no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def manifest_yaml(*objects: Any) -> str:
    """``objects`` as YAML, keys in their order; several as documents after ``---``."""
    return yaml.dump_all(
        objects, Dumper=_Dumper, sort_keys=False, width=1000, explicit_start=len(objects) > 1
    )


__all__ = [
    "CONTAINER_SECURITY",
    "DNS_LABEL",
    "ENV_PREFIX",
    "HEAD_PORTS",
    "POD_SECURITY",
    "ROLE_ANNOTATION",
    "labels",
    "manifest_yaml",
    "pod_template",
    "ray_container",
    "service_account",
    "settings_env",
]

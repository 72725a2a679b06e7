"""Where Ray work runs: the cluster the ``ray`` settings name, joined once per process.

The ETL's ``ray`` backend and Feast's Ray engine both start here::

    from mlops_kit.compute import ray_session
    ray = ray_session(settings)      # joined (or started) once; later calls reuse it

``ray.address`` unset starts a local cluster in this process with ``ray.num_cpus`` CPUs
(default: the machine's cores), as a notebook or a test wants; ``auto``, ``<head>:6379``
or ``ray://<head>:10001`` join an existing cluster (a KubeRay ``RayJob`` sets
``RAY_ADDRESS`` for its entrypoint, which ``auto`` follows).
"""

from __future__ import annotations

import logging
import os
from types import ModuleType
from typing import Any

from mlops_kit._lazy import require
from mlops_kit.config import Settings
from mlops_kit.errors import ConfigError


def ray_session(settings: Settings) -> ModuleType:
    """The ``ray`` module, with this process joined to the settings' cluster.

    Raises:
        MissingExtraError: Ray is not installed (extra ``serve``).
        ConfigError: naming ``ray.address`` when no cluster answers there.
    """
    ray = require("ray", "running on Ray")
    if ray.is_initialized():
        return ray
    opts: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    address = settings.ray.address or os.environ.get("RAY_ADDRESS")
    if address:
        try:
            ray.init(address=address, **opts)
        except ConnectionError as exc:
            raise ConfigError(
                f"ray.address: no Ray cluster answers at '{address}' ({exc}); start one "
                "('ray start --head') or unset ray.address to run a local cluster"
            ) from None
        return ray
    cpus = settings.ray.num_cpus or os.cpu_count() or 1
    ray.init(num_cpus=cpus, include_dashboard=False, **opts)
    return ray


def cluster_cpus(settings: Settings) -> int:
    """CPUs of the cluster this process is joined to (joining it first)."""
    ray = ray_session(settings)
    return int(ray.cluster_resources().get("CPU", 1))

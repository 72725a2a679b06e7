"""Deployable configuration of the inference service: a Ray Serve config and a RayService.

Pure functions of the settings (no Ray import):

* :func:`serve_config` -- the Ray Serve config file of ``serve deploy`` / ``serve build``:
  one application built by ``mlops_kit.serving.ray_app:build`` with its three deployments
  ``ingress``, ``stable`` and ``canary``, the rollout in their ``user_config`` and the
  settings in the application's ``runtime_env`` (``MLOPS_KIT_*`` variables, see
  :func:`settings_env`);
* :func:`ray_service` -- a KubeRay ``RayService`` (``ray.io/v1``) running that application
  on EKS, and :func:`service_account`, the service account carrying the IRSA role of the
  ``inference`` workload;
* :func:`check_ray_service` -- a RayService against the RayService CRD, with the project's
  validator (:mod:`mlops_kit.training.launchers.crd`);
* :func:`write_serving_folder` -- ``serve_config.yaml`` and ``rayservice.yaml``, as
  committed in the repository's ``serving/`` folder.

Usage::

    python -m mlops_kit.serving.deploy --out-dir serving      # from the settings in effect
    python -m mlops_kit.serving.deploy --settings serving/example_settings.yaml \
        --out-dir serving --check                              # the repository's folder
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from mlops_kit._version import __version__
from mlops_kit.config import Settings, load_settings
from mlops_kit.errors import ConfigError, format_validation_error
from mlops_kit.platform import kuberay
from mlops_kit.platform.errors import SettingsSecretError
from mlops_kit.serving.errors import RayServiceInvalidError, ServingConfigError

IMPORT_PATH = "mlops_kit.serving.ray_app:build"
"""The Serve application builder the config deploys (called with the ``args``)."""
DEPLOYMENTS = ("ingress", "stable", "canary")
ACTOR_CPUS = {"ingress": 0.5, "stable": 0.75, "canary": 0.75}
"""CPUs Ray reserves for one replica of each deployment. A worker pod holds a stable and a
canary replica, which split the traffic and so keep about one core busy together (ONNX
Runtime scores with one thread); the ingress (one replica, its replicas and request limit
set by the application) parses and routes, in the room left."""
WORKER_RESOURCES = {"cpu": "2", "memory": "4Gi"}
"""Requests and limits of a worker pod (Guaranteed QoS)."""
HEAD_RESOURCES = {"cpu": "1", "memory": "4Gi"}
"""Requests and limits of the head pod (GCS, Serve controller, a proxy; no replicas)."""
SERVE_PORT = 8000
"""Ray Serve's HTTP port in the cluster (``serveConfigV2`` leaves ``http_options`` to Serve)."""
METRICS_PATH = "/metrics"
SERVICE_ACCOUNT = "inference"
"""Service account of the pods; Terraform trusts ``ai-inference/inference`` for the role."""
IRSA_WORKLOAD = "inference"
"""Key of ``cluster.service_account_roles`` holding the pods' IAM role."""
ROLE_ANNOTATION = kuberay.ROLE_ANNOTATION
UPGRADE_STRATEGY = "NewCluster"
SERVE_CONFIG_FILE = "serve_config.yaml"
RAYSERVICE_FILE = "rayservice.yaml"
COMMAND = "python -m mlops_kit.serving.deploy"
EXAMPLE_SETTINGS = "serving/example_settings.yaml"
EXAMPLE_COMMAND = f"{COMMAND} --settings {EXAMPLE_SETTINGS} --out-dir serving"
"""Regenerates the repository's ``serving/`` folder (from the repository root)."""

ENV_PREFIX = kuberay.ENV_PREFIX
_DNS_LABEL = kuberay.DNS_LABEL
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_LABELS = kuberay.labels("mlops-kit-serving")


class _GivenSettings(Settings):
    """Settings from the values given only: no environment, no config file."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def settings_from_file(path: str | os.PathLike[str]) -> Settings:
    """Settings from the YAML file at ``path`` alone: no environment, no other config file
    (``serving/example_settings.yaml`` regenerates the same folder on any machine).

    Raises:
        ConfigError: the file is unreadable or a setting is invalid (named).
    """
    try:
        with open(path, encoding="utf-8") as fh:
            values = yaml.safe_load(fh) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"settings file {path}: cannot read it as YAML ({exc})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"settings file {path}: needs a mapping of settings at the top")
    try:
        return _GivenSettings(**values)
    except ValidationError as exc:
        what = f"settings in {path}"
        raise ConfigError(format_validation_error(exc, what, root="settings")) from None


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``MLOPS_KIT_*`` environment variables that rebuild ``settings`` in a replica.

    :func:`mlops_kit.platform.kuberay.settings_env`: every value that differs from its
    default, nested sections joined with ``__``, lists and mappings as JSON;
    ``load_settings()`` with these variables set (and no config file) equals ``settings``.

    Raises:
        ServingConfigError: a URL carries a password (names the setting).
    """
    try:
        return kuberay.settings_env(settings)
    except SettingsSecretError as exc:
        raise ServingConfigError(exc.message, field=exc.field) from None


def _check_rollout(
    stable_version: str | None, canary_version: str | None, canary_weight: float
) -> float:
    for field, value in (("stable_version", stable_version), ("canary_version", canary_version)):
        if value is not None and (not isinstance(value, str) or not _VERSION.match(value)):
            raise ServingConfigError(
                f"{field}: {value!r} is not a registered model version; give the version "
                "as the registry shows it (e.g. '3'), or None to follow the alias",
                field=field,
            )
    if (
        isinstance(canary_weight, bool)
        or not isinstance(canary_weight, (int, float))
        or not 0.0 <= canary_weight <= 1.0
    ):
        raise ServingConfigError(
            f"canary_weight: {canary_weight!r} is not a share of traffic; give a number "
            "from 0 (all to the stable) to 1 (all to the canary)",
            field="canary_weight",
        )
    if canary_weight > 0 and canary_version is None:
        raise ServingConfigError(
            f"canary_weight: {canary_weight} sends traffic to a canary but canary_version is "
            "None; name the canary's version or set canary_weight to 0",
            field="canary_weight",
        )
    if canary_version is not None and canary_version == stable_version:
        raise ServingConfigError(
            f"canary_version: '{canary_version}' is also the stable version; a canary "
            "must be another version (or None for no canary)",
            field="canary_version",
        )
    return float(canary_weight)


def _dns_label(value: str, field: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ServingConfigError(
            f"{field}: '{value}' is not a Kubernetes name; use at most 63 lower-case "
            "letters, digits and '-', starting and ending with a letter or digit",
            field=field,
        )
    return value


def replica_env(settings: Settings) -> dict[str, str]:
    """:func:`settings_env` without the rollout's own settings, which the replicas do not
    read: changing a threshold does not change the application's environment, so it does
    not restart the replicas."""
    skip = f"{ENV_PREFIX}SERVING__ROLLOUT"
    return {k: v for k, v in settings_env(settings).items() if not k.startswith(skip)}


def serve_config(
    settings: Settings,
    *,
    stable_version: str | None = None,
    canary_version: str | None = None,
    canary_weight: float = 0.0,
    canary_fault_rate: float = 0.0,
    step: int = 0,
    stable_model: Mapping[str, Any] | None = None,
    canary_model: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Ray Serve config file of the inference service (``serve deploy`` schema).

    One application, ``settings.serving.app_name`` at route ``/``, built by
    :data:`IMPORT_PATH` with ``args`` ``alias``, ``model`` and ``config`` (the versions
    and the weight are in the deployments' ``user_config`` only, so changing them
    reconfigures the running replicas instead of replacing them); ``config`` None: the
    replicas build their settings from the ``MLOPS_KIT_*`` variables of the application's
    ``runtime_env`` (see :func:`replica_env`). Its deployments: ``ingress`` (the weight in its
    ``user_config``), ``stable`` and ``canary`` (``{"version": ...}``: None follows the
    alias on the stable, leaves the canary idle; with the version's model reference as
    ``model`` when one is given), the model deployments with
    ``serving.replicas`` replicas and ``serving.max_ongoing_requests``; each with the CPUs
    of :data:`ACTOR_CPUS`. The HTTP proxy binds ``serving.host:serving.port``.

    Args:
        settings: mlops_kit settings (serving, registry, and everything the replicas need).
        stable_version: registered version the stable serves (None: the alias's).
        canary_version: registered version of the canary (None: no canary).
        canary_weight: share of requests sent to the canary, 0 to 1.
        canary_fault_rate: share of the canary's requests failed on purpose (a rollback
            rehearsal; 0 in production).
        step: the rollout step (published as a metric).
        stable_model: the stable version's model reference
            (:meth:`~mlops_kit.registry.versions.RegistryVersions.locate`, as ``to_dict()``),
            put in the stable's ``user_config`` as ``model``: its replicas load the files
            it names instead of looking the version up in the registry.
        canary_model: the same for the canary version.

    Raises:
        ServingConfigError: naming the bad argument or setting.
    """
    weight = _check_rollout(stable_version, canary_version, canary_weight)
    models = {"stable": stable_model, "canary": canary_model}
    versions = {"stable": stable_version, "canary": canary_version}
    for side, ref in models.items():
        if ref is None:
            continue
        of = ref.get("version") if isinstance(ref, Mapping) else None
        if of is None or of != versions[side]:
            what = f"a reference to version {of!r}" if of is not None else f"{ref!r}"
            raise ServingConfigError(
                f"{side}_model: {what} is no model reference of {side}_version "
                f"{versions[side]!r}; pass the reference ray_app.locate gives for that "
                f"version (or None, and the {side}'s replicas look it up in the registry)",
                field=f"{side}_model",
            )
    serving = settings.serving
    rollout: dict[str, Any] = {"stable_version": stable_version, "canary_version": canary_version}
    rollout["canary_weight"] = weight
    user_configs: dict[str, dict[str, Any]] = {
        "ingress": {**rollout, "step": step},
        "stable": {"version": stable_version},
        "canary": {"version": canary_version, "fault_rate": canary_fault_rate},
    }
    for side, ref in models.items():
        if ref is not None:
            user_configs[side]["model"] = dict(ref)
    sizes = {"num_replicas": serving.replicas, "max_ongoing_requests": serving.max_ongoing_requests}
    deployments = [
        {
            "name": name,
            **(sizes if name != "ingress" else {}),
            "user_config": user_configs[name],
            "ray_actor_options": {"num_cpus": ACTOR_CPUS[name]},
        }
        for name in DEPLOYMENTS
    ]
    application = {
        "name": serving.app_name,
        "route_prefix": "/",
        "import_path": IMPORT_PATH,
        "args": {"alias": serving.alias, "model": settings.registry.model_name, "config": None},
        "runtime_env": {"env_vars": replica_env(settings)},
        "deployments": deployments,
    }
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": serving.host, "port": serving.port},
        "applications": [application],
    }


def ray_version() -> str:
    """The Ray version of the serving image: the installed ``ray`` (the ``serve`` extra's pin).

    Raises:
        ServingConfigError: ray is not installed here.
    """
    try:
        return importlib.metadata.version("ray")
    except importlib.metadata.PackageNotFoundError:
        raise ServingConfigError(
            "rayVersion: the RayService names the Ray version of its image, read from the "
            "installed ray; install it with pip install 'mlops-kit[serve]'",
            field="rayVersion",
        ) from None


def serving_image(settings: Settings) -> str:
    """``settings.images.serving`` tagged with the package version (kept when tagged).

    Raises:
        ServingConfigError: the setting is unset or not an image reference.
    """
    repo = settings.images.serving
    if not repo:
        raise ServingConfigError(
            "images.serving: the RayService needs the serving image repository; set it "
            "(MLOPS_KIT_IMAGES__SERVING, the ECR repository URL from the Terraform output "
            "ecr_repository_urls, or 'mlops-kit config from-terraform')",
            field="images.serving",
        )
    if any(c.isspace() for c in repo) or len(repo) > 500:
        raise ServingConfigError(
            f"images.serving: '{repo}' is not a valid image reference", field="images.serving"
        )
    last = repo.rsplit("/", 1)[-1]
    return repo if ":" in last or "@" in last else f"{repo}:{__version__}"


def service_account(settings: Settings) -> dict[str, Any] | None:
    """The ``inference`` service account carrying the IRSA role, or None without a role.

    The role is ``settings.cluster.service_account_roles["inference"]`` (the Terraform
    output ``service_account_role_arns.inference``); Terraform's trust policy names the
    ``ai-inference/inference`` service account, so keep ``serving.namespace`` at
    ``ai-inference`` or change both.
    """
    role = settings.cluster.service_account_roles.get(IRSA_WORKLOAD)
    if not role:
        return None
    namespace = _dns_label(settings.serving.namespace, "serving.namespace")
    return kuberay.service_account(SERVICE_ACCOUNT, namespace, role, _LABELS)


def _pod_template(container: dict[str, Any], account: str | None) -> dict[str, Any]:
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(SERVE_PORT),
        "prometheus.io/path": METRICS_PATH,
    }
    return kuberay.pod_template(container, account, labels=_LABELS, annotations=annotations)


def ray_service(
    settings: Settings,
    *,
    stable_version: str | None = None,
    canary_version: str | None = None,
    canary_weight: float = 0.0,
) -> dict[str, Any]:
    """A KubeRay ``RayService`` (``ray.io/v1``) running :func:`serve_config`'s application.

    ``metadata``: ``serving.app_name`` in ``serving.namespace``. ``spec.serveConfigV2`` is
    the Serve config's ``applications`` as a YAML string (the proxies keep Serve's own
    ``0.0.0.0:8000``, the container port ``serve``). ``spec.rayClusterConfig``: the
    installed Ray version (:func:`ray_version`), the serving image (:func:`serving_image`)
    on a head pod that runs no replica (``num-cpus: 0``, left out of the serve Service)
    and one worker group of ``serving.replicas`` pods of :data:`WORKER_RESOURCES`, room
    for the replicas of every deployment; pods run as non-root, annotated for
    Prometheus (``/metrics`` on the serve port), under the :data:`SERVICE_ACCOUNT` service
    account when the IRSA role is configured (:func:`service_account`).

    ``spec.upgradeStrategy.type`` is ``NewCluster``, KubeRay's zero-downtime cluster
    upgrade: a change to the cluster config starts a new RayCluster beside the running
    one and moves the serve Service to it once its applications are healthy. Of the other
    types, ``None`` never upgrades the cluster and ``NewClusterWithIncrementalUpgrade``
    (alpha; it needs the Gateway API and ``clusterUpgradeOptions``) shifts traffic in steps.
    A change to ``serveConfigV2`` alone (a rollout step) is applied in place.

    Args:
        settings: mlops_kit settings (serving, images.serving, cluster.service_account_roles).
        stable_version: see :func:`serve_config`.
        canary_version: see :func:`serve_config`.
        canary_weight: see :func:`serve_config`.

    Raises:
        ServingConfigError: naming the bad argument or setting.
    """
    config = serve_config(
        settings,
        stable_version=stable_version,
        canary_version=canary_version,
        canary_weight=canary_weight,
    )
    serving = settings.serving
    name = _dns_label(serving.app_name, "serving.app_name")
    namespace = _dns_label(serving.namespace, "serving.namespace")
    image = serving_image(settings)
    account = SERVICE_ACCOUNT if service_account(settings) else None
    ports = {"serve": SERVE_PORT, "metrics": kuberay.HEAD_PORTS["metrics"]}
    head = kuberay.ray_container("ray-head", image, {**kuberay.HEAD_PORTS, **ports}, HEAD_RESOURCES)
    worker = kuberay.ray_container("ray-worker", image, ports, WORKER_RESOURCES)
    serve_v2 = kuberay.manifest_yaml({"applications": config["applications"]})
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(_LABELS)},
        "spec": {
            "serveConfigV2": serve_v2,
            "upgradeStrategy": {"type": UPGRADE_STRATEGY},
            "excludeHeadPodFromServeSvc": True,
            "rayClusterConfig": {
                "rayVersion": ray_version(),
                "headGroupSpec": {
                    "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
                    "template": _pod_template(head, account),
                },
                "workerGroupSpecs": [
                    {
                        "groupName": "serving",
                        "replicas": serving.replicas,
                        "minReplicas": serving.replicas,
                        "maxReplicas": serving.replicas,
                        "rayStartParams": {"num-cpus": WORKER_RESOURCES["cpu"]},
                        "template": _pod_template(worker, account),
                    }
                ],
            },
        },
    }


def check_ray_service(obj: Mapping[str, Any], crd_path: str | os.PathLike[str]) -> None:
    """Check a RayService against the RayService CRD at ``crd_path``.

    Validates with :mod:`mlops_kit.training.launchers.crd` (the CRD's ``openAPIV3Schema``,
    strict about unknown fields, and its CEL rules), and that ``spec.serveConfigV2`` is a
    YAML mapping with a list of ``applications``.

    Raises:
        RayServiceInvalidError: listing each bad field (``errors``), first named.
        ServingConfigError: ``crd_path`` is not a readable RayService CRD.
    """
    from mlops_kit.training.launchers.crd import load_crd_of, validate_object

    def refuse(reason: str) -> ServingConfigError:
        return ServingConfigError(
            f"crd_path: {reason}; give the path of ray.io_rayservices.yaml from KubeRay's "
            "ray-operator/config/crd/bases",
            field="crd_path",
        )

    crd = load_crd_of(crd_path, "ray.io", "RayService", refuse)
    errors = validate_object(obj, crd)
    text = (obj.get("spec") or {}).get("serveConfigV2")
    try:
        parsed = yaml.safe_load(text) if isinstance(text, str) else {"applications": []}
    except yaml.YAMLError:
        parsed = None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("applications"), list):
        errors.append("spec.serveConfigV2: needs YAML: a mapping with a list of applications")
    if errors:
        name = (obj.get("metadata") or {}).get("name", "?")
        raise RayServiceInvalidError(
            f"RayService '{name}' does not match the {crd.api_version} CRD "
            f"({errors[0].split(':', 1)[0]}):\n  " + "\n  ".join(errors),
            errors=errors,
        )


def render(settings: Settings, **rollout: Any) -> dict[str, str]:
    """File name -> YAML text of :func:`write_serving_folder`, in memory."""
    head = f"# Generated by {COMMAND} (mlops_kit {__version__}): edit the settings, not this.\n"
    objects = [service_account(settings), ray_service(settings, **rollout)]
    return {
        SERVE_CONFIG_FILE: head + kuberay.manifest_yaml(serve_config(settings, **rollout)),
        RAYSERVICE_FILE: head + kuberay.manifest_yaml(*[o for o in objects if o is not None]),
    }


def write_serving_folder(
    settings: Settings, out_dir: str | os.PathLike[str], **rollout: Any
) -> list[Path]:
    """Write ``serve_config.yaml`` (:func:`serve_config`) and ``rayservice.yaml`` (the
    :func:`service_account` when a role is configured, then the :func:`ray_service`) into
    ``out_dir``; nothing else is written or copied.

    Args:
        settings: mlops_kit settings.
        out_dir: the folder (created when missing).
        rollout: ``stable_version``, ``canary_version``, ``canary_weight`` of
            :func:`serve_config` (default: the alias's version, no canary).

    Returns:
        The two paths.

    Raises:
        ServingConfigError: naming the bad argument or setting.
    """
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render(settings, **rollout).items():
        (root / name).write_text(text, encoding="utf-8")
        written.append(root / name)
    return written


def stale(settings: Settings, out_dir: str | os.PathLike[str]) -> list[str]:
    """Files of ``out_dir`` that differ from :func:`render` (or are missing)."""
    root = Path(out_dir)
    return [
        name
        for name, text in render(settings).items()
        if not (root / name).is_file() or (root / name).read_text(encoding="utf-8") != text
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog=COMMAND, description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path("serving"), help="target folder")
    parser.add_argument("--settings", type=Path, help="settings from this YAML file alone")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    settings = settings_from_file(args.settings) if args.settings else load_settings()
    if args.check:
        old = stale(settings, args.out_dir)
        for name in old:
            print(f"stale: {args.out_dir / name}", file=sys.stderr)
        if old:
            given = f" --settings {args.settings}" if args.settings else ""
            print(f"run '{COMMAND}{given} --out-dir {args.out_dir}'", file=sys.stderr)
        return 1 if old else 0
    for path in write_serving_folder(settings, args.out_dir):
        print(f"wrote {path}")
    return 0


__all__ = [
    "check_ray_service",
    "ray_service",
    "ray_version",
    "render",
    "serve_config",
    "service_account",
    "serving_image",
    "settings_env",
    "settings_from_file",
    "stale",
    "write_serving_folder",
]


if __name__ == "__main__":
    raise SystemExit(main())

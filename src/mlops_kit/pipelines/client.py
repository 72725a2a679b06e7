"""Submit a compiled pipeline to Kubeflow Pipelines, with its arguments checked first."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mlops_kit._lazy import require
from mlops_kit.errors import ConfigError


def pipeline_inputs(pipeline_yaml: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The input parameters a compiled pipeline declares: name -> its spec.

    Each spec has ``parameterType`` and, for optional inputs, ``isOptional`` and maybe
    ``defaultValue``.

    Args:
        pipeline_yaml: a file written by the KFP compiler (``pipelines/<name>.yaml``).

    Raises:
        ConfigError: the file is missing or is not a compiled KFP v2 pipeline.
    """
    path = Path(pipeline_yaml)
    if path.suffix not in (".yaml", ".yml"):
        raise ConfigError(
            f"pipeline_yaml '{path}' must be a compiled pipeline (.yaml or .yml): compile it "
            "with 'python -m mlops_kit.pipelines.compile'"
        )
    if not path.is_file():
        raise ConfigError(
            f"pipeline_yaml '{path}' does not exist: compile it with "
            "'python -m mlops_kit.pipelines.compile'"
        )
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    except yaml.YAMLError as exc:
        raise ConfigError(f"pipeline_yaml '{path}' is not valid YAML: {exc}") from None
    spec = docs[0] if docs else None
    if not isinstance(spec, dict) or "pipelineInfo" not in spec or "root" not in spec:
        raise ConfigError(
            f"pipeline_yaml '{path}' is not a compiled KFP v2 pipeline (no pipelineInfo/root): "
            "compile it with 'python -m mlops_kit.pipelines.compile'"
        )
    params = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    return {str(name): dict(p or {}) for name, p in params.items()}


def _check_host(host: str) -> str:
    if not isinstance(host, str) or not host.strip():
        raise ConfigError(
            "host is required: the Kubeflow Pipelines API endpoint, e.g. "
            "'http://ml-pipeline-ui.kubeflow:80' or 'https://kubeflow.example.com/pipeline'"
        )
    host = host.strip()
    if not host.startswith(("http://", "https://")):
        raise ConfigError(f"host '{host}' must start with http:// or https://")
    return host.rstrip("/")


def check_arguments(
    inputs: Mapping[str, Mapping[str, Any]], arguments: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Arguments checked against a pipeline's inputs (names known, required ones given).

    Raises:
        ConfigError: naming every unknown argument (with the accepted names) or every
            missing required input.
    """
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        raise ConfigError(
            f"arguments must be a mapping of pipeline input name -> value, got "
            f"{type(arguments).__name__}"
        )
    bad = sorted(repr(k) for k in arguments if not isinstance(k, str))
    if bad:
        raise ConfigError(f"argument names must be strings, got {', '.join(bad)}")
    unknown = sorted(set(arguments) - set(inputs))
    if unknown:
        raise ConfigError(
            f"unknown pipeline argument(s) {', '.join(unknown)}: the pipeline accepts "
            f"{', '.join(sorted(inputs)) or 'no arguments'}"
        )
    missing = sorted(
        name
        for name, spec in inputs.items()
        if not spec.get("isOptional") and "defaultValue" not in spec and name not in arguments
    )
    if missing:
        raise ConfigError(f"missing required pipeline argument(s) {', '.join(missing)}")
    return dict(arguments)


def submit(
    pipeline_yaml: str | os.PathLike[str],
    host: str,
    arguments: Mapping[str, Any] | None = None,
    experiment: str | None = None,
    *,
    run_name: str | None = None,
    namespace: str | None = None,
    service_account: str | None = None,
    **client_options: Any,
) -> str:
    """Run a compiled pipeline on Kubeflow Pipelines; returns the run id.

    Wraps ``kfp.Client(host=host).create_run_from_pipeline_package(...)`` after checking
    the file, the host and the arguments against the inputs the pipeline declares, so a
    typo fails here rather than in the cluster.

    Example:
        >>> from mlops_kit.pipelines import submit
        >>> run_id = submit(
        ...     "pipelines/etl.yaml",
        ...     host="http://ml-pipeline-ui.kubeflow:80",
        ...     arguments={"file_prefix": "s3://acme-raw-drop/2026-01-04/"},
        ...     experiment="etl",
        ... )  # doctest: +SKIP

    Args:
        pipeline_yaml: the compiled pipeline (``pipelines/<name>.yaml``).
        host: the Kubeflow Pipelines API endpoint (``http://`` or ``https://``).
        arguments: pipeline input name -> value.
        experiment: experiment to file the run under (KFP's default one when None).
        run_name: name of the run (KFP derives one when None).
        namespace: Kubernetes namespace of a multi-user Kubeflow deployment.
        service_account: Kubernetes service account of the run's pods (on EKS, the one
            whose IAM role (IRSA) reaches S3, Kinesis and the warehouse secret).
        **client_options: passed to ``kfp.Client`` (``existing_token``, ``cookies``,
            ``ssl_ca_cert``, ``credentials``...).

    Returns:
        The id of the created run.

    Raises:
        ConfigError: the file, the host, the experiment or an argument is invalid.
        MissingExtraError: kfp is not installed.
    """
    path = Path(pipeline_yaml)
    checked = check_arguments(pipeline_inputs(path), arguments)
    host = _check_host(host)
    if experiment is not None and (not isinstance(experiment, str) or not experiment.strip()):
        raise ConfigError("experiment must be a non-empty name, or None for KFP's default")
    kfp = require("kfp", "submitting pipelines to Kubeflow")
    scope = {"namespace": namespace} if namespace else {}
    client = kfp.Client(host=host, **scope, **client_options)
    run = client.create_run_from_pipeline_package(
        str(path),
        arguments=checked,
        run_name=run_name,
        experiment_name=experiment,
        service_account=service_account,
        **scope,
    )
    return str(run.run_id)

"""Validators of generated Kubernetes objects that share no code with mlops_kit.

The launcher tests check every object the library builds with the project's own validator
(``mlops_kit.training.launchers.crd``) and, so that a bug there cannot hide a bug in the
builders, with the two validators here, which import nothing from mlops_kit:

* :class:`CrdSchema`: a custom resource (PyTorchJob, TrainJob) against the served version
  of its CRD's ``openAPIV3Schema``, read from the YAML and checked with ``jsonschema``
  directly. The Kubernetes structural-schema keywords that plain JSON Schema ignores are
  applied the way the API server applies them: ``nullable``, unknown fields rejected
  (strict field validation) unless ``x-kubernetes-preserve-unknown-fields``, and
  ``x-kubernetes-list-type`` ``set`` / ``map`` uniqueness. ``metadata`` is checked as the
  API server checks ObjectMeta (name, namespace, label and annotation keys and values).
  CEL rules (``x-kubernetes-validations``) are not evaluated here: no CEL implementation is
  a dependency of the project, and the project's validator evaluates them (its negative
  cases are in ``test_eks_objects.py``).
* :func:`core_errors`: the core/v1 parts a custom resource embeds (pod templates,
  containers) with ``kubernetes-validate`` at the Kubernetes version the bundled EKS module
  deploys.

RayService objects (``mlops_kit.serving.deploy``) are validated the same way in
``tests/serving/test_deploy.py``: ``ray.io_rayservices.yaml`` loaded with
:func:`load_crd_schemas`, the head and worker pod templates with :func:`core_errors`; so are
RayJobs (``mlops_kit.platform.rayjob``, ``ray.io_rayjobs.yaml``, their submitter pod
template too) in ``test_rayjob.py``. The launchers generate no built-in kind as an object of
its own (no Secret, ConfigMap or ServiceAccount): the pod templates inside the jobs are their
only core/v1 content; the serving and RayJob ServiceAccounts are checked with
``kubernetes-validate`` directly.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EKS_VARIABLES = REPO / "infra" / "terraform" / "modules" / "eks" / "variables.tf"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def kubernetes_version() -> str:
    """The default ``kubernetes_version`` of the bundled EKS module (e.g. ``1.31``)."""
    text = EKS_VARIABLES.read_text(encoding="utf-8")
    m = re.search(r'variable "kubernetes_version" \{[^}]*?default\s*=\s*"(\d+\.\d+)"', text)
    assert m, f"no kubernetes_version default in {EKS_VARIABLES}"
    return m.group(1)


def _where(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _structural_to_json_schema(node: Any) -> Any:
    """A JSON Schema (draft 4, the base of OpenAPI v3.0) that means what ``node`` means to
    the API server."""
    if isinstance(node, list):
        return [_structural_to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: (
            {name: _structural_to_json_schema(s) for name, s in v.items()}
            if k in ("properties", "patternProperties", "definitions")
            else _structural_to_json_schema(v)
            if k in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf")
            else v
        )
        for k, v in node.items()
    }
    if out.pop("nullable", False):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if isinstance(out.get("enum"), list):
            out["enum"] = [*out["enum"], None]
        if "type" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _list_type(
    validator: Any, list_type: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    from jsonschema import ValidationError

    if list_type not in ("set", "map") or not validator.is_type(instance, "array"):
        return
    keys = schema.get("x-kubernetes-list-map-keys") or []
    item_props = (schema.get("items") or {}).get("properties") or {}
    defaults = {k: (item_props.get(k) or {}).get("default") for k in keys}
    seen: list[Any] = []
    for i, item in enumerate(instance):
        if list_type == "map":
            if not isinstance(item, dict):
                continue
            item = {k: item.get(k, defaults[k]) for k in keys}
        if item in seen:
            yield ValidationError(f"Duplicate value: {json.dumps(item, sort_keys=True)}", path=[i])
        else:
            seen.append(item)


@functools.cache
def _validator_class() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    return jsonschema.validators.extend(
        jsonschema.Draft4Validator, {"x-kubernetes-list-type": _list_type}
    )


def metadata_errors(metadata: Any, *, namespaced: bool = True) -> list[str]:
    """ObjectMeta checks the API server makes before any schema (apimachinery's rules)."""
    if not isinstance(metadata, dict):
        return ["metadata: Required value"]
    errors = []
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        errors.append("metadata.name: Required value")
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        errors.append(f"metadata.name: Invalid value: {name!r}: not a DNS-1123 subdomain")
    ns = metadata.get("namespace")
    if namespaced and ns is not None and (not isinstance(ns, str) or not _DNS_LABEL.match(ns)):
        errors.append(f"metadata.namespace: Invalid value: {ns!r}: not a DNS-1123 label")
    if namespaced and isinstance(ns, str) and len(ns) > 63:
        errors.append(f"metadata.namespace: Invalid value: {ns!r}: longer than 63")
    for what in ("labels", "annotations"):
        for key, value in (metadata.get(what) or {}).items():
            prefix, slash, short = key.rpartition("/")
            if (
                not _QUALIFIED_NAME.match(short)
                or len(short) > 63
                or (slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)))
            ):
                errors.append(f"metadata.{what}: Invalid value: {key!r}: not a qualified name")
            if not isinstance(value, str):
                errors.append(f"metadata.{what}.{key}: must be a string")
            elif what == "labels" and (
                len(value) > 63 or (value and not _QUALIFIED_NAME.match(value))
            ):
                errors.append(f"metadata.labels.{key}: Invalid value: {value!r}")
    return errors


@dataclass(frozen=True)
class CrdSchema:
    """One served version of a CRD as plain JSON Schema."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    schema: Mapping[str, Any] = field(repr=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    def errors(self, obj: Mapping[str, Any]) -> list[str]:
        """Every way the API server would reject ``obj`` (``path: message`` lines)."""
        errors = []
        if obj.get("apiVersion") != self.api_version:
            errors.append(
                f"apiVersion: expected {self.api_version!r}, got {obj.get('apiVersion')!r}"
            )
        if obj.get("kind") != self.kind:
            errors.append(f"kind: expected {self.kind!r}, got {obj.get('kind')!r}")
        errors += metadata_errors(obj.get("metadata"), namespaced=self.namespaced)
        validator = _validator_class()(self.schema)
        errors += sorted(
            f"{_where(e.absolute_path)}: {e.message}" for e in validator.iter_errors(obj)
        )
        return errors


def load_crd_schemas(path: str | Path) -> list[CrdSchema]:
    """Every served version of the CRD manifest at ``path``."""
    with open(path, encoding="utf-8") as fh:
        manifest = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert manifest["kind"] == "CustomResourceDefinition", path
    spec = manifest["spec"]
    return [
        CrdSchema(
            group=spec["group"],
            version=v["name"],
            kind=spec["names"]["kind"],
            plural=spec["names"]["plural"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            schema=_structural_to_json_schema(copy.deepcopy(v["schema"]["openAPIV3Schema"])),
        )
        for v in spec["versions"]
        if v.get("served")
    ]


def crd_schema_for(schemas: list[CrdSchema], obj: Mapping[str, Any]) -> CrdSchema:
    """The served version ``obj`` names in its ``apiVersion``."""
    for schema in schemas:
        if schema.api_version == obj.get("apiVersion") and schema.kind == obj.get("kind"):
            return schema
    raise AssertionError(f"no served CRD version for {obj.get('apiVersion')} {obj.get('kind')}")


def embedded_core_objects(obj: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, core/v1 object)`` for every pod template and container ``obj`` carries."""
    meta = {"name": "embedded", "namespace": (obj.get("metadata") or {}).get("namespace")}
    spec = obj.get("spec") or {}
    if obj.get("kind") == "PyTorchJob":
        for name, replica in (spec.get("pytorchReplicaSpecs") or {}).items():
            yield (
                f"spec.pytorchReplicaSpecs.{name}.template",
                {
                    "apiVersion": "v1",
                    "kind": "PodTemplate",
                    "metadata": meta,
                    "template": replica["template"],
                },
            )
    elif obj.get("kind") == "TrainJob":
        for i, patch in enumerate(spec.get("runtimePatches") or []):
            jobs = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
            for j, job in enumerate(jobs):
                yield (
                    f"spec.runtimePatches[{i}]...replicatedJobs[{j}].template.spec.template",
                    {
                        "apiVersion": "v1",
                        "kind": "PodTemplate",
                        "metadata": meta,
                        "template": job["template"]["spec"]["template"],
                    },
                )
        trainer = spec.get("trainer") or {}
        container = {"name": "node"}
        for ours, theirs in (
            ("image", "image"),
            ("command", "command"),
            ("args", "args"),
            ("env", "env"),
            ("resourcesPerNode", "resources"),
        ):
            if ours in trainer:
                container[theirs] = trainer[ours]
        yield (
            "spec.trainer",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": meta,
                "spec": {"containers": [container]},
            },
        )
    elif obj.get("kind") in ("RayService", "RayJob"):
        field = "rayClusterConfig" if obj.get("kind") == "RayService" else "rayClusterSpec"
        cluster = spec.get(field) or {}
        head = cluster.get("headGroupSpec") or {}
        templates = [(f"spec.{field}.headGroupSpec.template", head.get("template"))]
        for i, group in enumerate(cluster.get("workerGroupSpecs") or []):
            templates.append((f"spec.{field}.workerGroupSpecs[{i}].template", group["template"]))
        if "submitterPodTemplate" in spec:
            templates.append(("spec.submitterPodTemplate", spec["submitterPodTemplate"]))
        for where, template in templates:
            yield (
                where,
                {"apiVersion": "v1", "kind": "PodTemplate", "metadata": meta, "template": template},
            )
    else:
        raise AssertionError(f"no embedded core objects known for kind {obj.get('kind')}")


def core_errors(obj: Mapping[str, Any], version: str | None = None) -> list[str]:
    """The first error of each embedded core/v1 object, per ``kubernetes-validate`` (strict)."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    errors = []
    for where, core in embedded_core_objects(obj):
        try:
            kubernetes_validate.validate(core, version or kubernetes_version(), strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{where} ({core['kind']}) {_where(exc.absolute_path)}: {exc.message}")
    return errors


__all__ = [
    "CrdSchema",
    "core_errors",
    "crd_schema_for",
    "embedded_core_objects",
    "kubernetes_version",
    "load_crd_schemas",
    "metadata_errors",
]

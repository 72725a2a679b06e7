"""Validate generated objects against a CustomResourceDefinition, without an API server.

:func:`load_crd` reads a CRD manifest (e.g. from ``kubectl get crd pytorchjobs.kubeflow.org
-o yaml`` or the operator's release manifests) and :func:`validate_object` checks an object
against its ``openAPIV3Schema`` the way the API server's strict field validation does:

* JSON Schema keywords (types, enums, patterns, required fields, bounds);
* unknown fields are errors wherever the schema lists ``properties`` and neither
  ``additionalProperties`` nor ``x-kubernetes-preserve-unknown-fields`` allows more
  (the API server would prune them silently, or reject them with
  ``fieldValidation=Strict``, the kubectl default);
* ``x-kubernetes-list-type``: no two items of a ``set`` list are equal, and no two items
  of a ``map`` list share their ``x-kubernetes-list-map-keys``, defaults applied (e.g. two
  ``env`` entries of one name);
* the CEL rules (``x-kubernetes-validations``) of the simple forms the Kubeflow CRDs
  use: ``self.x.matches('re')``, ``size(self.x) <= n``, ``self >= n``, ``self in [...]``,
  ``self == '' || self.matches('re')`` and ``has(self.x)``. A value of the wrong type
  fails the rule (next to its schema error). Transition rules (``self == oldSelf``) only
  apply to updates and are skipped; any other rule is listed in
  :attr:`Crd.unsupported_rules` and not evaluated.

Needs ``jsonschema`` and PyYAML.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_kit._lazy import require
from mlops_kit.errors import ConfigError

_PATH = r"self(?:\.[A-Za-z_]\w*)*"
_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "==": lambda a, b: a == b,
}


@dataclass(frozen=True)
class Crd:
    """One served version of a CRD, ready to validate objects.

    Attributes:
        group: API group, e.g. ``kubeflow.org``.
        version: the version validated, e.g. ``v1``.
        kind: e.g. ``PyTorchJob``.
        plural: e.g. ``pytorchjobs``.
        schema: the version's ``openAPIV3Schema``, made strict about unknown fields.
        unsupported_rules: CEL rules that are not evaluated (see the module docstring).
    """

    group: str
    version: str
    kind: str
    plural: str
    schema: Mapping[str, Any] = field(repr=False)
    unsupported_rules: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


def _strict(node: Any) -> None:
    if isinstance(node, dict):
        props = node.get("properties")
        if (
            isinstance(props, dict)
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for key in ("properties",):
            if isinstance(node.get(key), dict):
                for child in node[key].values():
                    _strict(child)
        for key in ("items", "additionalProperties", "not"):
            if isinstance(node.get(key), dict):
                _strict(node[key])
        for key in ("allOf", "anyOf", "oneOf"):
            for child in node.get(key) or []:
                _strict(child)


def _rules(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for rule in node.get("x-kubernetes-validations") or []:
            yield rule["rule"]
        for value in node.values():
            yield from _rules(value)
    elif isinstance(node, list):
        for value in node:
            yield from _rules(value)


def _lookup(value: Any, path: str) -> tuple[bool, Any]:
    for part in path.split(".")[1:]:
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _cel_string(body: str) -> str:
    """The value of a single-quoted CEL string literal's body (``'\\\\d'`` is ``\\d``)."""
    return re.sub(r"\\([\\'\"`?])", r"\1", body)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _compile_rule(rule: str) -> Callable[[Any], bool] | None:
    """A function ``value -> bool`` for the supported CEL forms, else None."""
    rule = rule.strip()
    if rule == "self == oldSelf":
        return lambda _v: True
    m = re.fullmatch(r"self == '' \|\| self\.matches\('((?:[^'\\]|\\.)*)'\)", rule)
    if m:
        empty_or = re.compile(_cel_string(m.group(1)))
        return lambda v: v == "" or (isinstance(v, str) and bool(empty_or.search(v)))
    m = re.fullmatch(rf"({_PATH})\.matches\('((?:[^'\\]|\\.)*)'\)", rule)
    if m:
        path, rx = m.group(1), re.compile(_cel_string(m.group(2)))

        def matches(v: Any) -> bool:
            found, x = _lookup(v, path)
            return found and isinstance(x, str) and bool(rx.search(x))

        return matches
    m = re.fullmatch(rf"size\(({_PATH})\) (<=|<|>=|>|==) (\d+)", rule)
    if m:
        path, op, n = m.group(1), _CMP[m.group(2)], int(m.group(3))

        def size(v: Any) -> bool:
            found, x = _lookup(v, path)
            return found and isinstance(x, (str, list, dict)) and op(len(x), n)

        return size
    m = re.fullmatch(rf"({_PATH}) (<=|<|>=|>|==) (-?\d+)", rule)
    if m:
        path, op, n = m.group(1), _CMP[m.group(2)], int(m.group(3))

        def compare(v: Any) -> bool:
            found, x = _lookup(v, path)
            return found and _number(x) and op(x, n)

        return compare
    m = re.fullmatch(rf"({_PATH}) in \[((?:'[^']*'(?:, *)?)*)\]", rule)
    if m:
        path, allowed = m.group(1), frozenset(re.findall(r"'([^']*)'", m.group(2)))

        def member(v: Any) -> bool:
            found, x = _lookup(v, path)
            return found and isinstance(x, str) and x in allowed

        return member
    m = re.fullmatch(rf"has\(({_PATH})\)", rule)
    if m:
        has_path = m.group(1)
        return lambda v: _lookup(v, has_path)[0]
    return None


def _read_yaml(path: str | os.PathLike[str]) -> Any:
    yaml = require("yaml")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=loader)


@functools.lru_cache(maxsize=16)
def _load_cached(path: str, version: str | None) -> Crd:
    return crd_from_manifest(_read_yaml(path), version, source=path)


def load_crd(path: str | os.PathLike[str], version: str | None = None) -> Crd:
    """Read a CRD manifest file (cached per path).

    Args:
        path: the CRD YAML.
        version: the version to validate against (default: the storage version).

    Raises:
        ConfigError: the file is not a CRD or lacks the version.
    """
    return _load_cached(str(Path(path).resolve()), version)


def load_crd_of(
    path: str | os.PathLike[str], group: str, kind: str, refuse: Callable[[str], Exception]
) -> Crd:
    """The CRD at ``path``, which must define ``kind.group``.

    Raises:
        Exception: ``refuse(reason)`` (the caller's own error) when the file cannot be
            read as a CRD or defines another kind.
    """
    try:
        crd = load_crd(path)
    except (OSError, ConfigError) as exc:
        raise refuse(f"cannot read a CRD at {path} ({exc})") from None
    if (crd.group, crd.kind) != (group, kind):
        raise refuse(f"{path} defines {crd.kind}.{crd.group}, not {kind}.{group}")
    return crd


def crd_from_manifest(
    manifest: Mapping[str, Any], version: str | None = None, *, source: str = "manifest"
) -> Crd:
    """Like :func:`load_crd`, from an already parsed manifest."""
    if manifest.get("kind") != "CustomResourceDefinition":
        raise ConfigError(f"{source} is not a CustomResourceDefinition")
    spec = manifest["spec"]
    versions = spec.get("versions") or []
    chosen = next(
        (
            v
            for v in versions
            if (v["name"] == version if version else v.get("storage", len(versions) == 1))
        ),
        None,
    )
    if chosen is None:
        names = [v["name"] for v in versions]
        raise ConfigError(f"{source}: no version {version or '(storage)'} (has {names})")
    schema = copy.deepcopy(chosen["schema"]["openAPIV3Schema"])
    unsupported = tuple(sorted({r for r in _rules(schema) if _compile_rule(r) is None}))
    _strict(schema)
    return Crd(
        group=spec["group"],
        version=chosen["name"],
        kind=spec["names"]["kind"],
        plural=spec["names"]["plural"],
        schema=schema,
        unsupported_rules=unsupported,
    )


def _where(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _nodes(node: Any, value: Any, where: str) -> Iterator[tuple[Mapping[str, Any], Any, str]]:
    """Each schema node with the value it applies to and that value's path."""
    if not isinstance(node, dict):
        return
    yield node, value, where
    props = node.get("properties") or {}
    if isinstance(value, dict):
        for key, child in value.items():
            sub = props.get(key)
            if sub is None and isinstance(node.get("additionalProperties"), dict):
                sub = node["additionalProperties"]
            if sub is not None:
                yield from _nodes(sub, child, f"{where}.{key}" if where else key)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for i, child in enumerate(value):
            yield from _nodes(node["items"], child, f"{where}[{i}]")


def _cel_errors(schema: Mapping[str, Any], obj: Any) -> Iterator[str]:
    for node, value, where in _nodes(schema, obj, ""):
        for rule in node.get("x-kubernetes-validations") or []:
            check = _compile_rule(rule["rule"])
            if check is not None and not check(value):
                text = rule.get("message") or f"failed rule: {rule['rule']}"
                yield f"{where or '(root)'}: {text}"


def _list_errors(schema: Mapping[str, Any], obj: Any) -> Iterator[str]:
    for node, value, where in _nodes(schema, obj, ""):
        kind = node.get("x-kubernetes-list-type")
        if kind not in ("set", "map") or not isinstance(value, list):
            continue
        keys = node.get("x-kubernetes-list-map-keys") or []
        item_props = (node.get("items") or {}).get("properties") or {}
        defaults = {k: (item_props.get(k) or {}).get("default") for k in keys}
        seen: list[Any] = []
        for i, item in enumerate(value):
            if kind == "map":
                if not isinstance(item, dict):
                    continue
                item = {k: item.get(k, defaults[k]) for k in keys}
            if item in seen:
                yield f"{where}[{i}]: Duplicate value: {json.dumps(item, sort_keys=True)}"
            else:
                seen.append(item)


def validate_object(obj: Mapping[str, Any], crd: Crd) -> list[str]:
    """Every way ``obj`` breaks ``crd``, as ``path: message`` lines (empty when valid)."""
    jsonschema = require("jsonschema", "CRD validation")
    errors: list[str] = []
    if obj.get("apiVersion") != crd.api_version:
        errors.append(f"apiVersion: expected '{crd.api_version}', got {obj.get('apiVersion')!r}")
    if obj.get("kind") != crd.kind:
        errors.append(f"kind: expected '{crd.kind}', got {obj.get('kind')!r}")
    validator = jsonschema.Draft7Validator(crd.schema)
    for err in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
        errors.append(f"{_where(err.absolute_path)}: {err.message}")
    errors.extend(_list_errors(crd.schema, obj))
    errors.extend(_cel_errors(crd.schema, obj))
    return errors


def check_object(obj: Mapping[str, Any], crd: Crd) -> None:
    """Raise :class:`ConfigError` listing every error of ``obj`` against ``crd``."""
    errors = validate_object(obj, crd)
    if errors:
        name = (obj.get("metadata") or {}).get("name", "?")
        raise ConfigError(
            f"{crd.kind} '{name}' does not match the {crd.api_version} CRD schema:\n  "
            + "\n  ".join(errors)
        )


__all__ = ["Crd", "check_object", "crd_from_manifest", "load_crd", "validate_object"]

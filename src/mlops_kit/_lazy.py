"""Lazy imports of optional dependencies, failing with the extra to install."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

# module name -> extra that provides it
EXTRAS: dict[str, str] = {
    "feast": "feast",
    "mmh3": "feast",
    "mlflow": "mlflow",
    "torch": "torch",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "ray": "serve",
    "fastapi": "serve",
    "uvicorn": "serve",
    "kfp": "kfp",
    "kfp.kubernetes": "kfp",
    "sagemaker": "sagemaker",
    "kubernetes": "k8s",
    "jsonschema": "k8s",
    "psycopg": "postgres",
}


def require(module: str, feature: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra.

    Args:
        module: dotted module name, e.g. ``"kfp"``.
        feature: what the caller wanted to do, used in the message.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        from mlops_kit.errors import MissingExtraError

        top = module.split(".")[0]
        extra = EXTRAS.get(module, EXTRAS.get(top, "all"))
        raise MissingExtraError(top, extra, feature) from exc


def is_installed(module: str) -> bool:
    """True when ``module`` can be imported (without importing it)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def lazy_exports(
    package: str, exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` that import each name on first use.

    Args:
        package: the package's ``__name__`` (for error messages).
        exports: public name -> dotted module that defines it.

    Example::

        __getattr__, __dir__ = lazy_exports(__name__, {"Settings": "mlops_kit.config"})
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted([*vars(importlib.import_module(package)), *exports])

    return __getattr__, __dir__

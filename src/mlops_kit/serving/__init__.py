"""Serving: the registry's champion behind a prediction API for any dataset spec.

:class:`~mlops_kit.serving.service.InferenceService` loads the version a registry alias
points to (``champion`` by default), validates requests against the dataset spec,
looks up the features a request leaves out in the online store, scores a batch with ONNX
Runtime and names the version that answered. :func:`~mlops_kit.serving.http.create_app`
puts it behind FastAPI: ``POST /predict`` and the Open Inference Protocol (KServe v2 REST)
``/v2/health/live|ready``, ``/v2/models/<name>[/versions/<v>]``,
``/v2/models/<name>/infer``.
"""

from __future__ import annotations

from mlops_kit._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "InferenceService": "mlops_kit.serving.service",
    "ServingError": "mlops_kit.serving.errors",
    "BadRequestError": "mlops_kit.serving.errors",
    "create_app": "mlops_kit.serving.http",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)

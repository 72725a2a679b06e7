"""The end-to-end demo as one flow of library calls (``mlops-kit demo``).

:func:`~mlops_kit.demo.flow.run` generates data for the settings' dataset spec, lands it
three ways (files, a paginated HTTP API, a stream), runs the ETL, the feature store, the
training pipeline's steps and the registry's promotion, and returns a
:class:`~mlops_kit.demo.flow.DemoReport`; the CLI only prints it. Nothing in here is
written for one dataset.
"""

from __future__ import annotations

from mlops_kit._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "DemoOptions": "mlops_kit.demo.flow",
    "DemoReport": "mlops_kit.demo.flow",
    "run": "mlops_kit.demo.flow",
    "serve_records": "mlops_kit.demo.api",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)

"""The model bundle: its files, its preprocessing and the predictor that scores with it.

Shared by training (which writes a bundle), tracking (which logs it), the registry (which
evaluates it and resolves a version to a :class:`ModelReference`) and serving (which loads
it). Needs numpy; ONNX Runtime only to predict.
"""

from __future__ import annotations

from mlops_kit._lazy import lazy_exports

_EXPORTS = {
    "ModelError": "mlops_kit.model.errors",
    "ModelReference": "mlops_kit.model.reference",
    "load_reference": "mlops_kit.model.reference",
    "Preprocessor": "mlops_kit.model.preprocess",
    "Predictor": "mlops_kit.model.predictor",
    "load_predictor": "mlops_kit.model.predictor",
    "onnx_session": "mlops_kit.model.predictor",
    "external_data_files": "mlops_kit.model.predictor",
    "INPUT_NAME": "mlops_kit.model.predictor",
    "OUTPUT_NAMES": "mlops_kit.model.predictor",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)

"""The model bundle: the files a trained model is made of, by one name each.

A bundle is a folder (local or ``s3://``) written by training and export, logged by
tracking, evaluated by the registry and loaded by serving::

    <bundle>/model.pt          torch weights and architecture (training, parity reference)
    <bundle>/preprocess.json   feature order, means, scales (:class:`Preprocessor`)
    <bundle>/metrics.json      training metrics and history
    <bundle>/config.json       the training config
    <bundle>/holdout.parquet   rows kept for the parity check
    <bundle>/model.onnx        the exported graph (only when parity passed)
    <bundle>/parity.json       the parity figures of the export
"""

from __future__ import annotations

from mlops_kit import storage

TORCH_MODEL = "model.pt"
PREPROCESS = "preprocess.json"
METRICS = "metrics.json"
CONFIG = "config.json"
HOLDOUT = "holdout.parquet"
ONNX_MODEL = "model.onnx"
PARITY = "parity.json"

FILES: tuple[str, ...] = (TORCH_MODEL, PREPROCESS, METRICS, CONFIG, HOLDOUT, PARITY, ONNX_MODEL)
"""Every file of a bundle (checkpoints stay where training wrote them)."""

SERVING_FILES: tuple[str, ...] = (ONNX_MODEL, PREPROCESS)
"""What serving needs: the graph and its preprocessing."""


def path(bundle: str, name: str) -> str:
    """The URI of file ``name`` (one of :data:`FILES`) in ``bundle``."""
    if name not in FILES:
        raise ValueError(f"'{name}' is not a bundle file: use one of {', '.join(FILES)}")
    return storage.join(bundle, name)


def missing(bundle: str, names: tuple[str, ...] = SERVING_FILES) -> list[str]:
    """The files of ``names`` that ``bundle`` lacks."""
    return [n for n in names if not storage.exists(path(bundle, n))]


def copy(src: str, dest: str, names: tuple[str, ...] = FILES) -> list[str]:
    """Copy the files of ``names`` that exist from bundle ``src`` to ``dest``; returns them."""
    copied = []
    for name in names:
        if storage.exists(path(src, name)):
            storage.write_bytes(path(dest, name), storage.read_bytes(path(src, name)))
            copied.append(name)
    return copied

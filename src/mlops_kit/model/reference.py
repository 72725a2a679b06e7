"""A reference to a registered model's files, loadable without the registry.

The registry resolves a version (a number or an alias) to a :class:`ModelReference`
(:meth:`~mlops_kit.registry.versions.RegistryVersions.locate`): the model's name and
version, the tags serving checks (the dataset and its version), the URI of its ONNX graph
with the names of the graph's external data files beside it (MLflow's ONNX flavour saves
the weights apart from the graph), and the URI of its preprocessing statistics. It is a
small JSON-safe mapping (:meth:`ModelReference.to_dict`), so a driver that has looked the
version up can hand it to the processes that serve it (a Ray Serve ``user_config``);
:func:`load_reference` reads the files through :mod:`mlops_kit.storage` (a local path,
``file://`` or ``s3://``) into a :class:`~mlops_kit.model.predictor.Predictor`, importing
neither MLflow nor the ``onnx`` package::

    ref = ModelReference.from_dict(user_config["model"])
    predictor = load_reference(ref)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_kit.model.errors import ModelError
from mlops_kit.model.predictor import Predictor, onnx_session
from mlops_kit.model.preprocess import Preprocessor

_REQUIRED = ("name", "version", "graph", "preprocess")


@dataclass(frozen=True)
class ModelReference:
    """Where one registered version's graph and preprocessing statistics lie.

    Attributes:
        name: the registered model.
        version: its version number, as text.
        graph: URI of the ONNX graph (``.../model.onnx``).
        preprocess: URI of the preprocessing statistics (``preprocess.json``).
        graph_data: names of the graph's external data files, in the graph's folder.
        alias: the alias the version was resolved from (``None``: named by number).
        tags: the version's tags that serving checks (``mlops_kit.dataset``,
            ``mlops_kit.dataset_version``).
    """

    name: str
    version: str
    graph: str
    preprocess: str
    graph_data: tuple[str, ...] = ()
    alias: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in _REQUIRED:
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ModelError(
                    f"model reference: '{name}' must be a non-empty string, got {value!r}; "
                    "resolve the version again with ModelRegistry.locate"
                )
        for data in self.graph_data:
            if not isinstance(data, str) or data in ("", ".", "..") or "/" in data or "\\" in data:
                raise ModelError(
                    f"model reference: graph_data entry {data!r} is not a file name in the "
                    "graph's folder; resolve the version again with ModelRegistry.locate"
                )

    def to_dict(self) -> dict[str, Any]:
        """The reference as plain JSON types (what :meth:`from_dict` reads back)."""
        return {
            "name": self.name,
            "version": self.version,
            "graph": self.graph,
            "preprocess": self.preprocess,
            "graph_data": list(self.graph_data),
            "alias": self.alias,
            "tags": dict(self.tags),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelReference:
        """A reference from :meth:`to_dict`'s mapping.

        Raises:
            ModelError: naming the missing or malformed field.
        """
        if not isinstance(data, Mapping):
            raise ModelError(
                f"model reference: expected a mapping, got {type(data).__name__}; pass "
                "ModelReference.to_dict()"
            )
        lacking = [k for k in _REQUIRED if k not in data]
        if lacking:
            raise ModelError(
                f"model reference lacks {', '.join(lacking)}; pass ModelReference.to_dict()"
            )
        tags, graph_data = data.get("tags") or {}, data.get("graph_data") or []
        if not isinstance(tags, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
        ):
            raise ModelError("model reference: 'tags' must map text to text")
        if not isinstance(graph_data, (list, tuple)):
            raise ModelError("model reference: 'graph_data' must be a list of file names")
        alias = data.get("alias")
        if alias is not None and not isinstance(alias, str):
            raise ModelError(f"model reference: 'alias' must be text or null, got {alias!r}")
        return cls(
            name=data["name"],
            version=data["version"],
            graph=data["graph"],
            preprocess=data["preprocess"],
            graph_data=tuple(graph_data),
            alias=alias,
            tags=dict(tags),
        )


def load_reference(ref: ModelReference, threads: int = 1) -> Predictor:
    """The predictor of the files ``ref`` names (read through :mod:`mlops_kit.storage`).

    Raises:
        ModelError: a file is missing or unreadable, or is not an ONNX graph or
            preprocessing statistics; the message names the file's URI.
        MissingExtraError: ONNX Runtime is not installed.
    """
    from mlops_kit._lazy import require
    from mlops_kit.errors import StorageError

    require("onnxruntime", "ONNX inference")
    try:
        pre = Preprocessor.load(ref.preprocess)
    except (StorageError, ModelError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"preprocessing statistics at {ref.preprocess}: {exc}") from None
    try:
        session = onnx_session(ref.graph, threads, external_data=ref.graph_data)
    except StorageError as exc:
        raise ModelError(f"ONNX graph at {ref.graph}: {exc}") from None
    except Exception as exc:  # ONNX Runtime's own errors: no file, not a graph, bad data
        raise ModelError(f"ONNX graph at {ref.graph}: {type(exc).__name__}: {exc}") from None
    return Predictor(session, pre)


__all__ = ["ModelReference", "load_reference"]

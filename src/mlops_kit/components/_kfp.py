"""The one place where the component modules import kfp (with the extra named if absent)."""

from mlops_kit._lazy import require

require("kfp", "building Kubeflow Pipelines components")

from kfp import dsl  # noqa: E402
from kfp.dsl import HTML, Dataset, Input, Metrics, Output  # noqa: E402

__all__ = ["HTML", "Dataset", "Input", "Metrics", "Output", "dsl"]

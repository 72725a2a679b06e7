"""mlops_kit: typed Kubeflow Pipelines v2 components for the life of a model on AWS.

Importing the package is cheap: it loads names only. Settings (pydantic-settings) load on
first use, and heavy dependencies (torch, ray, feast, mlflow, kfp, sagemaker) are imported
only by the modules that need them, failing with a message that names the extra to
install.
"""

from typing import TYPE_CHECKING

from mlops_kit._lazy import lazy_exports
from mlops_kit._version import __version__
from mlops_kit.errors import (
    ConfigError,
    DataQualityError,
    IngestionError,
    MissingExtraError,
    MlopsKitError,
    StorageError,
)

if TYPE_CHECKING:
    from mlops_kit.config import Settings, load_settings

__getattr__, __dir__ = lazy_exports(
    __name__, {"Settings": "mlops_kit.config", "load_settings": "mlops_kit.config"}
)

__all__ = [
    "ConfigError",
    "DataQualityError",
    "IngestionError",
    "MissingExtraError",
    "MlopsKitError",
    "Settings",
    "StorageError",
    "__version__",
    "load_settings",
]

"""mlops_kit: typed Kubeflow Pipelines v2 components for the life of a model on AWS.

Importing the package is cheap: heavy dependencies (torch, ray, feast, mlflow, kfp,
sagemaker) are imported only by the modules that need them, and fail with a message
that names the extra to install.
"""

from mlops_kit._version import __version__
from mlops_kit.config import Settings, load_settings
from mlops_kit.errors import (
    ConfigError,
    DataQualityError,
    IngestionError,
    MissingExtraError,
    MlopsKitError,
    StorageError,
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

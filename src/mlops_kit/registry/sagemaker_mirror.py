"""Mirror of the MLflow registry in the SageMaker Model Registry (optional).

One model package group per registered model, one model package per version, and the
package's approval status kept in step with the aliases: ``PendingManualApproval`` when
registered, ``Approved`` when promoted to champion (and for the champion a rollback
returns to), ``Rejected`` when a champion promotion is refused or the version is rolled
back. Calls go through boto3 (``create_model_package_group``, ``create_model_package``,
``update_model_package``, ``describe_model_package``), which moto's server implements.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from mlops_kit.registry.errors import RegistryError

if TYPE_CHECKING:
    from mlops_kit.config import Settings

STATUSES = ("PendingManualApproval", "Approved", "Rejected")
_META_KEY = re.compile(r"[^A-Za-z0-9_.:/=+\-@]")


def group_name(model: str) -> str:
    """The package group name of a registered model (SageMaker allows ``[a-zA-Z0-9-]``)."""
    return re.sub(r"[^A-Za-z0-9-]", "-", model).strip("-")[:63] or "model"


class SageMakerMirror:
    """Keeps a SageMaker model package group in step with one registered model.

    Args:
        client: a boto3 SageMaker client.
        image: inference image of the packages (e.g. the serving image in ECR).
        model_data_url: ``s3://`` prefix of model artifacts (``<prefix>/<model>/<version>``);
            ``None`` registers packages without model data.
    """

    def __init__(self, client: Any, image: str, model_data_url: str | None = None) -> None:
        self.client = client
        self.image = image
        self.model_data_url = model_data_url

    @classmethod
    def from_settings(cls, settings: Settings) -> SageMakerMirror:
        """A mirror using ``aws`` (region, endpoint) and the serving image of the settings."""
        from mlops_kit._version import __version__

        image = settings.registry.serving_image or settings.images.serving
        if not image:
            raise RegistryError(
                "the SageMaker mirror needs an inference image: set registry.serving_image or "
                "images.serving"
            )
        if ":" not in image.rsplit("/", 1)[-1]:
            image = f"{image}:{__version__}"
        models = settings.storage.models_uri
        url = models if models and str(models).startswith("s3://") else None
        return cls(settings.aws.client("sagemaker"), image, url)

    def ensure_group(self, model: str) -> str:
        """The group's ARN, created when absent."""
        name = group_name(model)
        from botocore.exceptions import ClientError

        try:
            return str(
                self.client.describe_model_package_group(ModelPackageGroupName=name)[
                    "ModelPackageGroupArn"
                ]
            )
        except ClientError as exc:  # a missing group is a ValidationException
            if "does not exist" not in str(exc):
                raise
        return str(
            self.client.create_model_package_group(
                ModelPackageGroupName=name,
                ModelPackageGroupDescription=f"mirror of the MLflow registered model {model}",
            )["ModelPackageGroupArn"]
        )

    def register_version(self, model: str, version: str, tags: dict[str, str]) -> str:
        """Create the package of ``version`` (pending approval); returns its ARN."""
        group = group_name(model)
        self.ensure_group(model)
        container: dict[str, Any] = {"Image": self.image}
        if self.model_data_url:
            container["ModelDataUrl"] = f"{self.model_data_url.rstrip('/')}/{model}/{version}"
        meta = {"mlflow_model": model, "mlflow_version": str(version)}
        for key in ("mlops_kit.run_id", "mlops_kit.git_commit", "mlops_kit.onnx_sha256"):
            if key in tags:
                meta[_META_KEY.sub("_", key)] = str(tags[key])[:256]
        out = self.client.create_model_package(
            ModelPackageGroupName=group,
            ModelPackageDescription=f"{model} version {version} (MLflow)",
            InferenceSpecification={
                "Containers": [container],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus="PendingManualApproval",
            CustomerMetadataProperties=meta,
        )
        return str(out["ModelPackageArn"])

    def set_status(self, arn: str, status: str, note: str = "") -> None:
        """Set the approval status of a package."""
        if status not in STATUSES:
            raise RegistryError(f"unknown approval status '{status}': use one of {STATUSES}")
        self.client.update_model_package(
            ModelPackageArn=arn, ModelApprovalStatus=status, ApprovalDescription=note[:1000]
        )

    def status(self, arn: str) -> str:
        """The approval status of a package."""
        return str(self.client.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"])

    def packages(self, model: str) -> list[dict[str, Any]]:
        """``[{"arn", "version", "status"}]`` of the group, oldest first."""
        out = self.client.list_model_packages(ModelPackageGroupName=group_name(model))
        rows = [
            {
                "arn": p["ModelPackageArn"],
                "version": p.get("ModelPackageVersion"),
                "status": p.get("ModelApprovalStatus"),
            }
            for p in out.get("ModelPackageSummaryList", [])
        ]
        return sorted(rows, key=lambda r: r["version"] or 0)


__all__ = ["STATUSES", "SageMakerMirror", "group_name"]

"""The AWS platform mlops_kit runs on: settings from the bundled Terraform's outputs
(``infra/terraform``), and the KubeRay objects that run work on its EKS cluster
(:mod:`.kuberay`, :mod:`.rayjob`, :mod:`.rayjob_launcher`)."""

from mlops_kit.platform.terraform import TerraformOutputError, config_from_outputs, write_config

__all__ = ["TerraformOutputError", "config_from_outputs", "write_config"]

"""The AWS platform mlops_kit runs on: helpers around the bundled Terraform (``infra/terraform``)."""

from mlops_kit.platform.terraform import TerraformOutputError, config_from_outputs, write_config

__all__ = ["TerraformOutputError", "config_from_outputs", "write_config"]

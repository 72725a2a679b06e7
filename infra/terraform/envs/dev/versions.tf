terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 6.0"
    }
  }

  # Partial configuration: `terraform init -backend-config=backend.hcl`
  # (see backend.hcl.example and docs/aws-deployment.md).
  backend "s3" {}
}

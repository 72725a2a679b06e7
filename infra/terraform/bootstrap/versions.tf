terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 6.0"
    }
  }

  # The state of this configuration stays local (or is migrated into the bucket it
  # creates with `terraform init -migrate-state` once the bucket exists).
}

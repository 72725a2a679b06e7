# Remote state for the environments: one versioned, KMS-encrypted S3 bucket.
# Locking uses S3 conditional writes (`use_lockfile = true`, Terraform >= 1.10),
# so no DynamoDB lock table is needed.

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      "mlops-kit/component" = "terraform-state"
      ManagedBy             = "terraform"
    }
  }
}

data "aws_caller_identity" "current" {}

module "kms" {
  source = "../modules/kms-key"

  alias       = "${var.name}/terraform-state"
  description = "Terraform state of ${var.name}"
}

module "log_bucket" {
  source = "../modules/log-bucket"

  bucket_name = "${var.name}-tfstate-logs-${data.aws_caller_identity.current.account_id}"
}

module "state_bucket" {
  source = "../modules/s3-bucket"

  bucket_name               = "${var.name}-tfstate-${data.aws_caller_identity.current.account_id}"
  kms_key_arn               = module.kms.key_arn
  access_log_bucket         = module.log_bucket.bucket_name
  eventbridge_notifications = false
  lifecycle_rules = {
    infrequent_access_after_days = null
    glacier_after_days           = null
    noncurrent_expire_after_days = 365
  }
}

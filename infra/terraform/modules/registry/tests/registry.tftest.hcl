mock_provider "aws" {
  source = "../../testing/aws"
}

variables {
  name = "mlops-kit-test"
}

run "repositories" {
  command = apply

  assert {
    condition     = toset(keys(aws_ecr_repository.this)) == toset(["training", "serving", "pipeline"])
    error_message = "There are training, serving and pipeline repositories."
  }

  assert {
    condition     = alltrue([for r in aws_ecr_repository.this : r.image_tag_mutability == "IMMUTABLE" && r.image_scanning_configuration[0].scan_on_push])
    error_message = "Tags must be immutable and images scanned on push."
  }

  assert {
    condition     = alltrue([for r in aws_ecr_repository.this : r.encryption_configuration[0].encryption_type == "KMS" && r.encryption_configuration[0].kms_key == module.kms.key_arn])
    error_message = "Repositories must be encrypted with the registry's KMS key."
  }

  assert {
    condition     = length(aws_ecr_lifecycle_policy.this) == 3
    error_message = "Every repository needs a lifecycle policy."
  }
}

run "rejects_missing_required_repository" {
  command = plan

  variables {
    repositories = ["training", "serving"]
  }

  expect_failures = [var.repositories]
}

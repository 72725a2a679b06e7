mock_provider "aws" {
  source = "../../testing/aws"
}

variables {
  bucket_name       = "mlops-kit-test-raw-123456789012"
  kms_key_arn       = "arn:aws:kms:us-east-1:123456789012:key/data"
  access_log_bucket = "mlops-kit-test-logs-123456789012"
}

run "hardened_bucket" {
  command = apply

  assert {
    condition = (
      aws_s3_bucket_public_access_block.this.block_public_acls &&
      aws_s3_bucket_public_access_block.this.block_public_policy &&
      aws_s3_bucket_public_access_block.this.ignore_public_acls &&
      aws_s3_bucket_public_access_block.this.restrict_public_buckets
    )
    error_message = "All public access must be blocked."
  }

  assert {
    condition     = one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default[0].sse_algorithm == "aws:kms" && one(aws_s3_bucket_server_side_encryption_configuration.this.rule).bucket_key_enabled
    error_message = "Objects must default to SSE-KMS with a bucket key."
  }

  assert {
    condition     = aws_s3_bucket_versioning.this.versioning_configuration[0].status == "Enabled"
    error_message = "Versioning must be on."
  }

  assert {
    condition = alltrue([
      for sid in ["DenyInsecureTransport", "DenyOutdatedTLS"] :
      contains([for s in jsondecode(aws_s3_bucket_policy.this.policy).Statement : s.Sid if s.Effect == "Deny"], sid)
    ])
    error_message = "The bucket policy must deny non-TLS and pre-1.2 TLS requests."
  }

  assert {
    condition     = [for t in aws_s3_bucket_lifecycle_configuration.this.rule[0].transition : t.storage_class] == ["STANDARD_IA", "GLACIER_IR"]
    error_message = "Objects must move to STANDARD_IA and then GLACIER_IR."
  }

  assert {
    condition     = aws_s3_bucket_logging.this.target_bucket == "mlops-kit-test-logs-123456789012"
    error_message = "Server access logs must go to the log bucket."
  }

  assert {
    condition     = aws_s3_bucket_ownership_controls.this.rule[0].object_ownership == "BucketOwnerEnforced"
    error_message = "ACLs must be disabled."
  }

  assert {
    condition     = length(aws_s3_bucket_replication_configuration.this) == 0
    error_message = "Replication is off unless configured."
  }
}

run "replicated_bucket" {
  command = apply

  variables {
    replication = {
      destination_bucket_arn  = "arn:aws:s3:::mlops-kit-test-raw-123456789012-replica"
      destination_kms_key_arn = "arn:aws:kms:us-west-2:123456789012:key/replica"
    }
  }

  assert {
    condition     = aws_s3_bucket_replication_configuration.this[0].rule[0].destination[0].bucket == "arn:aws:s3:::mlops-kit-test-raw-123456789012-replica"
    error_message = "Objects must replicate to the destination bucket."
  }

  assert {
    condition     = aws_s3_bucket_replication_configuration.this[0].rule[0].destination[0].encryption_configuration[0].replica_kms_key_id == "arn:aws:kms:us-west-2:123456789012:key/replica"
    error_message = "Replicas must be encrypted with the destination key."
  }
}

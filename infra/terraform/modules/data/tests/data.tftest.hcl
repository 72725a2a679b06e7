mock_provider "aws" {
  source = "../../testing/aws"
}

mock_provider "aws" {
  alias  = "replica"
  source = "../../testing/aws"
}

variables {
  name                       = "mlops-kit-test"
  data_subnet_ids            = ["subnet-data-a", "subnet-data-b"]
  database_security_group_id = "sg-database"
}

run "stores_are_encrypted" {
  command = apply

  assert {
    condition     = alltrue([for e in values(output.bucket_encryption) : e.sse_algorithm == "aws:kms" && e.kms_key_arn == module.kms.key_arn])
    error_message = "Every data bucket must default to SSE-KMS with the data key."
  }

  assert {
    condition     = output.log_bucket_encryption == "AES256"
    error_message = "The log bucket uses SSE-S3, the only encryption log delivery supports."
  }

  assert {
    condition     = length(aws_dynamodb_table.features) == 2 && alltrue([for t in aws_dynamodb_table.features : t.server_side_encryption[0].enabled && t.server_side_encryption[0].kms_key_arn == module.kms.key_arn])
    error_message = "Every feature table must be encrypted with the data key."
  }

  assert {
    condition     = aws_kinesis_stream.ingest.encryption_type == "KMS" && aws_kinesis_stream.ingest.kms_key_id == module.kms.key_arn
    error_message = "The stream must be KMS-encrypted with the data key."
  }

  assert {
    condition     = aws_rds_cluster.this.storage_encrypted && aws_rds_cluster.this.kms_key_id == module.kms.key_arn
    error_message = "Aurora storage must be encrypted with the data key."
  }

  assert {
    condition     = aws_rds_cluster.this.manage_master_user_password && aws_rds_cluster.this.master_user_secret_kms_key_id == module.kms.key_arn
    error_message = "The master credentials must live in a KMS-encrypted Secrets Manager secret managed (and rotated) by RDS."
  }

  assert {
    condition     = alltrue([for i in aws_rds_cluster_instance.this : i.performance_insights_enabled && i.performance_insights_kms_key_id == module.kms.key_arn])
    error_message = "Performance Insights data must be encrypted with the data key."
  }

  assert {
    condition     = aws_cloudwatch_log_group.aurora.kms_key_id == module.kms.key_arn
    error_message = "The Aurora log group must be encrypted."
  }
}

run "buckets" {
  command = apply

  assert {
    condition     = output.bucket_names == { raw = "mlops-kit-test-raw-123456789012", processed = "mlops-kit-test-processed-123456789012", models = "mlops-kit-test-models-123456789012", artifacts = "mlops-kit-test-artifacts-123456789012" }
    error_message = "The four data buckets are raw, processed, models and artifacts."
  }

  assert {
    condition     = alltrue(values(output.bucket_public_access_blocked)) && length(output.bucket_public_access_blocked) == 5
    error_message = "Every bucket, the log bucket included, must block public access."
  }

  assert {
    condition     = alltrue([for v in values(output.bucket_versioning) : v == "Enabled"])
    error_message = "Every data bucket must be versioned."
  }

  assert {
    condition = alltrue([
      for p in values(output.bucket_policies) :
      anytrue([for s in jsondecode(p).Statement : s.Effect == "Deny" && try(s.Condition.Bool["aws:SecureTransport"], "") == "false"])
    ])
    error_message = "Every data bucket policy must deny requests without TLS."
  }

  assert {
    condition     = !anytrue(values(output.bucket_replication)) && length(output.replica_bucket_names) == 0
    error_message = "Replication is off by default."
  }
}

run "database" {
  command = apply

  assert {
    condition     = aws_rds_cluster.this.engine == "aurora-postgresql" && aws_rds_cluster.this.port == 5432
    error_message = "The warehouse is Aurora PostgreSQL on 5432."
  }

  assert {
    condition     = aws_rds_cluster.this.deletion_protection && aws_rds_cluster.this.iam_database_authentication_enabled && !aws_rds_cluster.this.skip_final_snapshot
    error_message = "Aurora needs deletion protection, IAM authentication and a final snapshot by default."
  }

  assert {
    condition     = aws_rds_cluster.this.vpc_security_group_ids == toset(["sg-database"]) && aws_db_subnet_group.this.subnet_ids == toset(["subnet-data-a", "subnet-data-b"])
    error_message = "Aurora lives in the data subnets behind the database security group."
  }

  assert {
    condition     = length(aws_rds_cluster_instance.this) == 2 && alltrue([for i in aws_rds_cluster_instance.this : !i.publicly_accessible])
    error_message = "By default Aurora runs a writer and a reader (multi-AZ), none publicly accessible."
  }

  assert {
    condition     = anytrue([for p in aws_rds_cluster_parameter_group.this.parameter : p.name == "rds.force_ssl" && p.value == "1"])
    error_message = "Aurora must refuse connections without TLS."
  }

}

run "feature_tables" {
  command = apply

  assert {
    condition     = output.feature_table_prefix == "mlops-kit-test-features"
    error_message = "The feature table prefix (mlops_kit's features.dynamodb_table) is <name>-features."
  }

  assert {
    condition     = output.feature_table_names == { device_hourly = "mlops-kit-test-features.device_hourly", device_daily = "mlops-kit-test-features.device_daily" }
    error_message = "Each default feature view gets the table Feast names <prefix>.<view>."
  }

  assert {
    condition     = alltrue([for t in aws_dynamodb_table.features : t.billing_mode == "PAY_PER_REQUEST" && t.point_in_time_recovery[0].enabled])
    error_message = "Every feature table is on-demand with point-in-time recovery."
  }

  assert {
    condition = alltrue([
      for t in aws_dynamodb_table.features :
      t.hash_key == "entity_id" && t.range_key == null && length(t.attribute) == 1 && one(t.attribute).name == "entity_id" && one(t.attribute).type == "S"
    ])
    error_message = "Every feature table has Feast's schema: hash key entity_id of type S, no range key."
  }

  assert {
    condition     = alltrue([for t in aws_dynamodb_table.features : t.deletion_protection_enabled])
    error_message = "Feature tables are protected from deletion by default."
  }

  assert {
    condition     = length(output.feature_table_arns) == 2
    error_message = "One ARN per feature table."
  }
}

run "feature_views_configurable" {
  command = plan

  variables {
    feature_views       = ["device_hourly", "device_daily", "site_weekly"]
    deletion_protection = false
  }

  assert {
    condition     = toset(values(output.feature_table_names)) == toset(["mlops-kit-test-features.device_hourly", "mlops-kit-test-features.device_daily", "mlops-kit-test-features.site_weekly"])
    error_message = "Every listed feature view gets its own table."
  }

  assert {
    condition     = alltrue([for t in aws_dynamodb_table.features : !t.deletion_protection_enabled])
    error_message = "deletion_protection = false applies to every feature table."
  }
}

run "feature_views_must_not_be_empty" {
  command = plan

  variables {
    feature_views = []
  }

  expect_failures = [var.feature_views]
}

run "feature_view_names_are_validated" {
  command = plan

  variables {
    feature_views = ["device_hourly", "Device-Daily"]
  }

  expect_failures = [var.feature_views]
}

run "replication" {
  command = apply

  variables {
    replication_enabled = true
  }

  assert {
    condition     = toset(keys(output.replica_bucket_names)) == toset(["raw", "models"])
    error_message = "Replication copies the raw and models buckets."
  }

  assert {
    condition     = output.bucket_replication == { raw = true, processed = false, models = true, artifacts = false }
    error_message = "Only the replicated buckets carry a replication configuration."
  }

  assert {
    condition     = alltrue(values(output.bucket_public_access_blocked)) && length(output.bucket_public_access_blocked) == 7
    error_message = "Replica buckets block public access too."
  }
}

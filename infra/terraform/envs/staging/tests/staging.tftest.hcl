mock_provider "aws" {
  source = "../../testing/aws"
}

mock_provider "aws" {
  alias  = "replica"
  source = "../../testing/aws"
}

variables {
  certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
}

run "staging_environment" {
  command = plan

  assert {
    condition = (
      output.raw_bucket_name == "mlops-kit-staging-raw-123456789012" &&
      output.processed_bucket_name == "mlops-kit-staging-processed-123456789012" &&
      output.models_bucket_name == "mlops-kit-staging-models-123456789012" &&
      output.artifacts_bucket_name == "mlops-kit-staging-artifacts-123456789012"
    )
    error_message = "Bucket outputs must name the staging buckets."
  }

  assert {
    condition     = output.cluster_name == "mlops-kit-staging" && output.feature_table_prefix == "mlops-kit-staging-features" && output.kinesis_stream_name == "mlops-kit-staging-ingest"
    error_message = "Cluster, feature table prefix and stream outputs must name the staging resources."
  }

  assert {
    condition     = output.feature_table_names == { device_hourly = "mlops-kit-staging-features.device_hourly", device_daily = "mlops-kit-staging-features.device_daily" }
    error_message = "Each feature view needs its table, named <prefix>.<view> as Feast's DynamoDB online store expects."
  }

  assert {
    condition     = toset(keys(output.service_account_role_arns)) == toset(["api", "inference", "data_pipeline", "training", "pipelines"])
    error_message = "Every workload needs its IRSA role ARN in the outputs."
  }

  assert {
    condition     = toset(keys(output.ecr_repository_urls)) == toset(["training", "serving", "pipeline"])
    error_message = "The training, serving and pipeline repository URLs must be in the outputs."
  }

  assert {
    condition     = output.gpu_node_label == "mlops-kit/accelerator=nvidia-gpu" && output.gpu_taint == "nvidia.com/gpu=present:NoSchedule"
    error_message = "GPU label and taint outputs must match what the training launcher uses."
  }

  assert {
    condition     = output.aurora_database_name == "mlops" && output.aurora_master_username == "mlops_admin"
    error_message = "Warehouse outputs must be present."
  }

  assert {
    condition     = length(module.platform.nat_gateway_ids) == 2
    error_message = "staging runs 2 NAT gateway(s)."
  }

  assert {
    condition     = length(module.platform.replica_bucket_names) == 0
    error_message = "Cross-region replication does not match the staging environment."
  }

  assert {
    condition     = toset(keys(module.platform.node_group_names)) == toset(["general", "compute", "gpu"])
    error_message = "The general, compute and GPU node groups must exist."
  }
}

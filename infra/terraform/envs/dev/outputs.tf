# These outputs are what `mlops-kit config from-terraform` reads
# (mlops_kit.platform.terraform.config_from_outputs); keep the names stable.

output "region" {
  description = "AWS region of the platform."
  value       = var.region
}

output "raw_bucket_name" {
  description = "Bucket of raw data."
  value       = module.platform.bucket_names["raw"]
}

output "processed_bucket_name" {
  description = "Bucket of processed and quarantined data."
  value       = module.platform.bucket_names["processed"]
}

output "models_bucket_name" {
  description = "Bucket of trained models."
  value       = module.platform.bucket_names["models"]
}

output "artifacts_bucket_name" {
  description = "Bucket of pipeline artifacts."
  value       = module.platform.bucket_names["artifacts"]
}

output "kinesis_stream_name" {
  description = "Kinesis ingest stream."
  value       = module.platform.stream_name
}

output "feature_table_prefix" {
  description = "Prefix of the DynamoDB feature tables, one per feature view (`<prefix>.<view>`): Feast's table_name_template prefix."
  value       = module.platform.feature_table_prefix
}

output "feature_table_names" {
  description = "DynamoDB feature table name by feature view."
  value       = module.platform.feature_table_names
}

output "aurora_writer_endpoint" {
  description = "Writer endpoint of the Aurora PostgreSQL cluster."
  value       = module.platform.aurora.writer_endpoint
}

output "aurora_database_name" {
  description = "Database of the warehouse."
  value       = module.platform.aurora.database_name
}

output "aurora_master_username" {
  description = "Master user of the Aurora cluster."
  value       = module.platform.aurora.master_username
}

output "aurora_master_secret_arn" {
  description = "Secrets Manager secret with the (rotated) master credentials."
  value       = module.platform.aurora.secret_arn
}

output "cluster_name" {
  description = "EKS cluster name."
  value       = module.platform.cluster_name
}

output "service_account_role_arns" {
  description = "IRSA role ARN by workload: api, inference, data_pipeline, training, pipelines."
  value       = module.platform.service_account_role_arns
}

output "ecr_repository_urls" {
  description = "ECR repository URL by image: training, serving, pipeline."
  value       = module.platform.repository_urls
}

output "gpu_node_label" {
  description = "Label of the GPU nodes (key=value)."
  value       = module.platform.gpu_node_label
}

output "gpu_taint" {
  description = "Taint of the GPU nodes (key=value:Effect)."
  value       = module.platform.gpu_taint
}

output "alb_dns_name" {
  description = "DNS name of the ALB (null when the edge is off)."
  value       = module.platform.alb_dns_name
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = module.network.vpc_id
}

output "bucket_names" {
  description = "Data bucket names by role (raw, processed, models, artifacts)."
  value       = module.data.bucket_names
}

output "feature_table_prefix" {
  description = "Prefix of the DynamoDB feature tables (`<prefix>.<view>`), mlops_kit's `features.dynamodb_table`."
  value       = module.data.feature_table_prefix
}

output "feature_table_names" {
  description = "DynamoDB feature table name by feature view."
  value       = module.data.feature_table_names
}

output "stream_name" {
  description = "Kinesis ingest stream."
  value       = module.data.stream_name
}

output "aurora" {
  description = "Connection facts of the Aurora cluster (no password: it lives in the secret)."
  value = {
    writer_endpoint = module.data.aurora_writer_endpoint
    reader_endpoint = module.data.aurora_reader_endpoint
    port            = module.data.aurora_port
    database_name   = module.data.aurora_database_name
    master_username = module.data.aurora_master_username
    secret_arn      = module.data.aurora_master_secret_arn
  }
}

output "cluster_name" {
  description = "EKS cluster name."
  value       = module.eks.cluster_name
}

output "service_account_role_arns" {
  description = "IRSA role ARN of each workload."
  value       = module.eks.service_account_role_arns
}

output "repository_urls" {
  description = "ECR repository URLs by short name."
  value       = module.registry.repository_urls
}

output "gpu_node_label" {
  description = "Node label of the GPU node group, as key=value."
  value       = "${local.gpu_label.key}=${local.gpu_label.value}"
}

output "gpu_taint" {
  description = "Taint of the GPU node group, as key=value:Effect (Kubernetes spelling)."
  value       = "${local.gpu_taint.key}=${local.gpu_taint.value}:NoSchedule"
}

output "alb_dns_name" {
  description = "DNS name of the ALB (null without the edge module)."
  value       = try(module.edge[0].alb_dns_name, null)
}

output "log_bucket_name" {
  description = "Bucket of S3 and ALB access logs."
  value       = module.data.log_bucket_name
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  value       = module.observability.alarm_topic_arn
}

output "nat_gateway_ids" {
  description = "NAT gateways (one, or one per AZ)."
  value       = module.network.nat_gateway_ids
}

output "replica_bucket_names" {
  description = "Cross-region replica buckets by role (empty without replication)."
  value       = module.data.replica_bucket_names
}

output "node_group_names" {
  description = "Managed node groups."
  value       = module.eks.node_group_names
}

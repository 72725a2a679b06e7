output "kms_key_arn" {
  description = "KMS key of the buckets, feature tables, stream, database and its secret."
  value       = module.kms.key_arn
}

output "bucket_names" {
  description = "Data bucket names by role (raw, processed, models, artifacts)."
  value       = { for k, b in module.bucket : k => b.bucket_name }
}

output "bucket_arns" {
  description = "Data bucket ARNs by role."
  value       = { for k, b in module.bucket : k => b.bucket_arn }
}

output "replica_bucket_names" {
  description = "Cross-region replica bucket names by role (empty without replication)."
  value       = { for k, b in module.replica_bucket : k => b.bucket_name }
}

output "log_bucket_name" {
  description = "Bucket receiving S3 server access logs (`s3/`) and ALB access logs (`alb/`)."
  value       = module.log_bucket.bucket_name
}

output "feature_table_prefix" {
  description = "Prefix of the DynamoDB feature tables (`<prefix>.<view>`): the value of mlops_kit's `features.dynamodb_table`."
  value       = local.feature_table_prefix
}

output "feature_table_names" {
  description = "DynamoDB feature table name by feature view."
  value       = { for view, t in aws_dynamodb_table.features : view => t.name }
}

output "feature_table_arns" {
  description = "ARNs of the DynamoDB feature tables, one per feature view."
  value       = [for t in values(aws_dynamodb_table.features) : t.arn]
}

output "stream_name" {
  description = "Name of the Kinesis ingest stream."
  value       = aws_kinesis_stream.ingest.name
}

output "stream_arn" {
  description = "ARN of the Kinesis ingest stream."
  value       = aws_kinesis_stream.ingest.arn
}

output "aurora_cluster_identifier" {
  description = "Identifier of the Aurora cluster."
  value       = aws_rds_cluster.this.cluster_identifier
}

output "aurora_writer_endpoint" {
  description = "Writer endpoint of the Aurora cluster."
  value       = aws_rds_cluster.this.endpoint
}

output "aurora_reader_endpoint" {
  description = "Reader endpoint of the Aurora cluster."
  value       = aws_rds_cluster.this.reader_endpoint
}

output "aurora_port" {
  description = "Port of the Aurora cluster."
  value       = aws_rds_cluster.this.port
}

output "aurora_database_name" {
  description = "Name of the initial database."
  value       = aws_rds_cluster.this.database_name
}

output "aurora_master_username" {
  description = "Master user name."
  value       = aws_rds_cluster.this.master_username
}

output "aurora_master_secret_arn" {
  description = "Secrets Manager secret holding (and rotating) the master credentials."
  value       = aws_rds_cluster.this.master_user_secret[0].secret_arn
}

output "bucket_encryption" {
  description = "Default encryption of every data bucket by role."
  value       = { for k, b in module.bucket : k => b.encryption }
}

output "bucket_public_access_blocked" {
  description = "Public-access-block state of every bucket (data, replicas and logs)."
  value = merge(
    { for k, b in module.bucket : k => b.public_access_blocked },
    { for k, b in module.replica_bucket : "${k}-replica" => b.public_access_blocked },
    { logs = module.log_bucket.public_access_blocked },
  )
}

output "bucket_policies" {
  description = "Bucket policy documents (JSON) of the data buckets by role."
  value       = { for k, b in module.bucket : k => b.policy }
}

output "bucket_versioning" {
  description = "Versioning status of the data buckets by role."
  value       = { for k, b in module.bucket : k => b.versioning_status }
}

output "bucket_replication" {
  description = "Whether each data bucket replicates across regions."
  value       = { for k, b in module.bucket : k => b.replication_enabled }
}

output "log_bucket_encryption" {
  description = "Default encryption of the log bucket."
  value       = module.log_bucket.encryption
}

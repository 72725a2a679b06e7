output "bucket_name" {
  description = "Name of the log bucket, available once its policy admits the log deliveries."
  value       = aws_s3_bucket.this.bucket

  depends_on = [aws_s3_bucket_policy.this, aws_s3_bucket_ownership_controls.this]
}

output "bucket_arn" {
  description = "ARN of the log bucket."
  value       = aws_s3_bucket.this.arn
}

output "encryption" {
  description = "Default encryption algorithm (SSE-S3: log delivery does not support SSE-KMS)."
  value       = one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default[0].sse_algorithm
}

output "public_access_blocked" {
  description = "True when all four public-access-block settings are on."
  value = alltrue([
    aws_s3_bucket_public_access_block.this.block_public_acls,
    aws_s3_bucket_public_access_block.this.block_public_policy,
    aws_s3_bucket_public_access_block.this.ignore_public_acls,
    aws_s3_bucket_public_access_block.this.restrict_public_buckets,
  ])
}

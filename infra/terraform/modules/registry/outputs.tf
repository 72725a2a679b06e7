output "repository_urls" {
  description = "Repository URLs by short name (training, serving, pipeline, ...)."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}

output "repository_arns" {
  description = "Repository ARNs by short name."
  value       = { for k, r in aws_ecr_repository.this : k => r.arn }
}

output "kms_key_arn" {
  description = "KMS key encrypting the repositories."
  value       = module.kms.key_arn
}

output "state_bucket_name" {
  description = "Bucket to name in each environment's backend.hcl."
  value       = module.state_bucket.bucket_name
}

output "state_kms_key_arn" {
  description = "KMS key encrypting the state objects (backend `kms_key_id`)."
  value       = module.kms.key_arn
}

output "backend_config" {
  description = "backend.hcl content for an environment (replace <env>)."
  value       = <<-EOT
    bucket       = "${module.state_bucket.bucket_name}"
    key          = "envs/<env>/terraform.tfstate"
    region       = "${var.region}"
    encrypt      = true
    kms_key_id   = "${module.kms.key_arn}"
    use_lockfile = true
  EOT
}

variable "bucket_name" {
  description = "Globally unique name of the bucket."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "Bucket names are 3-63 lowercase letters, digits, dots or hyphens."
  }
}

variable "kms_key_arn" {
  description = "KMS key for default SSE-KMS encryption of every object."
  type        = string
}

variable "policy_statements" {
  description = "Extra bucket-policy statements (IAM JSON shape). TLS-only statements are always present."
  type        = any
  default     = []
}

variable "lifecycle_rules" {
  description = "Tiering of current objects to cheaper storage classes and expiry of noncurrent versions. Null days skip that step."
  type = object({
    infrequent_access_after_days = optional(number, 30)
    glacier_after_days           = optional(number, 90)
    expire_after_days            = optional(number)
    noncurrent_expire_after_days = optional(number, 90)
  })
  default = {}

  validation {
    condition     = try(var.lifecycle_rules.infrequent_access_after_days >= 30, true)
    error_message = "S3 requires at least 30 days before a transition to STANDARD_IA."
  }

  validation {
    condition     = var.lifecycle_rules.noncurrent_expire_after_days > 30
    error_message = "Noncurrent versions move to STANDARD_IA after 30 days, so they must expire later than that."
  }
}

variable "access_log_bucket" {
  description = "Name of the bucket (same region, see the log-bucket module) receiving S3 server access logs under `s3/<account>/<region>/<bucket>/` (partitioned by event date)."
  type        = string
}

variable "eventbridge_notifications" {
  description = "Send object events to Amazon EventBridge, where pipelines can subscribe to them."
  type        = bool
  default     = true
}

variable "replication" {
  description = "Cross-region replication of every object to a versioned, KMS-encrypted bucket in another region. Null disables it."
  type = object({
    destination_bucket_arn  = string
    destination_kms_key_arn = string
    storage_class           = optional(string, "STANDARD_IA")
  })
  default = null
}

variable "force_destroy" {
  description = "Allow destroy to delete a non-empty bucket. Keep false outside throw-away environments."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags applied to the bucket."
  type        = map(string)
  default     = {}
}

variable "name" {
  description = "Name prefix of every resource (for example `mlops-kit-prod`). Bucket names append the role and the account ID."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 lowercase letters, digits or hyphens (it prefixes bucket names)."
  }
}

variable "data_subnet_ids" {
  description = "Private data subnets of the Aurora subnet group (two AZs)."
  type        = list(string)

  validation {
    condition     = length(var.data_subnet_ids) >= 2
    error_message = "Aurora needs subnets in at least two availability zones."
  }
}

variable "database_security_group_id" {
  description = "Security group of the Aurora cluster (from the security-groups module)."
  type        = string
}

variable "aurora" {
  description = "Aurora PostgreSQL settings. instance_count 1 is a writer only; 2 or more adds readers in other AZs that take over on failure."
  type = object({
    engine_version         = optional(string, "16.4")
    parameter_group_family = optional(string, "aurora-postgresql16")
    instance_class         = optional(string, "db.r6g.large")
    instance_count         = optional(number, 2)
    database_name          = optional(string, "mlops")
    master_username        = optional(string, "mlops_admin")
    backup_retention_days  = optional(number, 14)
  })
  default = {}

  validation {
    condition     = var.aurora.instance_count >= 1 && var.aurora.instance_count <= 15
    error_message = "Aurora clusters hold 1 to 15 instances."
  }

  validation {
    condition     = var.aurora.backup_retention_days >= 1 && var.aurora.backup_retention_days <= 35
    error_message = "Backup retention lies between 1 and 35 days."
  }

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9_]{0,62}$", var.aurora.database_name)) && can(regex("^[a-zA-Z][a-zA-Z0-9_]{0,15}$", var.aurora.master_username))
    error_message = "database_name and master_username start with a letter and hold letters, digits and '_'."
  }
}

variable "feature_views" {
  description = "Feast feature views with an online table: one DynamoDB table `<name>-features.<view>` each (Feast's `table_name_template` with `features.dynamodb_table = <name>-features`). Keep in step with mlops_kit.features.catalog.VIEWS."
  type        = list(string)
  default     = ["device_hourly", "device_daily"]

  validation {
    condition     = length(var.feature_views) > 0
    error_message = "feature_views must name at least one feature view."
  }

  validation {
    condition     = alltrue([for v in var.feature_views : can(regex("^[a-z0-9_]+$", v))])
    error_message = "Feature view names hold only lowercase letters, digits and '_'."
  }
}

variable "deletion_protection" {
  description = "Protect the Aurora cluster and the feature tables from deletion."
  type        = bool
  default     = true
}

variable "skip_final_snapshot" {
  description = "Skip the final Aurora snapshot on destroy. Only throw-away environments set it."
  type        = bool
  default     = false
}

variable "stream_mode" {
  description = "Kinesis capacity mode: ON_DEMAND or PROVISIONED."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "PROVISIONED"], var.stream_mode)
    error_message = "stream_mode must be ON_DEMAND or PROVISIONED."
  }
}

variable "stream_shard_count" {
  description = "Shards of the stream in PROVISIONED mode."
  type        = number
  default     = 1

  validation {
    condition     = var.stream_shard_count >= 1
    error_message = "A provisioned stream needs at least one shard."
  }
}

variable "stream_retention_hours" {
  description = "Retention of the Kinesis stream in hours (24-8760)."
  type        = number
  default     = 24

  validation {
    condition     = var.stream_retention_hours >= 24 && var.stream_retention_hours <= 8760
    error_message = "Retention lies between 24 and 8760 hours."
  }
}

variable "bucket_lifecycle" {
  description = "Lifecycle of each data bucket by role (see the s3-bucket module's lifecycle_rules)."
  type = map(object({
    infrequent_access_after_days = optional(number, 30)
    glacier_after_days           = optional(number, 90)
    expire_after_days            = optional(number)
    noncurrent_expire_after_days = optional(number, 90)
  }))
  default = {
    raw       = { infrequent_access_after_days = 30, glacier_after_days = 90 }
    processed = { infrequent_access_after_days = 30, glacier_after_days = 180 }
    models    = { infrequent_access_after_days = 60, glacier_after_days = null, noncurrent_expire_after_days = 365 }
    artifacts = { infrequent_access_after_days = 30, glacier_after_days = null, expire_after_days = 365 }
  }

  validation {
    condition     = toset(keys(var.bucket_lifecycle)) == toset(["raw", "processed", "models", "artifacts"])
    error_message = "bucket_lifecycle must name exactly raw, processed, models and artifacts."
  }
}

variable "replication_enabled" {
  description = "Replicate the buckets named in replicated_buckets to the region of the `aws.replica` provider."
  type        = bool
  default     = false
}

variable "replicated_buckets" {
  description = "Bucket roles replicated across regions when replication is enabled."
  type        = list(string)
  default     = ["raw", "models"]

  validation {
    condition     = alltrue([for b in var.replicated_buckets : contains(["raw", "processed", "models", "artifacts"], b)])
    error_message = "Buckets are named by role: raw, processed, models or artifacts."
  }
}

variable "force_destroy_buckets" {
  description = "Allow destroy to empty and delete the buckets. Only throw-away environments set it."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "Retention of the Aurora PostgreSQL log group."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}

variable "name" {
  description = "Name of the platform instance, prefix of every resource (for example `mlops-kit-prod`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,23}$", var.name))
    error_message = "name must be 2-24 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Environment: dev, staging or prod."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "azs" {
  description = "The two availability zones of the platform."
  type        = list(string)
}

variable "single_nat_gateway" {
  description = "One shared NAT gateway instead of one per AZ."
  type        = bool
}

variable "interface_endpoints" {
  description = "Interface VPC endpoints reached from the app subnets."
  type        = list(string)
  default     = ["sts", "ecr.api", "ecr.dkr", "logs", "kinesis-streams", "secretsmanager"]
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the EKS control plane."
  type        = string
  default     = "1.31"
}

variable "eks_public_access_cidrs" {
  description = "CIDR blocks allowed to reach a public API endpoint. Empty keeps the endpoint private only."
  type        = list(string)
  default     = []
}

variable "node_groups" {
  description = "Sizes of the general (t3.large), compute (c5.xlarge) and GPU node groups and their capacity type (SPOT or ON_DEMAND; the GPU group may differ)."
  type = object({
    capacity_type = string
    general = object({
      instance_types = optional(list(string), ["t3.large"])
      min_size       = number
      max_size       = number
      desired_size   = number
    })
    compute = object({
      instance_types = optional(list(string), ["c5.xlarge"])
      min_size       = number
      max_size       = number
      desired_size   = number
    })
    gpu = object({
      instance_types = optional(list(string), ["g5.xlarge"])
      capacity_type  = optional(string)
      min_size       = number
      max_size       = number
      desired_size   = number
    })
  })
}

variable "aurora" {
  description = "Aurora PostgreSQL settings (see the data module)."
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
}

variable "stream_mode" {
  description = "Kinesis capacity mode: ON_DEMAND or PROVISIONED."
  type        = string
  default     = "ON_DEMAND"
}

variable "stream_shard_count" {
  description = "Shards of the stream in PROVISIONED mode."
  type        = number
  default     = 1
}

variable "replication_enabled" {
  description = "Replicate the raw and models buckets to the region of the `aws.replica` provider."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Deletion protection on Aurora, the feature table and the ALB."
  type        = bool
  default     = true
}

variable "disposable" {
  description = "Throw-away environment: destroy empties buckets and repositories and skips the final database snapshot."
  type        = bool
  default     = false
}

variable "enable_edge" {
  description = "Create the internet-facing ALB (and its WAF). Needs certificate_arn."
  type        = bool
  default     = true
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener (required when enable_edge is true)."
  type        = string
  default     = null
}

variable "enable_waf" {
  description = "Attach the WAF web ACL to the ALB."
  type        = bool
  default     = true
}

variable "enable_cloudtrail" {
  description = "Create the CloudTrail trail (off where an organisation trail exists)."
  type        = bool
  default     = true
}

variable "enable_guardduty" {
  description = "Enable GuardDuty (off where a delegated administrator manages it)."
  type        = bool
  default     = true
}

variable "enable_config" {
  description = "Enable the AWS Config recorder (off where an organisation recorder exists)."
  type        = bool
  default     = true
}

variable "enable_alarms" {
  description = "Create the CloudWatch alarms."
  type        = bool
  default     = true
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the alarm topic."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}

variable "cluster_name" {
  description = "Name of the EKS cluster."
  type        = string

  validation {
    condition     = can(regex("^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$", var.cluster_name))
    error_message = "Cluster names start with a letter or digit and hold letters, digits, '-' and '_' (at most 100)."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane."
  type        = string
  default     = "1.31"

  validation {
    condition     = can(regex("^1\\.[0-9]+$", var.kubernetes_version))
    error_message = "Give a minor version such as 1.31."
  }
}

variable "subnet_ids" {
  description = "Private app subnets of the control-plane ENIs and the nodes."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "EKS needs subnets in at least two availability zones."
  }
}

variable "cluster_security_group_id" {
  description = "Additional security group of the control-plane ENIs (from the security-groups module)."
  type        = string
}

variable "node_security_group_id" {
  description = "Security group of the worker nodes (from the security-groups module)."
  type        = string
}

variable "endpoint_public_access" {
  description = "Expose the API server endpoint publicly as well (the private endpoint is always on)."
  type        = bool
  default     = false
}

variable "endpoint_public_access_cidrs" {
  description = "CIDR blocks allowed to reach the public endpoint when it is enabled."
  type        = list(string)
  default     = []

  validation {
    condition     = !contains(var.endpoint_public_access_cidrs, "0.0.0.0/0") && alltrue([for c in var.endpoint_public_access_cidrs : can(cidrnetmask(c))])
    error_message = "The public endpoint must be restricted to specific IPv4 CIDR blocks; 0.0.0.0/0 is refused."
  }
}

variable "control_plane_log_types" {
  description = "Control-plane log types sent to CloudWatch Logs."
  type        = list(string)
  default     = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  validation {
    condition     = alltrue([for t in var.control_plane_log_types : contains(["api", "audit", "authenticator", "controllerManager", "scheduler"], t)])
    error_message = "Log types are api, audit, authenticator, controllerManager and scheduler."
  }
}

variable "log_retention_days" {
  description = "Retention of the control-plane log group."
  type        = number
  default     = 365
}

variable "node_groups" {
  description = <<-EOT
    Managed node groups by name. `capacity_type` is ON_DEMAND or SPOT. The GPU group carries the
    label `mlops-kit/accelerator=nvidia-gpu` and the taint `nvidia.com/gpu=present:NoSchedule`
    that the training launcher selects and tolerates.
  EOT
  type = map(object({
    instance_types = list(string)
    capacity_type  = optional(string, "ON_DEMAND")
    ami_type       = optional(string, "AL2023_x86_64_STANDARD")
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_size      = optional(number, 50)
    labels         = optional(map(string), {})
    taints = optional(list(object({
      key    = string
      value  = optional(string)
      effect = string
    })), [])
  }))

  validation {
    condition     = alltrue([for g in values(var.node_groups) : contains(["ON_DEMAND", "SPOT"], g.capacity_type)])
    error_message = "capacity_type must be ON_DEMAND or SPOT."
  }

  validation {
    condition     = alltrue([for g in values(var.node_groups) : g.min_size <= g.desired_size && g.desired_size <= g.max_size])
    error_message = "Each node group needs min_size <= desired_size <= max_size."
  }

  validation {
    condition     = alltrue(flatten([for g in values(var.node_groups) : [for t in g.taints : contains(["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"], t.effect)]]))
    error_message = "Taint effects are NO_SCHEDULE, NO_EXECUTE or PREFER_NO_SCHEDULE."
  }
}

variable "service_accounts" {
  description = "Kubernetes service account (namespace and name) trusted by each workload's IRSA role."
  type = map(object({
    namespace = string
    name      = string
  }))
  default = {
    api           = { namespace = "production", name = "api" }
    inference     = { namespace = "ai-inference", name = "inference" }
    data_pipeline = { namespace = "data-pipeline", name = "etl" }
    training      = { namespace = "data-pipeline", name = "training" }
    pipelines     = { namespace = "kubeflow", name = "pipeline-runner" }
  }

  validation {
    condition     = toset(keys(var.service_accounts)) == toset(["api", "inference", "data_pipeline", "training", "pipelines"])
    error_message = "service_accounts must name exactly api, inference, data_pipeline, training and pipelines."
  }
}

variable "bucket_names" {
  description = "Data buckets by role: raw, processed, models and artifacts."
  type        = map(string)

  validation {
    condition     = toset(keys(var.bucket_names)) == toset(["raw", "processed", "models", "artifacts"])
    error_message = "bucket_names must name exactly raw, processed, models and artifacts."
  }
}

variable "workload_bucket_access" {
  description = "Buckets (by role) each workload reads and writes."
  type = map(object({
    read  = list(string)
    write = list(string)
  }))
  default = {
    api           = { read = [], write = [] }
    inference     = { read = ["models"], write = [] }
    data_pipeline = { read = ["raw"], write = ["processed"] }
    training      = { read = ["processed"], write = ["models", "artifacts"] }
    pipelines     = { read = ["processed", "models"], write = ["artifacts"] }
  }

  validation {
    condition     = toset(keys(var.workload_bucket_access)) == toset(["api", "inference", "data_pipeline", "training", "pipelines"])
    error_message = "workload_bucket_access must name exactly api, inference, data_pipeline, training and pipelines."
  }

  validation {
    condition     = alltrue(flatten([for a in values(var.workload_bucket_access) : [for b in concat(a.read, a.write) : contains(["raw", "processed", "models", "artifacts"], b)]]))
    error_message = "Buckets are named by role: raw, processed, models or artifacts."
  }
}

variable "feature_table_arns" {
  description = "ARNs of the DynamoDB feature tables (one per Feast feature view); the feature statements name exactly these tables."
  type        = list(string)

  validation {
    condition     = length(var.feature_table_arns) > 0
    error_message = "feature_table_arns must name at least one table."
  }

  validation {
    condition     = alltrue([for a in var.feature_table_arns : can(regex("^arn:[a-z-]+:dynamodb:[a-z0-9-]+:[0-9]{12}:table/[A-Za-z0-9_.-]+$", a))])
    error_message = "Every entry must be a DynamoDB table ARN (no wildcards, no index or stream ARNs)."
  }
}

variable "stream_arn" {
  description = "ARN of the Kinesis ingest stream."
  type        = string
}

variable "database_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the warehouse credentials."
  type        = string
}

variable "data_kms_key_arn" {
  description = "KMS key encrypting the buckets, feature tables and stream."
  type        = string
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}

variable "name" {
  description = "Name prefix of every resource (for example `mlops-kit-prod`)."
  type        = string
}

variable "enable_cloudtrail" {
  description = "Create a multi-region CloudTrail trail. Turn off in accounts whose trail is an organisation trail."
  type        = bool
  default     = true
}

variable "enable_guardduty" {
  description = "Enable a GuardDuty detector. Turn off where a delegated administrator manages GuardDuty."
  type        = bool
  default     = true
}

variable "enable_config" {
  description = "Record resource configuration with AWS Config. Turn off where an organisation-wide recorder exists (one recorder per region and account)."
  type        = bool
  default     = true
}

variable "enable_alarms" {
  description = "Create the CloudWatch alarms for the targets given in alarm_targets."
  type        = bool
  default     = true
}

variable "alarm_targets" {
  description = "Resources watched by the alarms; null (or an empty map) skips that resource's alarms. feature_table_names maps each feature view to its DynamoDB table, one throttling alarm each."
  type = object({
    aurora_cluster_identifier = optional(string)
    stream_name               = optional(string)
    feature_table_names       = optional(map(string), {})
    alb_arn_suffix            = optional(string)
  })
  default = {}
}

variable "enable_alb_alarms" {
  description = "Alarm on the ALB named by alarm_targets.alb_arn_suffix (a separate switch because the suffix is only known after apply)."
  type        = bool
  default     = false
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the alarm topic."
  type        = list(string)
  default     = []
}

variable "workload_log_groups" {
  description = "Application log groups created under `/mlops-kit/<name>/`."
  type        = list(string)
  default     = ["api", "inference", "data-pipeline", "training", "pipelines"]
}

variable "log_retention_days" {
  description = "Retention of every log group of this module."
  type        = number
  default     = 365
}

variable "access_log_bucket" {
  description = "Bucket receiving the audit bucket's S3 server access logs."
  type        = string
}

variable "audit_retention_days" {
  description = "Days after which CloudTrail and Config objects expire from the audit bucket."
  type        = number
  default     = 2557
}

variable "cloudtrail_data_event_bucket_arns" {
  description = "Buckets whose object-level (data) events the trail records."
  type        = list(string)
  default     = []
}

variable "force_destroy_bucket" {
  description = "Allow destroy to delete a non-empty audit bucket. Only throw-away environments set it."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}

variable "bucket_name" {
  description = "Globally unique name of the log bucket."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "Bucket names are 3-63 lowercase letters, digits, dots or hyphens."
  }
}

variable "expire_after_days" {
  description = "Days after which log objects expire."
  type        = number
  default     = 365

  validation {
    condition     = var.expire_after_days > 30
    error_message = "Logs move to STANDARD_IA after 30 days, so they must expire later than that."
  }
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

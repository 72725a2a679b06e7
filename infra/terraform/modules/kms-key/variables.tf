variable "alias" {
  description = "Alias of the key, without the `alias/` prefix."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9/_-]+$", var.alias)) && !startswith(var.alias, "aws/")
    error_message = "The alias may hold letters, digits, '/', '_' and '-' only, and must not start with 'aws/'."
  }
}

variable "description" {
  description = "Description stored on the key."
  type        = string
}

variable "policy_statements" {
  description = "Extra key-policy statements (objects in IAM JSON shape), for example service principals that encrypt with the key. The account root always administers the key."
  type        = any
  default     = []
}

variable "deletion_window_in_days" {
  description = "Waiting period before a scheduled deletion takes effect."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "The deletion window must lie between 7 and 30 days."
  }
}

variable "tags" {
  description = "Tags applied to the key."
  type        = map(string)
  default     = {}
}

variable "region" {
  description = "AWS region of the platform."
  type        = string
  default     = "us-east-1"
}

variable "replica_region" {
  description = "Region of the cross-region bucket replicas."
  type        = string
  default     = "us-west-2"
}

variable "azs" {
  description = "The two availability zones used, in the region above."
  type        = list(string)
  default     = ["us-east-1a", "us-east-1b"]
}

variable "eks_public_access_cidrs" {
  description = "CIDR blocks allowed to reach a public EKS API endpoint; empty keeps it private only."
  type        = list(string)
  default     = []
}

variable "enable_edge" {
  description = "Create the ALB and WAF (needs certificate_arn)."
  type        = bool
  default     = true
}

variable "certificate_arn" {
  description = "ACM certificate of the ALB's HTTPS listener."
  type        = string
  default     = null
}

variable "enable_waf" {
  description = "Attach the WAF web ACL to the ALB."
  type        = bool
  default     = true
}

variable "enable_cloudtrail" {
  description = "Create a CloudTrail trail (off where an organisation trail exists)."
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

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the alarm topic."
  type        = list(string)
  default     = []
}

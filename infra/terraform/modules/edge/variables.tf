variable "name" {
  description = "Name of the ALB and the web ACL (at most 28 characters, the target group appends `-app`)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9-]{1,28}$", var.name))
    error_message = "name holds letters, digits and hyphens, at most 28 characters."
  }
}

variable "vpc_id" {
  description = "VPC of the target group."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets of the ALB (two AZs)."
  type        = list(string)
}

variable "alb_security_group_id" {
  description = "Security group of the ALB (from the security-groups module)."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate served by the HTTPS listener."
  type        = string
  nullable    = false
}

variable "ssl_policy" {
  description = "TLS negotiation policy of the listener; TLS 1.3 policies only."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"

  validation {
    condition     = startswith(var.ssl_policy, "ELBSecurityPolicy-TLS13-")
    error_message = "Use a TLS 1.3 policy (ELBSecurityPolicy-TLS13-...)."
  }
}

variable "app_port" {
  description = "Port the workloads listen on (target group port)."
  type        = number
  default     = 8080
}

variable "health_check_path" {
  description = "HTTP path of the target health check."
  type        = string
  default     = "/healthz"
}

variable "access_log_bucket" {
  description = "SSE-S3 bucket receiving ALB access logs under `alb/` (the data module's log bucket)."
  type        = string
}

variable "deletion_protection" {
  description = "Protect the ALB from deletion."
  type        = bool
  default     = true
}

variable "enable_waf" {
  description = "Attach a WAFv2 web ACL with AWS managed rule groups. Turn off only where a central Firewall Manager policy attaches one."
  type        = bool
  default     = true
}

variable "waf_managed_rule_groups" {
  description = "AWS managed rule groups evaluated after AWSManagedRulesKnownBadInputsRuleSet (always first, it covers Log4j), in priority order. With it, the defaults cover the OWASP Top 10 classes (common rule set, SQL injection, Linux exploits, IP reputation)."
  type        = list(string)
  default = [
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesSQLiRuleSet",
    "AWSManagedRulesLinuxRuleSet",
  ]

  validation {
    condition     = !contains(var.waf_managed_rule_groups, "AWSManagedRulesKnownBadInputsRuleSet")
    error_message = "AWSManagedRulesKnownBadInputsRuleSet is always present; do not list it again."
  }
}

variable "waf_rate_limit" {
  description = "Requests per 5 minutes per client IP before the rate rule blocks."
  type        = number
  default     = 2000
}

variable "log_retention_days" {
  description = "Retention of the WAF log group."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}

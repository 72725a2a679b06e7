variable "name" {
  description = "Name prefix of the security groups."
  type        = string
}

variable "vpc_id" {
  description = "VPC the security groups belong to."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC (DNS egress from the nodes stays inside it)."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr))
    error_message = "vpc_cidr must be an IPv4 CIDR block."
  }
}

variable "alb_ingress_cidrs" {
  description = "Sources allowed to reach the ALB on 443. The reference architecture serves the internet."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.alb_ingress_cidrs) > 0 && alltrue([for c in var.alb_ingress_cidrs : can(cidrnetmask(c))])
    error_message = "Give at least one IPv4 CIDR block."
  }
}

variable "app_port" {
  description = "Port the workloads listen on behind the ALB."
  type        = number
  default     = 8080

  validation {
    condition     = var.app_port > 1024 && var.app_port < 65536
    error_message = "app_port must be an unprivileged port."
  }
}

variable "database_port" {
  description = "Port of the database: 5432 for PostgreSQL, 3306 for MySQL."
  type        = number
  default     = 5432

  validation {
    condition     = contains([5432, 3306], var.database_port)
    error_message = "database_port must be 5432 (PostgreSQL) or 3306 (MySQL)."
  }
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}

variable "name" {
  description = "Name prefix of every resource (for example `mlops-kit-prod`)."
  type        = string
}

variable "azs" {
  description = "Availability zones, one per subnet of each tier."
  type        = list(string)

  validation {
    condition     = length(var.azs) == 2
    error_message = "The reference network spans exactly two availability zones."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr))
    error_message = "vpc_cidr must be an IPv4 CIDR block."
  }
}

variable "public_subnet_cidrs" {
  description = "Public subnets (ALB, NAT gateways), one per AZ."
  type        = list(string)
  default     = ["10.0.1.0/24", "10.0.2.0/24"]

  validation {
    condition     = length(var.public_subnet_cidrs) == 2 && alltrue([for c in var.public_subnet_cidrs : can(cidrnetmask(c))])
    error_message = "Give two IPv4 CIDR blocks, one per AZ."
  }
}

variable "app_subnet_cidrs" {
  description = "Private app subnets (EKS nodes and pods), one per AZ."
  type        = list(string)
  default     = ["10.0.10.0/24", "10.0.11.0/24"]

  validation {
    condition     = length(var.app_subnet_cidrs) == 2 && alltrue([for c in var.app_subnet_cidrs : can(cidrnetmask(c))])
    error_message = "Give two IPv4 CIDR blocks, one per AZ."
  }
}

variable "data_subnet_cidrs" {
  description = "Private data subnets (Aurora), one per AZ. They have no route out of the VPC."
  type        = list(string)
  default     = ["10.0.20.0/24", "10.0.21.0/24"]

  validation {
    condition     = length(var.data_subnet_cidrs) == 2 && alltrue([for c in var.data_subnet_cidrs : can(cidrnetmask(c))])
    error_message = "Give two IPv4 CIDR blocks, one per AZ."
  }
}

variable "single_nat_gateway" {
  description = "Share one NAT gateway between the AZs (cheaper, not AZ-resilient). Production uses one per AZ."
  type        = bool
  default     = false
}

variable "interface_endpoints" {
  description = "AWS services reached through interface endpoints from the app subnets (short names such as `sts`, `ecr.api`)."
  type        = list(string)
  default     = ["sts", "ecr.api", "ecr.dkr", "logs", "kinesis-streams", "secretsmanager"]
}

variable "flow_log_retention_days" {
  description = "Retention of the VPC flow-log group."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "Use a retention that CloudWatch Logs accepts."
  }
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}

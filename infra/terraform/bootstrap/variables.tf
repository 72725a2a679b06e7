variable "region" {
  description = "Region of the state bucket (usually the platform's region)."
  type        = string
  default     = "us-east-1"
}

variable "name" {
  description = "Prefix of the state bucket name; the account ID is appended."
  type        = string
  default     = "mlops-kit"
}

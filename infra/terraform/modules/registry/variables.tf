variable "name" {
  description = "Prefix of the repository names (`<name>/<repository>`)."
  type        = string
}

variable "repositories" {
  description = "Repositories to create. mlops_kit's config maps training, serving and pipeline images to them."
  type        = list(string)
  default     = ["training", "serving", "pipeline"]

  validation {
    condition     = alltrue([for r in ["training", "serving", "pipeline"] : contains(var.repositories, r)])
    error_message = "The training, serving and pipeline repositories are required."
  }
}

variable "untagged_image_expiry_days" {
  description = "Days after which untagged images expire."
  type        = number
  default     = 14
}

variable "max_tagged_images" {
  description = "Images kept per repository."
  type        = number
  default     = 200
}

variable "force_delete" {
  description = "Allow destroy to delete repositories that still hold images. Only throw-away environments set it."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags applied to every resource."
  type        = map(string)
  default     = {}
}

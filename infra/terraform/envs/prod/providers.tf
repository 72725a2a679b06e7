provider "aws" {
  region = var.region

  default_tags {
    tags = local.default_tags
  }
}

# Region of the cross-region bucket replicas (used only when replication is on).
provider "aws" {
  alias  = "replica"
  region = var.replica_region

  default_tags {
    tags = local.default_tags
  }
}

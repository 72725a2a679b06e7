locals {
  environment = "dev"

  default_tags = {
    "mlops-kit/environment" = local.environment
    ManagedBy               = "terraform"
  }
}

# Development: one NAT gateway, spot capacity everywhere, a single Aurora
# writer, one provisioned Kinesis shard, no cross-region replication, and a
# disposable data plane (destroy empties buckets and skips the final snapshot).
module "platform" {
  source = "../../modules/platform"
  providers = {
    aws         = aws
    aws.replica = aws.replica
  }

  name                    = "mlops-kit-${local.environment}"
  environment             = local.environment
  azs                     = var.azs
  single_nat_gateway      = true
  interface_endpoints     = ["sts", "ecr.api", "ecr.dkr"]
  eks_public_access_cidrs = var.eks_public_access_cidrs

  node_groups = {
    capacity_type = "SPOT"
    general       = { min_size = 1, max_size = 3, desired_size = 2 }
    compute       = { min_size = 0, max_size = 3, desired_size = 1 }
    gpu           = { min_size = 0, max_size = 1, desired_size = 0 }
  }

  aurora = {
    instance_class        = "db.t4g.medium"
    instance_count        = 1
    backup_retention_days = 7
  }

  stream_mode         = "PROVISIONED"
  stream_shard_count  = 1
  replication_enabled = false
  deletion_protection = false
  disposable          = true

  enable_edge       = var.enable_edge
  certificate_arn   = var.certificate_arn
  enable_waf        = var.enable_waf
  enable_cloudtrail = var.enable_cloudtrail
  enable_guardduty  = var.enable_guardduty
  enable_config     = var.enable_config
  alarm_emails      = var.alarm_emails
}

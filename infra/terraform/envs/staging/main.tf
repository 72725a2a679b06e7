locals {
  environment = "staging"

  default_tags = {
    "mlops-kit/environment" = local.environment
    ManagedBy               = "terraform"
  }
}

# Staging mirrors production's topology (NAT per AZ, writer plus reader) on
# spot capacity and smaller sizes; no cross-region replication.
module "platform" {
  source = "../../modules/platform"
  providers = {
    aws         = aws
    aws.replica = aws.replica
  }

  name                    = "mlops-kit-${local.environment}"
  environment             = local.environment
  azs                     = var.azs
  single_nat_gateway      = false
  eks_public_access_cidrs = var.eks_public_access_cidrs

  node_groups = {
    capacity_type = "SPOT"
    general       = { min_size = 2, max_size = 6, desired_size = 3 }
    compute       = { min_size = 1, max_size = 6, desired_size = 2 }
    gpu           = { min_size = 0, max_size = 2, desired_size = 0 }
  }

  aurora = {
    instance_class        = "db.r6g.large"
    instance_count        = 2
    backup_retention_days = 7
  }

  stream_mode         = "ON_DEMAND"
  replication_enabled = false
  deletion_protection = true
  disposable          = false

  enable_edge       = var.enable_edge
  certificate_arn   = var.certificate_arn
  enable_waf        = var.enable_waf
  enable_cloudtrail = var.enable_cloudtrail
  enable_guardduty  = var.enable_guardduty
  enable_config     = var.enable_config
  alarm_emails      = var.alarm_emails
}

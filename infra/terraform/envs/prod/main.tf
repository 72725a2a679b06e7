locals {
  environment = "prod"

  default_tags = {
    "mlops-kit/environment" = local.environment
    ManagedBy               = "terraform"
  }
}

# Production: NAT gateway per AZ, on-demand nodes (cover them with reserved
# capacity or a savings plan), three Aurora instances across the two AZs,
# on-demand Kinesis, cross-region replication of the raw and models buckets.
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
    capacity_type = "ON_DEMAND"
    general       = { min_size = 3, max_size = 12, desired_size = 4 }
    compute       = { min_size = 2, max_size = 12, desired_size = 3 }
    gpu           = { min_size = 0, max_size = 4, desired_size = 0 }
  }

  aurora = {
    instance_class        = "db.r6g.xlarge"
    instance_count        = 3
    backup_retention_days = 35
  }

  stream_mode         = "ON_DEMAND"
  replication_enabled = true
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

locals {
  tags = merge(var.tags, {
    "mlops-kit/environment" = var.environment
    "mlops-kit/platform"    = var.name
  })

  gpu_label = { key = "mlops-kit/accelerator", value = "nvidia-gpu" }
  gpu_taint = { key = "nvidia.com/gpu", value = "present", effect = "NO_SCHEDULE" }

  node_groups = {
    general = {
      instance_types = var.node_groups.general.instance_types
      capacity_type  = var.node_groups.capacity_type
      min_size       = var.node_groups.general.min_size
      max_size       = var.node_groups.general.max_size
      desired_size   = var.node_groups.general.desired_size
      labels         = { "mlops-kit/node-group" = "general" }
    }
    compute = {
      instance_types = var.node_groups.compute.instance_types
      capacity_type  = var.node_groups.capacity_type
      min_size       = var.node_groups.compute.min_size
      max_size       = var.node_groups.compute.max_size
      desired_size   = var.node_groups.compute.desired_size
      labels         = { "mlops-kit/node-group" = "compute" }
    }
    gpu = {
      instance_types = var.node_groups.gpu.instance_types
      capacity_type  = coalesce(var.node_groups.gpu.capacity_type, var.node_groups.capacity_type)
      ami_type       = "AL2023_x86_64_NVIDIA"
      min_size       = var.node_groups.gpu.min_size
      max_size       = var.node_groups.gpu.max_size
      desired_size   = var.node_groups.gpu.desired_size
      disk_size      = 200
      labels = {
        "mlops-kit/node-group" = "gpu"
        (local.gpu_label.key)  = local.gpu_label.value
      }
      taints = [local.gpu_taint]
    }
  }
}

module "network" {
  source = "../network"

  name                = var.name
  azs                 = var.azs
  single_nat_gateway  = var.single_nat_gateway
  interface_endpoints = var.interface_endpoints
  tags                = local.tags
}

module "security_groups" {
  source = "../security-groups"

  name     = var.name
  vpc_id   = module.network.vpc_id
  vpc_cidr = module.network.vpc_cidr
  tags     = local.tags
}

module "data" {
  source = "../data"
  providers = {
    aws         = aws
    aws.replica = aws.replica
  }

  name                       = var.name
  data_subnet_ids            = module.network.data_subnet_ids
  database_security_group_id = module.security_groups.database_security_group_id
  aurora                     = var.aurora
  deletion_protection        = var.deletion_protection
  skip_final_snapshot        = var.disposable
  force_destroy_buckets      = var.disposable
  stream_mode                = var.stream_mode
  stream_shard_count         = var.stream_shard_count
  replication_enabled        = var.replication_enabled
  tags                       = local.tags
}

module "registry" {
  source = "../registry"

  name         = var.name
  force_delete = var.disposable
  tags         = local.tags
}

module "eks" {
  source = "../eks"

  cluster_name                 = var.name
  kubernetes_version           = var.kubernetes_version
  subnet_ids                   = module.network.app_subnet_ids
  cluster_security_group_id    = module.security_groups.cluster_security_group_id
  node_security_group_id       = module.security_groups.node_security_group_id
  endpoint_public_access       = length(var.eks_public_access_cidrs) > 0
  endpoint_public_access_cidrs = var.eks_public_access_cidrs
  node_groups                  = local.node_groups
  bucket_names                 = module.data.bucket_names
  feature_table_arns           = module.data.feature_table_arns
  stream_arn                   = module.data.stream_arn
  database_secret_arn          = module.data.aurora_master_secret_arn
  data_kms_key_arn             = module.data.kms_key_arn
  tags                         = local.tags
}

module "edge" {
  source = "../edge"
  count  = var.enable_edge ? 1 : 0

  name                  = var.name
  vpc_id                = module.network.vpc_id
  public_subnet_ids     = module.network.public_subnet_ids
  alb_security_group_id = module.security_groups.alb_security_group_id
  certificate_arn       = var.certificate_arn
  access_log_bucket     = module.data.log_bucket_name
  deletion_protection   = var.deletion_protection
  enable_waf            = var.enable_waf
  tags                  = local.tags
}

module "observability" {
  source = "../observability"

  name                 = var.name
  enable_cloudtrail    = var.enable_cloudtrail
  enable_guardduty     = var.enable_guardduty
  enable_config        = var.enable_config
  enable_alarms        = var.enable_alarms
  enable_alb_alarms    = var.enable_edge
  alarm_emails         = var.alarm_emails
  access_log_bucket    = module.data.log_bucket_name
  force_destroy_bucket = var.disposable
  alarm_targets = {
    aurora_cluster_identifier = module.data.aurora_cluster_identifier
    stream_name               = module.data.stream_name
    feature_table_names       = module.data.feature_table_names
    alb_arn_suffix            = try(module.edge[0].alb_arn_suffix, null)
  }
  cloudtrail_data_event_bucket_arns = values(module.data.bucket_arns)
  tags                              = local.tags
}

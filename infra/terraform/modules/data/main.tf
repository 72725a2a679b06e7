data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  tags       = merge(var.tags, { "mlops-kit/module" = "data" })

  bucket_names = {
    for role in ["raw", "processed", "models", "artifacts"] : role => "${var.name}-${role}-${local.account_id}"
  }
  aurora_log_group = "/aws/rds/cluster/${var.name}-aurora/postgresql"

  feature_table_prefix = "${var.name}-features"

  replicated = var.replication_enabled ? toset(var.replicated_buckets) : toset([])
}

module "kms" {
  source = "../kms-key"

  alias       = "${var.name}/data"
  description = "Data stores of ${var.name}: S3, DynamoDB, Kinesis, Aurora and its secret"
  policy_statements = [{
    Sid       = "CloudWatchLogs"
    Effect    = "Allow"
    Principal = { Service = "logs.${local.region}.amazonaws.com" }
    Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    Resource  = "*"
    Condition = { ArnLike = { "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.aurora_log_group}" } }
  }]
  tags = local.tags
}

# ------------------------------------------------------------------- S3

module "log_bucket" {
  source = "../log-bucket"

  bucket_name   = "${var.name}-logs-${local.account_id}"
  force_destroy = var.force_destroy_buckets
  tags          = local.tags
}

module "bucket" {
  source   = "../s3-bucket"
  for_each = local.bucket_names

  bucket_name       = each.value
  kms_key_arn       = module.kms.key_arn
  access_log_bucket = module.log_bucket.bucket_name
  lifecycle_rules   = var.bucket_lifecycle[each.key]
  force_destroy     = var.force_destroy_buckets
  replication = contains(local.replicated, each.key) ? {
    destination_bucket_arn  = module.replica_bucket[each.key].bucket_arn
    destination_kms_key_arn = module.replica_kms[0].key_arn
  } : null
  tags = merge(local.tags, { "mlops-kit/bucket" = each.key })
}

module "replica_kms" {
  source    = "../kms-key"
  count     = var.replication_enabled ? 1 : 0
  providers = { aws = aws.replica }

  alias       = "${var.name}/data-replica"
  description = "Cross-region replicas of the ${var.name} buckets"
  tags        = local.tags
}

module "replica_log_bucket" {
  source    = "../log-bucket"
  count     = var.replication_enabled ? 1 : 0
  providers = { aws = aws.replica }

  bucket_name   = "${var.name}-logs-replica-${local.account_id}"
  force_destroy = var.force_destroy_buckets
  tags          = local.tags
}

module "replica_bucket" {
  source    = "../s3-bucket"
  for_each  = local.replicated
  providers = { aws = aws.replica }

  bucket_name       = "${local.bucket_names[each.key]}-replica"
  kms_key_arn       = module.replica_kms[0].key_arn
  access_log_bucket = module.replica_log_bucket[0].bucket_name
  lifecycle_rules   = var.bucket_lifecycle[each.key]
  force_destroy     = var.force_destroy_buckets
  tags              = merge(local.tags, { "mlops-kit/bucket" = "${each.key}-replica" })
}

# ------------------------------------------------------------- DynamoDB

# One table per Feast feature view, named as Feast's DynamoDB online store
# expects them: "<prefix>.<view>" with hash key entity_id (S). Terraform owns
# the tables, so the workloads need no dynamodb:CreateTable.
resource "aws_dynamodb_table" "features" {
  for_each = toset(var.feature_views)

  name                        = "${local.feature_table_prefix}.${each.key}"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "entity_id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "entity_id"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = module.kms.key_arn
  }

  tags = merge(local.tags, { "mlops-kit/feature-view" = each.key })
}

# -------------------------------------------------------------- Kinesis

resource "aws_kinesis_stream" "ingest" {
  name             = "${var.name}-ingest"
  shard_count      = var.stream_mode == "PROVISIONED" ? var.stream_shard_count : null
  retention_period = var.stream_retention_hours
  encryption_type  = "KMS"
  kms_key_id       = module.kms.key_arn

  stream_mode_details {
    stream_mode = var.stream_mode
  }

  tags = local.tags
}

# --------------------------------------------------------------- Aurora

resource "aws_db_subnet_group" "this" {
  name        = "${var.name}-aurora"
  description = "Private data subnets of ${var.name}"
  subnet_ids  = var.data_subnet_ids
  tags        = local.tags
}

resource "aws_rds_cluster_parameter_group" "this" {
  name        = "${var.name}-aurora-pg"
  family      = var.aurora.parameter_group_family
  description = "Aurora PostgreSQL settings of ${var.name}: TLS only, statement and slow-query logging"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  tags = local.tags
}

resource "aws_cloudwatch_log_group" "aurora" {
  name              = local.aurora_log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = module.kms.key_arn
  tags              = local.tags
}

resource "aws_iam_role" "rds_monitoring" {
  name_prefix = "rds-monitoring-"
  description = "Enhanced monitoring of the ${var.name} Aurora instances."
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "monitoring.rds.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

# The master password never appears in Terraform: RDS keeps it in a Secrets
# Manager secret encrypted with the data key and rotates it (every 7 days).
resource "aws_rds_cluster" "this" {
  #checkov:skip=CKV_AWS_139:Deletion protection follows var.deletion_protection, on by default and in staging and prod; only the disposable dev environment turns it off so that it can be destroyed and recreated.
  #checkov:skip=CKV2_AWS_8:Recovery relies on Aurora continuous backups (point-in-time restore within backup_retention_period) and deletion protection; AWS Backup plans, where wanted, are owned by the organisation's central backup account.
  cluster_identifier                  = "${var.name}-aurora"
  engine                              = "aurora-postgresql"
  engine_version                      = var.aurora.engine_version
  database_name                       = var.aurora.database_name
  master_username                     = var.aurora.master_username
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = module.kms.key_arn
  db_subnet_group_name                = aws_db_subnet_group.this.name
  db_cluster_parameter_group_name     = aws_rds_cluster_parameter_group.this.name
  vpc_security_group_ids              = [var.database_security_group_id]
  port                                = 5432
  storage_encrypted                   = true
  kms_key_id                          = module.kms.key_arn
  iam_database_authentication_enabled = true
  deletion_protection                 = var.deletion_protection
  backup_retention_period             = var.aurora.backup_retention_days
  preferred_backup_window             = "03:00-04:00"
  preferred_maintenance_window        = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot               = true
  enabled_cloudwatch_logs_exports     = ["postgresql"]
  skip_final_snapshot                 = var.skip_final_snapshot
  final_snapshot_identifier           = var.skip_final_snapshot ? null : "${var.name}-aurora-final"
  tags                                = local.tags

  depends_on = [aws_cloudwatch_log_group.aurora]
}

resource "aws_rds_cluster_instance" "this" {
  count = var.aurora.instance_count

  identifier                            = "${var.name}-aurora-${count.index + 1}"
  cluster_identifier                    = aws_rds_cluster.this.id
  engine                                = aws_rds_cluster.this.engine
  engine_version                        = aws_rds_cluster.this.engine_version
  instance_class                        = var.aurora.instance_class
  db_subnet_group_name                  = aws_db_subnet_group.this.name
  publicly_accessible                   = false
  auto_minor_version_upgrade            = true
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = module.kms.key_arn
  performance_insights_retention_period = 7
  copy_tags_to_snapshot                 = true
  tags                                  = local.tags

  depends_on = [aws_iam_role_policy_attachment.rds_monitoring]
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  tags       = merge(var.tags, { "mlops-kit/module" = "observability" })

  log_prefix       = "/mlops-kit/${var.name}"
  trail_name       = "${var.name}-trail"
  trail_arn        = "arn:${local.partition}:cloudtrail:${local.region}:${local.account_id}:trail/${local.trail_name}"
  trail_log_group  = "/aws/cloudtrail/${var.name}"
  audit_bucket     = "${var.name}-audit-${local.account_id}"
  audit_bucket_arn = "arn:${local.partition}:s3:::${local.audit_bucket}"
  needs_bucket     = var.enable_cloudtrail || var.enable_config
  log_arn_prefix   = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:"
}

# ------------------------------------------------------------------ key

module "kms" {
  source = "../kms-key"

  alias       = "${var.name}/observability"
  description = "Logs, alarms and audit trail of ${var.name}"
  policy_statements = [
    {
      Sid       = "CloudWatchLogs"
      Effect    = "Allow"
      Principal = { Service = "logs.${local.region}.amazonaws.com" }
      Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
      Resource  = "*"
      Condition = {
        ArnLike = {
          "kms:EncryptionContext:aws:logs:arn" = [
            "${local.log_arn_prefix}${local.log_prefix}/*",
            "${local.log_arn_prefix}${local.trail_log_group}",
          ]
        }
      }
    },
    {
      Sid       = "CloudWatchAlarmsToSns"
      Effect    = "Allow"
      Principal = { Service = "cloudwatch.amazonaws.com" }
      Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
      Resource  = "*"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    },
    {
      Sid       = "CloudTrailEncrypt"
      Effect    = "Allow"
      Principal = { Service = "cloudtrail.amazonaws.com" }
      Action    = ["kms:GenerateDataKey*", "kms:DescribeKey", "kms:Decrypt"]
      Resource  = "*"
      Condition = {
        StringEquals = { "aws:SourceArn" = local.trail_arn }
        StringLike   = { "kms:EncryptionContext:aws:cloudtrail:arn" = "arn:${local.partition}:cloudtrail:*:${local.account_id}:trail/*" }
      }
    },
    {
      Sid       = "ConfigDelivery"
      Effect    = "Allow"
      Principal = { Service = "config.amazonaws.com" }
      Action    = ["kms:Decrypt", "kms:GenerateDataKey"]
      Resource  = "*"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    },
  ]
  tags = local.tags
}

# ----------------------------------------------------- log groups, alarms

resource "aws_cloudwatch_log_group" "workload" {
  for_each = toset(var.workload_log_groups)

  name              = "${local.log_prefix}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = module.kms.key_arn
  tags              = local.tags
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = module.kms.key_arn
  tags              = local.tags
}

resource "aws_sns_topic_policy" "alarms" {
  arn = aws_sns_topic.alarms.arn
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "CloudWatchAlarms"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = "SNS:Publish"
        Resource  = aws_sns_topic.alarms.arn
        Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      },
      {
        Sid       = "CloudTrailNotifications"
        Effect    = "Allow"
        Principal = { Service = "cloudtrail.amazonaws.com" }
        Action    = "SNS:Publish"
        Resource  = aws_sns_topic.alarms.arn
        Condition = { StringEquals = { "aws:SourceArn" = local.trail_arn } }
      },
    ]
  })
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.key
}

locals {
  alarms = merge(
    var.alarm_targets.aurora_cluster_identifier == null ? {} : {
      aurora-cpu = {
        namespace   = "AWS/RDS", metric = "CPUUtilization", statistic = "Average", threshold = 80
        comparison  = "GreaterThanThreshold", period = 300, evaluation_periods = 3
        dimensions  = { DBClusterIdentifier = var.alarm_targets.aurora_cluster_identifier }
        description = "Aurora CPU above 80% for 15 minutes"
      }
      aurora-freeable-memory = {
        namespace   = "AWS/RDS", metric = "FreeableMemory", statistic = "Average", threshold = 268435456
        comparison  = "LessThanThreshold", period = 300, evaluation_periods = 3
        dimensions  = { DBClusterIdentifier = var.alarm_targets.aurora_cluster_identifier }
        description = "Aurora freeable memory under 256 MiB"
      }
    },
    var.alarm_targets.stream_name == null ? {} : {
      kinesis-iterator-age = {
        namespace   = "AWS/Kinesis", metric = "GetRecords.IteratorAgeMilliseconds", statistic = "Maximum", threshold = 600000
        comparison  = "GreaterThanThreshold", period = 300, evaluation_periods = 2
        dimensions  = { StreamName = var.alarm_targets.stream_name }
        description = "Stream consumers more than 10 minutes behind"
      }
    },
    # ReadThrottleEvents / WriteThrottleEvents carry the TableName dimension alone
    # (ThrottledRequests is published per Operation too, so a TableName-only alarm on it
    # would never see data).
    {
      for view, table in var.alarm_targets.feature_table_names : "features-read-throttled-${view}" => {
        namespace   = "AWS/DynamoDB", metric = "ReadThrottleEvents", statistic = "Sum", threshold = 10
        comparison  = "GreaterThanThreshold", period = 300, evaluation_periods = 1
        dimensions  = { TableName = table }
        description = "Online feature reads throttled on ${table} (feature view ${view})"
      }
    },
    {
      for view, table in var.alarm_targets.feature_table_names : "features-write-throttled-${view}" => {
        namespace   = "AWS/DynamoDB", metric = "WriteThrottleEvents", statistic = "Sum", threshold = 10
        comparison  = "GreaterThanThreshold", period = 300, evaluation_periods = 1
        dimensions  = { TableName = table }
        description = "Materialization writes throttled on ${table} (feature view ${view})"
      }
    },
    !var.enable_alb_alarms ? {} : {
      alb-5xx = {
        namespace   = "AWS/ApplicationELB", metric = "HTTPCode_Target_5XX_Count", statistic = "Sum", threshold = 50
        comparison  = "GreaterThanThreshold", period = 300, evaluation_periods = 2
        dimensions  = { LoadBalancer = var.alarm_targets.alb_arn_suffix }
        description = "Application 5xx responses behind the ALB"
      }
    },
  )
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = var.enable_alarms ? local.alarms : {}

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  statistic           = each.value.statistic
  threshold           = each.value.threshold
  comparison_operator = each.value.comparison
  period              = each.value.period
  evaluation_periods  = each.value.evaluation_periods
  dimensions          = each.value.dimensions
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = local.tags
}

# ----------------------------------------------------------- audit bucket

module "audit_bucket" {
  source = "../s3-bucket"
  count  = local.needs_bucket ? 1 : 0

  bucket_name               = local.audit_bucket
  kms_key_arn               = module.kms.key_arn
  access_log_bucket         = var.access_log_bucket
  eventbridge_notifications = false
  force_destroy             = var.force_destroy_bucket
  lifecycle_rules = {
    infrequent_access_after_days = 30
    glacier_after_days           = 90
    expire_after_days            = var.audit_retention_days
  }
  policy_statements = concat(
    [for s in [
      {
        Sid       = "CloudTrailAclCheck"
        Effect    = "Allow"
        Principal = { Service = "cloudtrail.amazonaws.com" }
        Action    = "s3:GetBucketAcl"
        Resource  = local.audit_bucket_arn
        Condition = { StringEquals = { "aws:SourceArn" = local.trail_arn } }
      },
      {
        Sid       = "CloudTrailWrite"
        Effect    = "Allow"
        Principal = { Service = "cloudtrail.amazonaws.com" }
        Action    = "s3:PutObject"
        Resource  = "${local.audit_bucket_arn}/cloudtrail/AWSLogs/${local.account_id}/*"
        Condition = { StringEquals = { "aws:SourceArn" = local.trail_arn } }
      },
    ] : s if var.enable_cloudtrail],
    [for s in [
      {
        Sid       = "ConfigAclCheck"
        Effect    = "Allow"
        Principal = { Service = "config.amazonaws.com" }
        Action    = ["s3:GetBucketAcl", "s3:ListBucket"]
        Resource  = local.audit_bucket_arn
        Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      },
      {
        Sid       = "ConfigWrite"
        Effect    = "Allow"
        Principal = { Service = "config.amazonaws.com" }
        Action    = "s3:PutObject"
        Resource  = "${local.audit_bucket_arn}/config/AWSLogs/${local.account_id}/Config/*"
        Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      },
    ] : s if var.enable_config],
  )
  tags = local.tags
}

# ------------------------------------------------------------ CloudTrail

resource "aws_cloudwatch_log_group" "cloudtrail" {
  count = var.enable_cloudtrail ? 1 : 0

  name              = local.trail_log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = module.kms.key_arn
  tags              = local.tags
}

resource "aws_iam_role" "cloudtrail" {
  count = var.enable_cloudtrail ? 1 : 0

  name_prefix = "cloudtrail-logs-"
  description = "Delivers the ${local.trail_name} trail to CloudWatch Logs."
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "cloudtrail.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceArn" = local.trail_arn } }
    }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy" "cloudtrail" {
  count = var.enable_cloudtrail ? 1 : 0

  name = "deliver-trail"
  role = aws_iam_role.cloudtrail[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = ["${aws_cloudwatch_log_group.cloudtrail[0].arn}:*"]
    }]
  })
}

resource "aws_cloudtrail" "this" {
  count = var.enable_cloudtrail ? 1 : 0

  name                          = local.trail_name
  s3_bucket_name                = module.audit_bucket[0].bucket_name
  s3_key_prefix                 = "cloudtrail"
  is_multi_region_trail         = true
  include_global_service_events = true
  enable_log_file_validation    = true
  kms_key_id                    = module.kms.key_arn
  sns_topic_name                = aws_sns_topic.alarms.name
  cloud_watch_logs_group_arn    = "${aws_cloudwatch_log_group.cloudtrail[0].arn}:*"
  cloud_watch_logs_role_arn     = aws_iam_role.cloudtrail[0].arn

  event_selector {
    read_write_type           = "All"
    include_management_events = true

    dynamic "data_resource" {
      for_each = length(var.cloudtrail_data_event_bucket_arns) == 0 ? [] : [1]
      content {
        type   = "AWS::S3::Object"
        values = [for arn in var.cloudtrail_data_event_bucket_arns : "${arn}/"]
      }
    }
  }

  tags = local.tags

  depends_on = [module.audit_bucket, aws_iam_role_policy.cloudtrail, aws_sns_topic_policy.alarms]
}

# ------------------------------------------------------------- GuardDuty

resource "aws_guardduty_detector" "this" {
  #checkov:skip=CKV2_AWS_3:Organisation-wide GuardDuty (auto-enabling member accounts) is configured from the delegated administrator account; this module enables the detector of the account it is applied in.
  count = var.enable_guardduty ? 1 : 0

  enable                       = true
  finding_publishing_frequency = "FIFTEEN_MINUTES"
  tags                         = local.tags
}

resource "aws_guardduty_detector_feature" "this" {
  for_each = var.enable_guardduty ? toset(["EKS_AUDIT_LOGS", "S3_DATA_EVENTS", "RDS_LOGIN_EVENTS"]) : toset([])

  detector_id = aws_guardduty_detector.this[0].id
  name        = each.key
  status      = "ENABLED"
}

# ------------------------------------------------------------ AWS Config

resource "aws_iam_role" "config" {
  count = var.enable_config ? 1 : 0

  name_prefix = "aws-config-"
  description = "AWS Config recorder of ${var.name}."
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "config.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "config" {
  count = var.enable_config ? 1 : 0

  role       = aws_iam_role.config[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWS_ConfigRole"
}

resource "aws_config_configuration_recorder" "this" {
  count = var.enable_config ? 1 : 0

  name     = var.name
  role_arn = aws_iam_role.config[0].arn

  recording_group {
    all_supported                 = true
    include_global_resource_types = true
  }
}

resource "aws_config_delivery_channel" "this" {
  count = var.enable_config ? 1 : 0

  name           = var.name
  s3_bucket_name = module.audit_bucket[0].bucket_name
  s3_key_prefix  = "config"
  s3_kms_key_arn = module.kms.key_arn
  sns_topic_arn  = aws_sns_topic.alarms.arn

  snapshot_delivery_properties {
    delivery_frequency = "TwentyFour_Hours"
  }

  depends_on = [aws_config_configuration_recorder.this, module.audit_bucket]
}

resource "aws_config_configuration_recorder_status" "this" {
  count = var.enable_config ? 1 : 0

  name       = aws_config_configuration_recorder.this[0].name
  is_enabled = true

  depends_on = [aws_config_delivery_channel.this]
}

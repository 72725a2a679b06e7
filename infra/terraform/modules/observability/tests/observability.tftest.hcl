mock_provider "aws" {
  source = "../../testing/aws"
}

variables {
  name              = "mlops-kit-test"
  access_log_bucket = "mlops-kit-test-logs-123456789012"
  alarm_targets = {
    aurora_cluster_identifier = "mlops-kit-test-aurora"
    stream_name               = "mlops-kit-test-ingest"
    feature_table_names = {
      device_hourly = "mlops-kit-test-features.device_hourly"
      device_daily  = "mlops-kit-test-features.device_daily"
    }
  }
}

run "everything_on" {
  command = apply

  assert {
    condition     = aws_cloudtrail.this[0].is_multi_region_trail && aws_cloudtrail.this[0].enable_log_file_validation && aws_cloudtrail.this[0].kms_key_id == module.kms.key_arn
    error_message = "The trail is multi-region, validated and KMS-encrypted."
  }

  assert {
    condition     = aws_guardduty_detector.this[0].enable && length(aws_guardduty_detector_feature.this) == 3
    error_message = "GuardDuty is enabled with its EKS, S3 and RDS protections."
  }

  assert {
    condition     = aws_config_configuration_recorder.this[0].recording_group[0].all_supported && aws_config_configuration_recorder_status.this[0].is_enabled
    error_message = "AWS Config records every supported resource."
  }

  assert {
    condition     = alltrue([for g in aws_cloudwatch_log_group.workload : g.kms_key_id == module.kms.key_arn && g.retention_in_days == 365])
    error_message = "Workload log groups are KMS-encrypted and kept a year."
  }

  assert {
    condition     = aws_sns_topic.alarms.kms_master_key_id == module.kms.key_arn
    error_message = "The alarm topic is KMS-encrypted."
  }

  assert {
    condition = toset(keys(aws_cloudwatch_metric_alarm.this)) == toset([
      "aurora-cpu", "aurora-freeable-memory", "kinesis-iterator-age",
      "features-read-throttled-device_hourly", "features-read-throttled-device_daily",
      "features-write-throttled-device_hourly", "features-write-throttled-device_daily",
    ])
    error_message = "Alarms watch Aurora, the stream and reads and writes of every feature table."
  }

  assert {
    condition = alltrue([
      for view in ["device_hourly", "device_daily"] : (
        aws_cloudwatch_metric_alarm.this["features-read-throttled-${view}"].dimensions == tomap({ TableName = "mlops-kit-test-features.${view}" }) &&
        aws_cloudwatch_metric_alarm.this["features-write-throttled-${view}"].dimensions == tomap({ TableName = "mlops-kit-test-features.${view}" }) &&
        aws_cloudwatch_metric_alarm.this["features-read-throttled-${view}"].metric_name == "ReadThrottleEvents" &&
        aws_cloudwatch_metric_alarm.this["features-write-throttled-${view}"].metric_name == "WriteThrottleEvents"
      )
    ])
    error_message = "Each feature table has read and write throttle alarms on metrics published per table."
  }
}

run "centrally_managed_account" {
  command = apply

  variables {
    enable_cloudtrail = false
    enable_guardduty  = false
    enable_config     = false
    enable_alarms     = false
  }

  assert {
    condition = (
      length(aws_cloudtrail.this) == 0 && length(aws_guardduty_detector.this) == 0 &&
      length(aws_config_configuration_recorder.this) == 0 && length(module.audit_bucket) == 0 &&
      length(aws_cloudwatch_metric_alarm.this) == 0
    )
    error_message = "Each toggle must remove its service (and the audit bucket when nothing delivers to it)."
  }
}

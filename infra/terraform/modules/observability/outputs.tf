output "alarm_topic_arn" {
  description = "SNS topic receiving alarms, CloudTrail and Config notifications."
  value       = aws_sns_topic.alarms.arn
}

output "workload_log_group_names" {
  description = "Application log groups by workload."
  value       = { for k, g in aws_cloudwatch_log_group.workload : k => g.name }
}

output "alarm_names" {
  description = "Names of the CloudWatch alarms."
  value       = [for a in aws_cloudwatch_metric_alarm.this : a.alarm_name]
}

output "cloudtrail_arn" {
  description = "ARN of the trail (null when off)."
  value       = try(aws_cloudtrail.this[0].arn, null)
}

output "guardduty_detector_id" {
  description = "ID of the GuardDuty detector (null when off)."
  value       = try(aws_guardduty_detector.this[0].id, null)
}

output "config_recorder_name" {
  description = "Name of the AWS Config recorder (null when off)."
  value       = try(aws_config_configuration_recorder.this[0].name, null)
}

output "audit_bucket_name" {
  description = "Bucket of the CloudTrail and Config deliveries (null when both are off)."
  value       = try(module.audit_bucket[0].bucket_name, null)
}

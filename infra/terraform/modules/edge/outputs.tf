output "alb_arn" {
  description = "ARN of the ALB."
  value       = aws_lb.this.arn
}

output "alb_arn_suffix" {
  description = "ARN suffix of the ALB (CloudWatch dimension)."
  value       = aws_lb.this.arn_suffix
}

output "alb_dns_name" {
  description = "DNS name of the ALB; point the application's record at it."
  value       = aws_lb.this.dns_name
}

output "target_group_arn" {
  description = "Target group that a TargetGroupBinding attaches the serving pods to."
  value       = aws_lb_target_group.app.arn
}

output "web_acl_arn" {
  description = "ARN of the web ACL (null when WAF is off)."
  value       = try(aws_wafv2_web_acl.this[0].arn, null)
}

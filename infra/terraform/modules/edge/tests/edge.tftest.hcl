mock_provider "aws" {
  source = "../../testing/aws"
}

variables {
  name                  = "mlops-kit-test"
  vpc_id                = "vpc-0123456789abcdef0"
  public_subnet_ids     = ["subnet-public-a", "subnet-public-b"]
  alb_security_group_id = "sg-alb"
  certificate_arn       = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  access_log_bucket     = "mlops-kit-test-logs-123456789012"
}

run "alb_and_waf" {
  command = apply

  assert {
    condition     = aws_lb_listener.https.port == 443 && aws_lb_listener.https.protocol == "HTTPS" && startswith(aws_lb_listener.https.ssl_policy, "ELBSecurityPolicy-TLS13-")
    error_message = "The only listener is HTTPS on 443 with a TLS 1.3 policy."
  }

  assert {
    condition     = aws_lb.this.security_groups == toset(["sg-alb"]) && !aws_lb.this.internal && aws_lb.this.drop_invalid_header_fields
    error_message = "The ALB is internet-facing behind the ALB security group and drops invalid headers."
  }

  assert {
    condition     = aws_lb.this.access_logs[0].enabled && aws_lb.this.access_logs[0].bucket == "mlops-kit-test-logs-123456789012"
    error_message = "ALB access logs must be delivered to the log bucket."
  }

  assert {
    condition     = aws_lb_target_group.app.port == 8080
    error_message = "Targets listen on 8080."
  }

  assert {
    condition = alltrue([
      for g in ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesSQLiRuleSet"] :
      anytrue([for r in aws_wafv2_web_acl.this[0].rule : try(r.statement[0].managed_rule_group_statement[0].name, "") == g])
    ])
    error_message = "The web ACL must include the AWS managed rule groups covering the OWASP Top 10."
  }

  assert {
    condition     = aws_wafv2_web_acl_association.this[0].resource_arn == aws_lb.this.arn
    error_message = "The web ACL must be attached to the ALB."
  }

  assert {
    condition     = aws_cloudwatch_log_group.waf[0].kms_key_id == module.waf_logs_key[0].key_arn
    error_message = "WAF logs must be KMS-encrypted."
  }
}

run "waf_off" {
  command = apply

  variables {
    enable_waf = false
  }

  assert {
    condition     = length(aws_wafv2_web_acl.this) == 0 && length(aws_wafv2_web_acl_association.this) == 0
    error_message = "enable_waf = false must create no web ACL."
  }
}

run "rejects_pre_tls13_policy" {
  command = plan

  variables {
    ssl_policy = "ELBSecurityPolicy-2016-08"
  }

  expect_failures = [var.ssl_policy]
}

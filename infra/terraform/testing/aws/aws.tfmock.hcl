# Shared values for `mock_provider "aws"` in the terraform test files:
# stable account, region and ARNs where the modules build names or JSON from them.

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "123456789012"
    arn        = "arn:aws:iam::123456789012:user/terraform"
    user_id    = "AIDAMOCKUSER"
  }
}

mock_data "aws_region" {
  defaults = {
    name        = "us-east-1"
    id          = "us-east-1"
    description = "US East (N. Virginia)"
    endpoint    = "ec2.us-east-1.amazonaws.com"
  }
}

mock_data "aws_partition" {
  defaults = {
    partition          = "aws"
    dns_suffix         = "amazonaws.com"
    reverse_dns_prefix = "com.amazonaws"
    id                 = "aws"
  }
}

mock_data "aws_elb_service_account" {
  defaults = {
    arn = "arn:aws:iam::127311923021:root"
    id  = "127311923021"
  }
}

mock_resource "aws_kms_key" {
  defaults = {
    arn    = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    key_id = "00000000-0000-0000-0000-000000000000"
  }
}

mock_resource "aws_iam_role" {
  defaults = {
    arn = "arn:aws:iam::123456789012:role/mock"
  }
}

mock_resource "aws_eks_cluster" {
  defaults = {
    arn                   = "arn:aws:eks:us-east-1:123456789012:cluster/mock"
    endpoint              = "https://MOCK.gr7.us-east-1.eks.amazonaws.com"
    identity              = [{ oidc = [{ issuer = "https://oidc.eks.us-east-1.amazonaws.com/id/MOCKISSUER" }] }]
    certificate_authority = [{ data = "bW9jaw==" }]
  }
}

mock_resource "aws_iam_openid_connect_provider" {
  defaults = {
    arn = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/MOCKISSUER"
  }
}

mock_resource "aws_rds_cluster" {
  defaults = {
    arn             = "arn:aws:rds:us-east-1:123456789012:cluster:mock"
    endpoint        = "mock.cluster-abcdefghijkl.us-east-1.rds.amazonaws.com"
    reader_endpoint = "mock.cluster-ro-abcdefghijkl.us-east-1.rds.amazonaws.com"
    master_user_secret = [{
      secret_arn    = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-mock-AbCdEf"
      kms_key_id    = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
      secret_status = "active"
    }]
  }
}

mock_resource "aws_dynamodb_table" {
  defaults = {
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/mock-features"
  }
}

mock_resource "aws_kinesis_stream" {
  defaults = {
    arn = "arn:aws:kinesis:us-east-1:123456789012:stream/mock-ingest"
  }
}

mock_resource "aws_lb" {
  defaults = {
    arn        = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/mock/0123456789abcdef"
    arn_suffix = "app/mock/0123456789abcdef"
  }
}

mock_resource "aws_wafv2_web_acl" {
  defaults = {
    arn = "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/mock/00000000-0000-0000-0000-000000000000"
  }
}

mock_resource "aws_cloudwatch_log_group" {
  defaults = {
    arn = "arn:aws:logs:us-east-1:123456789012:log-group:mock"
  }
}

mock_resource "aws_sns_topic" {
  defaults = {
    arn = "arn:aws:sns:us-east-1:123456789012:mock-alarms"
  }
}

mock_resource "aws_launch_template" {
  defaults = {
    id             = "lt-0123456789abcdef0"
    latest_version = 1
  }
}

mock_resource "aws_lb_target_group" {
  defaults = {
    arn        = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/mock-app/0123456789abcdef"
    arn_suffix = "targetgroup/mock-app/0123456789abcdef"
  }
}

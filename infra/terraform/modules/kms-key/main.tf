data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_root = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"

  policy = {
    Version = "2012-10-17"
    Statement = concat(
      [
        {
          Sid       = "AccountAdministration"
          Effect    = "Allow"
          Principal = { AWS = local.account_root }
          Action    = "kms:*"
          Resource  = "*"
        },
      ],
      var.policy_statements,
    )
  }
}

resource "aws_kms_key" "this" {
  description             = var.description
  enable_key_rotation     = true
  deletion_window_in_days = var.deletion_window_in_days
  policy                  = jsonencode(local.policy)
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.alias}"
  target_key_id = aws_kms_key.this.key_id
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  partition   = data.aws_partition.current.partition
  account_id  = data.aws_caller_identity.current.account_id
  region      = data.aws_region.current.name
  log_group   = "/aws/eks/${var.cluster_name}/cluster"
  tags        = merge(var.tags, { "mlops-kit/module" = "eks" })
  policy_arn  = "arn:${local.partition}:iam::aws:policy"
  oidc_issuer = aws_eks_cluster.this.identity[0].oidc[0].issuer
  oidc_host   = replace(local.oidc_issuer, "https://", "")
}

module "kms" {
  source = "../kms-key"

  alias       = "${var.cluster_name}/eks"
  description = "EKS secrets envelope encryption and control-plane logs of ${var.cluster_name}"
  policy_statements = [{
    Sid       = "CloudWatchLogs"
    Effect    = "Allow"
    Principal = { Service = "logs.${local.region}.amazonaws.com" }
    Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    Resource  = "*"
    Condition = { ArnLike = { "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group}" } }
  }]
  tags = local.tags
}

resource "aws_cloudwatch_log_group" "cluster" {
  name              = local.log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = module.kms.key_arn
  tags              = local.tags
}

# ---------------------------------------------------------------- cluster

resource "aws_iam_role" "cluster" {
  name_prefix = "eks-cluster-"
  description = "Service role of the EKS cluster ${var.cluster_name}."
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "eks.amazonaws.com" }
      Action    = ["sts:AssumeRole", "sts:TagSession"]
    }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "${local.policy_arn}/AmazonEKSClusterPolicy"
}

resource "aws_eks_cluster" "this" {
  name                      = var.cluster_name
  version                   = var.kubernetes_version
  role_arn                  = aws_iam_role.cluster.arn
  enabled_cluster_log_types = var.control_plane_log_types

  vpc_config {
    subnet_ids              = var.subnet_ids
    security_group_ids      = [var.cluster_security_group_id]
    endpoint_private_access = true
    endpoint_public_access  = var.endpoint_public_access
    public_access_cidrs     = var.endpoint_public_access ? var.endpoint_public_access_cidrs : null
  }

  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = module.kms.key_arn
    }
  }

  tags = local.tags

  depends_on = [
    aws_iam_role_policy_attachment.cluster,
    aws_cloudwatch_log_group.cluster,
  ]
}

resource "aws_iam_openid_connect_provider" "this" {
  url            = local.oidc_issuer
  client_id_list = ["sts.amazonaws.com"]
  tags           = local.tags
}

# ------------------------------------------------------------ node groups

resource "aws_iam_role" "node" {
  name_prefix = "eks-node-"
  description = "Instance role of the managed node groups of ${var.cluster_name}."
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset(["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"])

  role       = aws_iam_role.node.name
  policy_arn = "${local.policy_arn}/${each.key}"
}

# Launch templates attach the node security group, require IMDSv2 with a hop
# limit of 1 (pods use IRSA, never the instance role) and encrypt root volumes.
resource "aws_launch_template" "node" {
  for_each = var.node_groups

  name_prefix            = "${var.cluster_name}-${each.key}-"
  description            = "Node group ${each.key} of ${var.cluster_name}"
  vpc_security_group_ids = [var.node_security_group_id]
  update_default_version = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = each.value.disk_size
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.cluster_name}-${each.key}" })
  }

  tags = local.tags
}

resource "aws_eks_node_group" "this" {
  for_each = var.node_groups

  cluster_name    = aws_eks_cluster.this.name
  node_group_name = each.key
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.subnet_ids
  instance_types  = each.value.instance_types
  capacity_type   = each.value.capacity_type
  ami_type        = each.value.ami_type
  labels          = each.value.labels

  scaling_config {
    min_size     = each.value.min_size
    max_size     = each.value.max_size
    desired_size = each.value.desired_size
  }

  update_config {
    max_unavailable = 1
  }

  launch_template {
    id      = aws_launch_template.node[each.key].id
    version = aws_launch_template.node[each.key].latest_version
  }

  dynamic "taint" {
    for_each = each.value.taints
    content {
      key    = taint.value.key
      value  = taint.value.value
      effect = taint.value.effect
    }
  }

  tags = local.tags

  lifecycle {
    ignore_changes = [scaling_config[0].desired_size]
  }

  depends_on = [aws_iam_role_policy_attachment.node]
}

# ------------------------------------------------------------------- IRSA

locals {
  bucket_arn = { for k, v in var.bucket_names : k => "arn:${local.partition}:s3:::${v}" }

  s3_read = ["s3:GetObject", "s3:GetObjectVersion"]
  s3_rw   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
  s3_list = ["s3:ListBucket", "s3:GetBucketLocation"]
  ddb_read = [
    "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:DescribeTable",
  ]
  ddb_write = [
    "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:DescribeTable",
    "dynamodb:PutItem", "dynamodb:BatchWriteItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
  ]
  kinesis_read = [
    "kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:ListShards",
    "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:SubscribeToShard",
  ]
  kms_use = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]

  s3_statements = {
    for w, access in var.workload_bucket_access : w => concat(
      length(concat(access.read, access.write)) == 0 ? [] : [{
        Sid      = "ListBuckets"
        Effect   = "Allow"
        Action   = local.s3_list
        Resource = [for b in distinct(concat(access.read, access.write)) : local.bucket_arn[b]]
      }],
      length(access.read) == 0 ? [] : [{
        Sid      = "ReadObjects"
        Effect   = "Allow"
        Action   = local.s3_read
        Resource = [for b in access.read : "${local.bucket_arn[b]}/*"]
      }],
      length(access.write) == 0 ? [] : [{
        Sid      = "WriteObjects"
        Effect   = "Allow"
        Action   = local.s3_rw
        Resource = [for b in access.write : "${local.bucket_arn[b]}/*"]
      }],
    )
  }

  # What each workload may touch; every statement names its resources.
  workload_statements = {
    api = concat(local.s3_statements["api"], [
      { Sid = "ReadFeatures", Effect = "Allow", Action = local.ddb_read, Resource = var.feature_table_arns },
    ])
    inference = concat(local.s3_statements["inference"], [
      { Sid = "ReadFeatures", Effect = "Allow", Action = local.ddb_read, Resource = var.feature_table_arns },
    ])
    data_pipeline = concat(local.s3_statements["data_pipeline"], [
      { Sid = "WriteFeatures", Effect = "Allow", Action = local.ddb_write, Resource = var.feature_table_arns },
      { Sid = "ReadStream", Effect = "Allow", Action = local.kinesis_read, Resource = [var.stream_arn, "${var.stream_arn}/consumer/*"] },
      { Sid = "WarehouseCredentials", Effect = "Allow", Action = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], Resource = [var.database_secret_arn] },
    ])
    training = concat(local.s3_statements["training"], [
      { Sid = "ReadFeatures", Effect = "Allow", Action = local.ddb_read, Resource = var.feature_table_arns },
    ])
    pipelines = local.s3_statements["pipelines"]
  }

  irsa_policies = {
    for w, statements in local.workload_statements : w => {
      Version = "2012-10-17"
      Statement = concat(statements, [
        { Sid = "UseDataKey", Effect = "Allow", Action = local.kms_use, Resource = [var.data_kms_key_arn] },
      ])
    }
  }
}

resource "aws_iam_role" "irsa" {
  for_each = var.service_accounts

  name        = "${var.cluster_name}-${replace(each.key, "_", "-")}"
  description = "IRSA role of ${each.value.namespace}/${each.value.name} on ${var.cluster_name}."
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = aws_iam_openid_connect_provider.this.arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "${local.oidc_host}:sub" = "system:serviceaccount:${each.value.namespace}:${each.value.name}"
          "${local.oidc_host}:aud" = "sts.amazonaws.com"
        }
      }
    }]
  })
  tags = merge(local.tags, { "mlops-kit/workload" = each.key })
}

resource "aws_iam_role_policy" "irsa" {
  for_each = var.service_accounts

  name   = "${replace(each.key, "_", "-")}-least-privilege"
  role   = aws_iam_role.irsa[each.key].id
  policy = jsonencode(local.irsa_policies[each.key])
}

mock_provider "aws" {
  source = "../../testing/aws"
}

variables {
  cluster_name              = "mlops-kit-test"
  subnet_ids                = ["subnet-a", "subnet-b"]
  cluster_security_group_id = "sg-cluster"
  node_security_group_id    = "sg-node"
  feature_table_arns = [
    "arn:aws:dynamodb:us-east-1:123456789012:table/mlops-kit-test-features.device_hourly",
    "arn:aws:dynamodb:us-east-1:123456789012:table/mlops-kit-test-features.device_daily",
  ]
  stream_arn          = "arn:aws:kinesis:us-east-1:123456789012:stream/mlops-kit-test-ingest"
  database_secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-test"
  data_kms_key_arn    = "arn:aws:kms:us-east-1:123456789012:key/data"
  bucket_names = {
    raw       = "mlops-kit-test-raw-123456789012"
    processed = "mlops-kit-test-processed-123456789012"
    models    = "mlops-kit-test-models-123456789012"
    artifacts = "mlops-kit-test-artifacts-123456789012"
  }
  node_groups = {
    general = { instance_types = ["t3.large"], capacity_type = "SPOT", min_size = 1, max_size = 3, desired_size = 2 }
    compute = { instance_types = ["c5.xlarge"], capacity_type = "SPOT", min_size = 0, max_size = 3, desired_size = 1 }
    gpu = {
      instance_types = ["g5.xlarge"]
      ami_type       = "AL2023_x86_64_NVIDIA"
      min_size       = 0
      max_size       = 1
      desired_size   = 0
      labels         = { "mlops-kit/accelerator" = "nvidia-gpu" }
      taints         = [{ key = "nvidia.com/gpu", value = "present", effect = "NO_SCHEDULE" }]
    }
  }
}

run "cluster" {
  command = apply

  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_private_access && !aws_eks_cluster.this.vpc_config[0].endpoint_public_access
    error_message = "The API endpoint must be private only by default."
  }

  assert {
    condition     = one(aws_eks_cluster.this.encryption_config).resources == toset(["secrets"]) && one(aws_eks_cluster.this.encryption_config).provider[0].key_arn == module.kms.key_arn
    error_message = "Kubernetes secrets must be encrypted with the cluster's KMS key."
  }

  assert {
    condition     = toset(aws_eks_cluster.this.enabled_cluster_log_types) == toset(["api", "audit", "authenticator", "controllerManager", "scheduler"])
    error_message = "All control-plane log types must be enabled."
  }

  assert {
    condition     = aws_cloudwatch_log_group.cluster.name == "/aws/eks/mlops-kit-test/cluster" && aws_cloudwatch_log_group.cluster.kms_key_id == module.kms.key_arn
    error_message = "The control-plane log group must exist ahead of the cluster, KMS-encrypted."
  }

  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].security_group_ids == toset(["sg-cluster"])
    error_message = "The control plane must use the cluster security group."
  }

  assert {
    condition     = aws_iam_openid_connect_provider.this.url == "https://oidc.eks.us-east-1.amazonaws.com/id/MOCKISSUER" && aws_iam_openid_connect_provider.this.client_id_list == toset(["sts.amazonaws.com"])
    error_message = "The OIDC provider must trust the cluster issuer for sts.amazonaws.com."
  }
}

run "node_groups" {
  command = apply

  assert {
    condition     = aws_eks_node_group.this["general"].instance_types == tolist(["t3.large"]) && aws_eks_node_group.this["compute"].instance_types == tolist(["c5.xlarge"])
    error_message = "The general and compute groups use t3.large and c5.xlarge."
  }

  assert {
    condition     = aws_eks_node_group.this["general"].capacity_type == "SPOT" && aws_eks_node_group.this["compute"].capacity_type == "SPOT"
    error_message = "capacity_type must reach the node groups."
  }

  assert {
    condition     = aws_eks_node_group.this["gpu"].labels["mlops-kit/accelerator"] == "nvidia-gpu"
    error_message = "GPU nodes must carry the label the training launcher selects."
  }

  assert {
    condition = anytrue([
      for t in aws_eks_node_group.this["gpu"].taint :
      t.key == "nvidia.com/gpu" && t.value == "present" && t.effect == "NO_SCHEDULE"
    ])
    error_message = "GPU nodes must carry the nvidia.com/gpu=present:NoSchedule taint."
  }

  assert {
    condition     = alltrue([for lt in aws_launch_template.node : lt.metadata_options[0].http_tokens == "required" && lt.metadata_options[0].http_put_response_hop_limit == 1])
    error_message = "Nodes must require IMDSv2 with a hop limit of 1."
  }

  assert {
    condition     = alltrue([for lt in aws_launch_template.node : lt.vpc_security_group_ids == toset(["sg-node"]) && lt.block_device_mappings[0].ebs[0].encrypted == "true"])
    error_message = "Nodes must use the node security group and encrypted volumes."
  }
}

run "irsa_trust" {
  command = apply

  assert {
    condition = alltrue([
      for w, sa in {
        api           = "system:serviceaccount:production:api"
        inference     = "system:serviceaccount:ai-inference:inference"
        data_pipeline = "system:serviceaccount:data-pipeline:etl"
        training      = "system:serviceaccount:data-pipeline:training"
        pipelines     = "system:serviceaccount:kubeflow:pipeline-runner"
      } :
      jsondecode(aws_iam_role.irsa[w].assume_role_policy).Statement[0].Condition.StringEquals["oidc.eks.us-east-1.amazonaws.com/id/MOCKISSUER:sub"] == sa
    ])
    error_message = "Each IRSA role must trust exactly its workload's service account."
  }

  assert {
    condition = alltrue([
      for r in aws_iam_role.irsa :
      length(jsondecode(r.assume_role_policy).Statement) == 1 &&
      jsondecode(r.assume_role_policy).Statement[0].Action == "sts:AssumeRoleWithWebIdentity" &&
      jsondecode(r.assume_role_policy).Statement[0].Principal.Federated == aws_iam_openid_connect_provider.this.arn &&
      jsondecode(r.assume_role_policy).Statement[0].Condition.StringEquals["oidc.eks.us-east-1.amazonaws.com/id/MOCKISSUER:aud"] == "sts.amazonaws.com"
    ])
    error_message = "IRSA roles must be assumable only through the cluster's OIDC provider with the sts audience."
  }

  assert {
    condition     = toset(keys(aws_iam_role.irsa)) == toset(["api", "inference", "data_pipeline", "training", "pipelines"])
    error_message = "There must be one IRSA role per workload."
  }
}

run "least_privilege" {
  command = apply

  assert {
    condition = alltrue(flatten([
      for p in aws_iam_role_policy.irsa : [
        for s in jsondecode(p.policy).Statement : s.Effect == "Allow" && !contains(flatten([s.Resource]), "*") && !anytrue([for a in flatten([s.Action]) : endswith(a, ":*")])
      ]
    ]))
    error_message = "IRSA policies must name their resources and actions; no wildcards."
  }

  assert {
    condition = (
      flatten([for s in jsondecode(aws_iam_role_policy.irsa["inference"].policy).Statement : s.Resource if s.Sid == "ReadObjects"]) == ["arn:aws:s3:::mlops-kit-test-models-123456789012/*"] &&
      length([for s in jsondecode(aws_iam_role_policy.irsa["inference"].policy).Statement : s if s.Sid == "WriteObjects"]) == 0
    )
    error_message = "Inference reads the models bucket only and writes nothing."
  }

  assert {
    condition = (
      flatten([for s in jsondecode(aws_iam_role_policy.irsa["data_pipeline"].policy).Statement : s.Resource if s.Sid == "WriteObjects"]) == ["arn:aws:s3:::mlops-kit-test-processed-123456789012/*"] &&
      flatten([for s in jsondecode(aws_iam_role_policy.irsa["data_pipeline"].policy).Statement : s.Resource if s.Sid == "ReadStream"])[0] == "arn:aws:kinesis:us-east-1:123456789012:stream/mlops-kit-test-ingest" &&
      flatten([for s in jsondecode(aws_iam_role_policy.irsa["data_pipeline"].policy).Statement : s.Resource if s.Sid == "WarehouseCredentials"]) == ["arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-test"]
    )
    error_message = "The data pipeline writes the processed bucket, reads the stream and the warehouse secret."
  }

  assert {
    condition = toset(flatten([for s in jsondecode(aws_iam_role_policy.irsa["training"].policy).Statement : s.Resource if s.Sid == "WriteObjects"])) == toset([
      "arn:aws:s3:::mlops-kit-test-models-123456789012/*",
      "arn:aws:s3:::mlops-kit-test-artifacts-123456789012/*",
    ])
    error_message = "Training writes models and artifacts only."
  }

  assert {
    condition     = flatten([for s in jsondecode(aws_iam_role_policy.irsa["pipelines"].policy).Statement : s.Resource if s.Sid == "WriteObjects"]) == ["arn:aws:s3:::mlops-kit-test-artifacts-123456789012/*"]
    error_message = "Kubeflow Pipelines writes the artifacts bucket only."
  }

  assert {
    condition = (
      length([for s in jsondecode(aws_iam_role_policy.irsa["api"].policy).Statement : s if startswith(s.Sid, "ReadObjects") || startswith(s.Sid, "WriteObjects")]) == 0 &&
      toset(flatten([for s in jsondecode(aws_iam_role_policy.irsa["api"].policy).Statement : s.Resource if s.Sid == "ReadFeatures"])) == toset(var.feature_table_arns)
    )
    error_message = "The API reads features and touches no bucket."
  }

  assert {
    condition = alltrue([
      for w in ["api", "inference", "training"] :
      toset(flatten([for s in jsondecode(aws_iam_role_policy.irsa[w].policy).Statement : s.Resource if s.Sid == "ReadFeatures"])) == toset(var.feature_table_arns) &&
      length([for s in jsondecode(aws_iam_role_policy.irsa[w].policy).Statement : s if s.Sid == "WriteFeatures"]) == 0
    ])
    error_message = "The API, inference and training read every feature table, and only those, and write none."
  }

  assert {
    condition     = toset(flatten([for s in jsondecode(aws_iam_role_policy.irsa["data_pipeline"].policy).Statement : s.Resource if s.Sid == "WriteFeatures"])) == toset(var.feature_table_arns)
    error_message = "The data pipeline writes every feature table, and only those."
  }

  assert {
    condition = alltrue(flatten([
      for w, p in aws_iam_role_policy.irsa : [
        for s in jsondecode(p.policy).Statement : [
          for a in s.Action : !contains(["dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:UpdateTable", "dynamodb:*"], a)
        ]
      ]
    ]))
    error_message = "No workload may create, change or delete DynamoDB tables: Terraform owns them."
  }

  assert {
    condition = alltrue(flatten([
      for w, p in aws_iam_role_policy.irsa : [
        for s in jsondecode(p.policy).Statement : [for r in s.Resource : !strcontains(r, "*")] if startswith(s.Sid, "ReadFeatures") || startswith(s.Sid, "WriteFeatures")
      ]
    ]))
    error_message = "Feature statements name tables, never a wildcard."
  }
}

run "feature_table_arns_are_validated" {
  command = plan

  variables {
    feature_table_arns = ["arn:aws:dynamodb:us-east-1:123456789012:table/*"]
  }

  expect_failures = [var.feature_table_arns]
}

run "public_endpoint_restricted" {
  command = apply

  variables {
    endpoint_public_access       = true
    endpoint_public_access_cidrs = ["203.0.113.0/24"]
  }

  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_public_access && aws_eks_cluster.this.vpc_config[0].public_access_cidrs == toset(["203.0.113.0/24"])
    error_message = "A public endpoint must be limited to the given CIDRs."
  }
}

run "rejects_open_public_endpoint" {
  command = plan

  variables {
    endpoint_public_access       = true
    endpoint_public_access_cidrs = ["0.0.0.0/0"]
  }

  expect_failures = [var.endpoint_public_access_cidrs]
}

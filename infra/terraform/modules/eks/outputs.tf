output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = aws_eks_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the EKS cluster."
  value       = aws_eks_cluster.this.arn
}

output "cluster_endpoint" {
  description = "Endpoint of the Kubernetes API server."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA certificate of the API server."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "oidc_provider_arn" {
  description = "ARN of the IAM OIDC provider backing IRSA."
  value       = aws_iam_openid_connect_provider.this.arn
}

output "oidc_issuer_url" {
  description = "OIDC issuer URL of the cluster."
  value       = local.oidc_issuer
}

output "node_role_arn" {
  description = "Instance role of the managed node groups."
  value       = aws_iam_role.node.arn
}

output "node_group_names" {
  description = "Names of the managed node groups."
  value       = { for k, g in aws_eks_node_group.this : k => g.node_group_name }
}

output "service_account_role_arns" {
  description = "IRSA role ARN of each workload (api, inference, data_pipeline, training, pipelines); annotate the service accounts with them."
  value       = { for k, r in aws_iam_role.irsa : k => r.arn }
}

output "kms_key_arn" {
  description = "KMS key of secrets encryption and control-plane logs."
  value       = module.kms.key_arn
}

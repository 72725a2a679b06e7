output "alb_security_group_id" {
  description = "Security group of the ALB."
  value       = aws_security_group.alb.id
}

output "cluster_security_group_id" {
  description = "Additional security group of the EKS control plane."
  value       = aws_security_group.cluster.id
}

output "node_security_group_id" {
  description = "Security group of the EKS worker nodes."
  value       = aws_security_group.node.id
}

output "database_security_group_id" {
  description = "Security group of the Aurora cluster."
  value       = aws_security_group.database.id
}

output "ingress_rules" {
  description = "The ingress table: rule key to group, protocol, ports and source."
  value = {
    for k, r in local.ingress_rules : k => {
      group    = r.group
      protocol = r.protocol
      from     = r.from
      to       = r.to
      source   = coalesce(r.cidr, r.source)
    }
  }
}

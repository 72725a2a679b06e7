locals {
  tags = merge(var.tags, { "mlops-kit/module" = "security-groups" })

  sg = {
    alb      = aws_security_group.alb.id
    cluster  = aws_security_group.cluster.id
    node     = aws_security_group.node.id
    database = aws_security_group.database.id
  }

  # The complete ingress table. Nothing else opens a port on these groups.
  ingress_rules = merge(
    {
      for cidr in var.alb_ingress_cidrs : "alb_https_${cidr}" => {
        group       = "alb", protocol = "tcp", from = 443, to = 443, cidr = cidr, source = null
        description = "HTTPS from ${cidr}"
      }
    },
    {
      node_app_from_alb = {
        group       = "node", protocol = "tcp", from = var.app_port, to = var.app_port, cidr = null, source = "alb"
        description = "Application traffic from the ALB"
      }
      node_https_from_cluster = {
        group       = "node", protocol = "tcp", from = 443, to = 443, cidr = null, source = "cluster"
        description = "EKS control plane to admission webhooks and metrics"
      }
      node_kubelet_from_cluster = {
        group       = "node", protocol = "tcp", from = 10250, to = 10250, cidr = null, source = "cluster"
        description = "EKS control plane to kubelet"
      }
      node_dns_tcp_from_node = {
        group       = "node", protocol = "tcp", from = 53, to = 53, cidr = null, source = "node"
        description = "CoreDNS between nodes (TCP)"
      }
      node_dns_udp_from_node = {
        group       = "node", protocol = "udp", from = 53, to = 53, cidr = null, source = "node"
        description = "CoreDNS between nodes (UDP)"
      }
      node_ephemeral_from_node = {
        group       = "node", protocol = "tcp", from = 1025, to = 65535, cidr = null, source = "node"
        description = "Pod-to-pod traffic between nodes"
      }
      cluster_https_from_node = {
        group       = "cluster", protocol = "tcp", from = 443, to = 443, cidr = null, source = "node"
        description = "Nodes to the EKS API server"
      }
      database_from_node = {
        group       = "database", protocol = "tcp", from = var.database_port, to = var.database_port, cidr = null, source = "node"
        description = "Database connections from EKS nodes"
      }
    },
  )

  egress_rules = {
    alb_app_to_node = {
      group       = "alb", protocol = "tcp", from = var.app_port, to = var.app_port, cidr = null, target = "node"
      description = "ALB to the application port on the nodes"
    }
    cluster_https_to_node = {
      group       = "cluster", protocol = "tcp", from = 443, to = 443, cidr = null, target = "node"
      description = "EKS control plane to admission webhooks and metrics"
    }
    cluster_kubelet_to_node = {
      group       = "cluster", protocol = "tcp", from = 10250, to = 10250, cidr = null, target = "node"
      description = "EKS control plane to kubelet"
    }
    node_https_out = {
      group       = "node", protocol = "tcp", from = 443, to = 443, cidr = "0.0.0.0/0", target = null
      description = "HTTPS to AWS APIs and container registries (through NAT or VPC endpoints)"
    }
    node_dns_tcp_vpc = {
      group       = "node", protocol = "tcp", from = 53, to = 53, cidr = var.vpc_cidr, target = null
      description = "DNS (TCP) inside the VPC"
    }
    node_dns_udp_vpc = {
      group       = "node", protocol = "udp", from = 53, to = 53, cidr = var.vpc_cidr, target = null
      description = "DNS (UDP) inside the VPC"
    }
    node_ephemeral_to_node = {
      group       = "node", protocol = "tcp", from = 1025, to = 65535, cidr = null, target = "node"
      description = "Pod-to-pod traffic between nodes"
    }
    node_to_database = {
      group       = "node", protocol = "tcp", from = var.database_port, to = var.database_port, cidr = null, target = "database"
      description = "Database connections to Aurora"
    }
  }
}

resource "aws_security_group" "alb" {
  #checkov:skip=CKV2_AWS_5:This module only defines the group; it is attached to the ALB (modules/edge, aws_lb.security_groups).
  name        = "${var.name}-alb"
  description = "Internet-facing ALB: HTTPS 443 only"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-alb" })
}

resource "aws_security_group" "cluster" {
  #checkov:skip=CKV2_AWS_5:This module only defines the group; it is attached to the EKS control plane (modules/eks, aws_eks_cluster vpc_config).
  name        = "${var.name}-eks-cluster"
  description = "EKS control-plane ENIs: API server reachable from the nodes"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-eks-cluster" })
}

resource "aws_security_group" "node" {
  #checkov:skip=CKV2_AWS_5:This module only defines the group; it is attached to the node launch templates (modules/eks, aws_launch_template.vpc_security_group_ids).
  name        = "${var.name}-eks-node"
  description = "EKS worker nodes: application port from the ALB and what EKS requires"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-eks-node" })
}

resource "aws_security_group" "database" {
  #checkov:skip=CKV2_AWS_5:This module only defines the group; it is attached to the Aurora cluster (modules/data, aws_rds_cluster.vpc_security_group_ids).
  name        = "${var.name}-database"
  description = "Aurora: database port from the EKS nodes only"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-database" })
}

resource "aws_vpc_security_group_ingress_rule" "this" {
  for_each = local.ingress_rules

  security_group_id            = local.sg[each.value.group]
  description                  = each.value.description
  ip_protocol                  = each.value.protocol
  from_port                    = each.value.from
  to_port                      = each.value.to
  cidr_ipv4                    = each.value.cidr
  referenced_security_group_id = each.value.source == null ? null : local.sg[each.value.source]
  tags                         = merge(local.tags, { Name = each.key })
}

resource "aws_vpc_security_group_egress_rule" "this" {
  for_each = local.egress_rules

  security_group_id            = local.sg[each.value.group]
  description                  = each.value.description
  ip_protocol                  = each.value.protocol
  from_port                    = each.value.from
  to_port                      = each.value.to
  cidr_ipv4                    = each.value.cidr
  referenced_security_group_id = each.value.target == null ? null : local.sg[each.value.target]
  tags                         = merge(local.tags, { Name = each.key })
}

mock_provider "aws" {
  source = "../../testing/aws"
}

variables {
  name     = "mlops-kit-test"
  vpc_id   = "vpc-0123456789abcdef0"
  vpc_cidr = "10.0.0.0/16"
}

run "reference_table" {
  command = apply

  # The exact ingress table: any extra rule fails here.
  assert {
    condition = toset(keys(aws_vpc_security_group_ingress_rule.this)) == toset([
      "alb_https_0.0.0.0/0",
      "node_app_from_alb",
      "node_https_from_cluster",
      "node_kubelet_from_cluster",
      "node_dns_tcp_from_node",
      "node_dns_udp_from_node",
      "node_ephemeral_from_node",
      "cluster_https_from_node",
      "database_from_node",
    ])
    error_message = "The ingress rules differ from the reference table."
  }

  assert {
    condition = alltrue([
      for sg in [aws_security_group.alb, aws_security_group.cluster, aws_security_group.node, aws_security_group.database] :
      length(sg.ingress) == 0
    ])
    error_message = "No security group may carry inline ingress rules."
  }

  # ALB: 443 from anywhere, nothing else.
  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.this["alb_https_0.0.0.0/0"].security_group_id == aws_security_group.alb.id &&
      aws_vpc_security_group_ingress_rule.this["alb_https_0.0.0.0/0"].ip_protocol == "tcp" &&
      aws_vpc_security_group_ingress_rule.this["alb_https_0.0.0.0/0"].from_port == 443 &&
      aws_vpc_security_group_ingress_rule.this["alb_https_0.0.0.0/0"].to_port == 443 &&
      aws_vpc_security_group_ingress_rule.this["alb_https_0.0.0.0/0"].cidr_ipv4 == "0.0.0.0/0"
    )
    error_message = "The ALB must accept 443/tcp from 0.0.0.0/0."
  }

  assert {
    condition     = length([for r in aws_vpc_security_group_ingress_rule.this : r if r.security_group_id == aws_security_group.alb.id]) == 1
    error_message = "The ALB must have no ingress besides 443."
  }

  assert {
    condition     = length([for r in aws_vpc_security_group_ingress_rule.this : r if r.cidr_ipv4 != null]) == 1
    error_message = "Only the ALB rule may name a CIDR; every other ingress comes from a security group."
  }

  # Nodes: 8080 from the ALB only; the rest comes from the control plane or other nodes.
  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.this["node_app_from_alb"].security_group_id == aws_security_group.node.id &&
      aws_vpc_security_group_ingress_rule.this["node_app_from_alb"].referenced_security_group_id == aws_security_group.alb.id &&
      aws_vpc_security_group_ingress_rule.this["node_app_from_alb"].from_port == 8080 &&
      aws_vpc_security_group_ingress_rule.this["node_app_from_alb"].to_port == 8080
    )
    error_message = "Nodes must accept 8080 from the ALB security group."
  }

  assert {
    condition = alltrue([
      for r in aws_vpc_security_group_ingress_rule.this :
      r.referenced_security_group_id == aws_security_group.alb.id ? r.from_port == 8080 && r.to_port == 8080 && r.security_group_id == aws_security_group.node.id : true
    ])
    error_message = "The ALB security group may reach the nodes on 8080 only."
  }

  assert {
    condition = alltrue([
      for k in ["node_https_from_cluster", "node_kubelet_from_cluster"] :
      aws_vpc_security_group_ingress_rule.this[k].security_group_id == aws_security_group.node.id &&
      aws_vpc_security_group_ingress_rule.this[k].referenced_security_group_id == aws_security_group.cluster.id
    ]) && aws_vpc_security_group_ingress_rule.this["node_kubelet_from_cluster"].from_port == 10250 && aws_vpc_security_group_ingress_rule.this["node_https_from_cluster"].from_port == 443
    error_message = "The control plane reaches nodes on 443 and 10250 only."
  }

  assert {
    condition = alltrue([
      for k in ["node_dns_tcp_from_node", "node_dns_udp_from_node", "node_ephemeral_from_node"] :
      aws_vpc_security_group_ingress_rule.this[k].security_group_id == aws_security_group.node.id &&
      aws_vpc_security_group_ingress_rule.this[k].referenced_security_group_id == aws_security_group.node.id
    ])
    error_message = "Node-to-node rules must reference the node security group itself."
  }

  # Cluster: the API server from the nodes on 443.
  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.this["cluster_https_from_node"].security_group_id == aws_security_group.cluster.id &&
      aws_vpc_security_group_ingress_rule.this["cluster_https_from_node"].referenced_security_group_id == aws_security_group.node.id &&
      aws_vpc_security_group_ingress_rule.this["cluster_https_from_node"].from_port == 443
    )
    error_message = "The API server must accept 443 from the nodes."
  }

  # RDS: 5432 from the EKS nodes only.
  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.this["database_from_node"].security_group_id == aws_security_group.database.id &&
      aws_vpc_security_group_ingress_rule.this["database_from_node"].referenced_security_group_id == aws_security_group.node.id &&
      aws_vpc_security_group_ingress_rule.this["database_from_node"].ip_protocol == "tcp" &&
      aws_vpc_security_group_ingress_rule.this["database_from_node"].from_port == 5432 &&
      aws_vpc_security_group_ingress_rule.this["database_from_node"].to_port == 5432
    )
    error_message = "The database must accept 5432 from the node security group."
  }

  assert {
    condition     = length([for r in aws_vpc_security_group_ingress_rule.this : r if r.security_group_id == aws_security_group.database.id]) == 1
    error_message = "The database must have no other ingress."
  }

  assert {
    condition     = length([for r in aws_vpc_security_group_egress_rule.this : r if r.security_group_id == aws_security_group.database.id]) == 0
    error_message = "The database needs no egress."
  }

  assert {
    condition     = toset([for r in aws_vpc_security_group_egress_rule.this : r.from_port if r.security_group_id == aws_security_group.alb.id]) == toset([8080])
    error_message = "The ALB may only send to the application port."
  }

  assert {
    condition     = alltrue([for r in aws_vpc_security_group_egress_rule.this : r.ip_protocol != "-1"])
    error_message = "No egress rule may open all protocols."
  }
}

run "mysql_port" {
  command = apply

  variables {
    database_port = 3306
  }

  assert {
    condition     = aws_vpc_security_group_ingress_rule.this["database_from_node"].from_port == 3306 && aws_vpc_security_group_ingress_rule.this["database_from_node"].to_port == 3306
    error_message = "A MySQL database opens 3306 instead of 5432."
  }
}

run "rejects_other_database_ports" {
  command = plan

  variables {
    database_port = 1433
  }

  expect_failures = [var.database_port]
}

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
      length(sg.ingress) == 0 && length(sg.egress) == 0
    ])
    error_message = "No security group may carry inline ingress or egress rules."
  }

  # Every ingress rule as "group protocol from-to peer", the peer being a CIDR or a source
  # group: the exact set, so a rule added, removed, widened or moved anywhere fails here.
  assert {
    condition = length(aws_vpc_security_group_ingress_rule.this) == 9 && toset([
      for r in aws_vpc_security_group_ingress_rule.this : format(
        "%s %s %s-%s %s", r.security_group_id, r.ip_protocol, coalesce(r.from_port, -1), coalesce(r.to_port, -1),
        try(coalesce(r.cidr_ipv4, r.cidr_ipv6, r.prefix_list_id, r.referenced_security_group_id), "none")
      )
      ]) == toset([
      "${aws_security_group.alb.id} tcp 443-443 0.0.0.0/0",
      "${aws_security_group.node.id} tcp 8080-8080 ${aws_security_group.alb.id}",
      "${aws_security_group.node.id} tcp 443-443 ${aws_security_group.cluster.id}",
      "${aws_security_group.node.id} tcp 10250-10250 ${aws_security_group.cluster.id}",
      "${aws_security_group.node.id} tcp 53-53 ${aws_security_group.node.id}",
      "${aws_security_group.node.id} udp 53-53 ${aws_security_group.node.id}",
      "${aws_security_group.node.id} tcp 1025-65535 ${aws_security_group.node.id}",
      "${aws_security_group.cluster.id} tcp 443-443 ${aws_security_group.node.id}",
      "${aws_security_group.database.id} tcp 5432-5432 ${aws_security_group.node.id}",
    ])
    error_message = "The ingress rules (group, protocol, ports, peer) differ from the reference table."
  }

  # Every egress rule, the same way: the egress that exists today, nothing more.
  assert {
    condition = length(aws_vpc_security_group_egress_rule.this) == 8 && toset([
      for r in aws_vpc_security_group_egress_rule.this : format(
        "%s %s %s-%s %s", r.security_group_id, r.ip_protocol, coalesce(r.from_port, -1), coalesce(r.to_port, -1),
        try(coalesce(r.cidr_ipv4, r.cidr_ipv6, r.prefix_list_id, r.referenced_security_group_id), "none")
      )
      ]) == toset([
      "${aws_security_group.alb.id} tcp 8080-8080 ${aws_security_group.node.id}",
      "${aws_security_group.cluster.id} tcp 443-443 ${aws_security_group.node.id}",
      "${aws_security_group.cluster.id} tcp 10250-10250 ${aws_security_group.node.id}",
      "${aws_security_group.node.id} tcp 443-443 0.0.0.0/0",
      "${aws_security_group.node.id} tcp 53-53 10.0.0.0/16",
      "${aws_security_group.node.id} udp 53-53 10.0.0.0/16",
      "${aws_security_group.node.id} tcp 1025-65535 ${aws_security_group.node.id}",
      "${aws_security_group.node.id} tcp 5432-5432 ${aws_security_group.database.id}",
    ])
    error_message = "The egress rules (group, protocol, ports, peer) differ from the reference table."
  }

  assert {
    condition = length([
      for r in aws_vpc_security_group_egress_rule.this : r
      if r.cidr_ipv4 == "0.0.0.0/0" && !(r.security_group_id == aws_security_group.node.id && r.ip_protocol == "tcp" && r.from_port == 443 && r.to_port == 443)
    ]) == 0
    error_message = "The only egress to 0.0.0.0/0 is HTTPS from the nodes."
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

  assert {
    condition     = aws_vpc_security_group_egress_rule.this["node_to_database"].from_port == 3306 && aws_vpc_security_group_egress_rule.this["node_to_database"].to_port == 3306
    error_message = "The nodes reach a MySQL database on 3306."
  }

  assert {
    condition     = length([for r in concat(values(aws_vpc_security_group_ingress_rule.this), values(aws_vpc_security_group_egress_rule.this)) : r if r.from_port == 5432 || r.to_port == 5432]) == 0
    error_message = "Nothing opens 5432 when the database is MySQL."
  }
}

run "restricted_alb_sources" {
  command = apply

  variables {
    alb_ingress_cidrs = ["203.0.113.0/24", "198.51.100.0/24"]
  }

  assert {
    condition = toset([
      for r in aws_vpc_security_group_ingress_rule.this : "${r.ip_protocol} ${r.from_port}-${r.to_port} ${r.cidr_ipv4}"
      if r.security_group_id == aws_security_group.alb.id
    ]) == toset(["tcp 443-443 203.0.113.0/24", "tcp 443-443 198.51.100.0/24"])
    error_message = "The ALB accepts 443 from exactly the given CIDRs."
  }

  assert {
    condition     = length([for r in aws_vpc_security_group_ingress_rule.this : r if r.cidr_ipv4 == "0.0.0.0/0"]) == 0
    error_message = "With restricted sources nothing accepts 0.0.0.0/0."
  }
}

run "rejects_other_database_ports" {
  command = plan

  variables {
    database_port = 1433
  }

  expect_failures = [var.database_port]
}

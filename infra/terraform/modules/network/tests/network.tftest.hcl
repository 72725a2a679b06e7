mock_provider "aws" {
  source = "../../testing/aws"
}

variables {
  name = "mlops-kit-test"
  azs  = ["us-east-1a", "us-east-1b"]
}

run "reference_network" {
  command = apply

  assert {
    condition     = aws_vpc.this.cidr_block == "10.0.0.0/16"
    error_message = "The VPC must be 10.0.0.0/16."
  }

  assert {
    condition     = aws_subnet.public[*].cidr_block == ["10.0.1.0/24", "10.0.2.0/24"]
    error_message = "Public subnets must be 10.0.1.0/24 and 10.0.2.0/24."
  }

  assert {
    condition     = aws_subnet.app[*].cidr_block == ["10.0.10.0/24", "10.0.11.0/24"]
    error_message = "Private app subnets must be 10.0.10.0/24 and 10.0.11.0/24."
  }

  assert {
    condition     = aws_subnet.data[*].cidr_block == ["10.0.20.0/24", "10.0.21.0/24"]
    error_message = "Private data subnets must be 10.0.20.0/24 and 10.0.21.0/24."
  }

  assert {
    condition = alltrue([
      for tier in [aws_subnet.public, aws_subnet.app, aws_subnet.data] :
      tier[*].availability_zone == ["us-east-1a", "us-east-1b"]
    ])
    error_message = "Each tier must span both AZs, one subnet per AZ."
  }

  assert {
    condition     = alltrue([for s in concat(aws_subnet.public, aws_subnet.app, aws_subnet.data) : s.map_public_ip_on_launch != true])
    error_message = "No subnet may assign public IPs on launch."
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 2 && aws_nat_gateway.this[*].subnet_id == aws_subnet.public[*].id
    error_message = "Without single_nat_gateway there must be one NAT gateway per AZ, in the public subnets."
  }

  assert {
    condition     = aws_route.app_nat[0].nat_gateway_id == aws_nat_gateway.this[0].id && aws_route.app_nat[1].nat_gateway_id == aws_nat_gateway.this[1].id
    error_message = "Each app subnet must leave through the NAT gateway of its own AZ."
  }

  assert {
    condition     = aws_route.public_internet.gateway_id == aws_internet_gateway.this.id
    error_message = "Public subnets route to the internet gateway."
  }

  assert {
    condition     = toset(keys(aws_vpc_endpoint.gateway)) == toset(["s3", "dynamodb"]) && alltrue([for e in aws_vpc_endpoint.gateway : e.vpc_endpoint_type == "Gateway" && length(e.route_table_ids) == 3])
    error_message = "S3 and DynamoDB gateway endpoints must serve the app and data route tables."
  }

  assert {
    condition     = aws_vpc_endpoint.gateway["s3"].service_name == "com.amazonaws.us-east-1.s3"
    error_message = "The S3 endpoint must target the region's S3 service."
  }

  assert {
    condition     = alltrue([for e in aws_vpc_endpoint.interface : e.vpc_endpoint_type == "Interface" && e.private_dns_enabled && e.security_group_ids == toset([aws_security_group.endpoints.id])])
    error_message = "Interface endpoints must use private DNS and the endpoint security group."
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.endpoints) == 2 && alltrue([for r in aws_vpc_security_group_ingress_rule.endpoints : r.from_port == 443 && r.to_port == 443 && contains(["10.0.10.0/24", "10.0.11.0/24"], r.cidr_ipv4)])
    error_message = "The endpoint security group admits HTTPS from the app subnets only."
  }

  # The endpoint group's rules as "group protocol from-to peer": exactly HTTPS from each app
  # subnet, no inline rules and no egress (the static test allows no other rule resource).
  assert {
    condition = length(aws_vpc_security_group_ingress_rule.endpoints) == 2 && toset([
      for r in aws_vpc_security_group_ingress_rule.endpoints : format(
        "%s %s %s-%s %s", r.security_group_id, r.ip_protocol, coalesce(r.from_port, -1), coalesce(r.to_port, -1),
        try(coalesce(r.cidr_ipv4, r.cidr_ipv6, r.prefix_list_id, r.referenced_security_group_id), "none")
      )
      ]) == toset([
      "${aws_security_group.endpoints.id} tcp 443-443 10.0.10.0/24",
      "${aws_security_group.endpoints.id} tcp 443-443 10.0.11.0/24",
    ])
    error_message = "The endpoint security group's ingress differs from HTTPS from the two app subnets."
  }

  assert {
    condition     = length(aws_security_group.endpoints.ingress) == 0 && length(aws_security_group.endpoints.egress) == 0
    error_message = "The endpoint security group carries no inline rules."
  }

  assert {
    condition     = length(aws_default_security_group.this.ingress) == 0 && length(aws_default_security_group.this.egress) == 0
    error_message = "The default security group must have no rules."
  }

  assert {
    condition     = aws_flow_log.this.traffic_type == "ALL" && aws_flow_log.this.log_destination == aws_cloudwatch_log_group.flow_logs.arn
    error_message = "Flow logs must capture all traffic into the flow-log group."
  }

  assert {
    condition     = aws_cloudwatch_log_group.flow_logs.kms_key_id == module.flow_logs_key.key_arn
    error_message = "The flow-log group must be KMS-encrypted."
  }
}

run "single_nat_gateway" {
  command = apply

  variables {
    single_nat_gateway = true
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 1
    error_message = "single_nat_gateway must create exactly one NAT gateway."
  }

  assert {
    condition     = alltrue([for r in aws_route.app_nat : r.nat_gateway_id == aws_nat_gateway.this[0].id])
    error_message = "Both app route tables must use the single NAT gateway."
  }
}

run "rejects_a_third_az" {
  command = plan

  variables {
    azs = ["us-east-1a", "us-east-1b", "us-east-1c"]
  }

  expect_failures = [var.azs]
}

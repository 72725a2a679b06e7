"""The dev environment against moto's server: overrides, the apply / re-plan / destroy cycle.

The cycle runs in a background thread started by ``conftest.py`` as soon as the first Terraform
test of a session that selected it begins: it mostly waits on the provider's polling, so the other
layers run meanwhile. ``test_moto_apply.py`` asserts on its :class:`CycleResult`.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3

REGION = "us-east-1"
REPLICA_REGION = "us-west-2"

# Services the dev env talks to, as named in the AWS provider's `endpoints` block.
SERVICES = (
    "cloudtrail",
    "cloudwatch",
    "configservice",
    "dynamodb",
    "ec2",
    "ecr",
    "eks",
    "elbv2",
    "guardduty",
    "iam",
    "kinesis",
    "kms",
    "logs",
    "rds",
    "s3",
    "secretsmanager",
    "sns",
    "sts",
    "wafv2",
)

# Toggles moto forces off: the ALB's HTTPS listener needs an issued ACM certificate
# and WAFv2 managed rule groups, neither of which moto provides; moto's GuardDuty has
# detectors but no detector features.
MOTO_VARIABLES = {
    "enable_edge": False,
    "enable_waf": False,
    "enable_guardduty": False,
}


# Attributes moto does not read back as AWS does. Without these, the re-plan after
# apply would show changes that come from the emulator, not from the configuration;
# they are written as `_override.tf` files into the copied modules only.
MOTO_ROUND_TRIP_GAPS = {
    "data": {
        # ListTagsForStream returns only part of the tags given to CreateStream.
        ("aws_kinesis_stream", "ingest"): ["tags", "tags_all"],
        # DescribeDBClusters reports a serverless v1 scaling configuration for provisioned clusters.
        ("aws_rds_cluster", "this"): ["scaling_configuration"],
        # DescribeDBInstances does not report Performance Insights settings.
        ("aws_rds_cluster_instance", "this"): [
            "performance_insights_enabled",
            "performance_insights_kms_key_id",
            "performance_insights_retention_period",
        ],
    },
    "eks": {
        # DescribeNodegroup invents a remote_access block (ssh key "eksKeypair") and drops update_config.
        ("aws_eks_node_group", "this"): [
            "remote_access",
            "update_config",
            "scaling_config[0].desired_size",
        ],
        # DescribeLaunchTemplateVersions adds a "launch-template" tag specification.
        ("aws_launch_template", "node"): ["tag_specifications"],
    },
    "security-groups": {
        # DescribeSecurityGroupRules returns "<account>/sg-..." references and drops descriptions.
        ("aws_vpc_security_group_ingress_rule", "this"): [
            "referenced_security_group_id",
            "description",
        ],
        ("aws_vpc_security_group_egress_rule", "this"): [
            "referenced_security_group_id",
            "description",
        ],
    },
    "s3-bucket": {
        # GetBucketLogging omits TargetObjectKeyFormat; GetBucketNotificationConfiguration
        # omits EventBridgeConfiguration.
        ("aws_s3_bucket_logging", "this"): ["target_object_key_format"],
        ("aws_s3_bucket_notification", "this"): ["eventbridge"],
    },
    "observability": {
        # GetTrail returns the topic ARN where AWS returns its name.
        ("aws_cloudtrail", "this"): ["sns_topic_name"],
    },
}


def _round_trip_overrides(modules_dir: Path) -> None:
    for module, resources in MOTO_ROUND_TRIP_GAPS.items():
        blocks = [
            f'resource "{rtype}" "{name}" {{\n'
            f"  lifecycle {{\n    ignore_changes = [{', '.join(attrs)}]\n  }}\n}}\n"
            for (rtype, name), attrs in resources.items()
        ]
        (modules_dir / module / "moto_override.tf").write_text("\n".join(blocks))


def _provider_override(endpoint: str) -> str:
    endpoints = "\n".join(f'    {service} = "{endpoint}"' for service in SERVICES)
    providers = []
    for alias, region in ((None, REGION), ("replica", REPLICA_REGION)):
        alias_line = f'  alias = "{alias}"\n' if alias else ""
        providers.append(
            'provider "aws" {\n'
            f"{alias_line}"
            f'  region                      = "{region}"\n'
            '  access_key                  = "testing"\n'
            '  secret_key                  = "testing"\n'
            "  skip_credentials_validation = true\n"
            "  skip_requesting_account_id  = true\n"
            "  skip_metadata_api_check     = true\n"
            "  skip_region_validation      = true\n"
            "  s3_use_path_style           = true\n"
            "  endpoints {\n"
            f"{endpoints}\n"
            "  }\n"
            "}\n"
        )
    backend = 'terraform {\n  backend "local" {}\n}\n'
    return backend + "\n" + "\n".join(providers)


def prepare(tf: ModuleType, workdir: Path, endpoint: str) -> Path:
    """Copy infra/terraform into ``workdir`` and point envs/dev at moto; return the env dir."""
    tree = tf.copy_tree(workdir / "terraform")
    env_dir = tree / "envs" / "dev"
    (env_dir / "moto_override.tf").write_text(_provider_override(endpoint))
    (env_dir / "moto.auto.tfvars.json").write_text(json.dumps(MOTO_VARIABLES, indent=2))
    _round_trip_overrides(tree / "modules")
    return env_dir


def aws_env(tf_env: dict[str, str]) -> dict[str, str]:
    return {
        **tf_env,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@dataclass
class CycleResult:
    """What the apply / re-plan / destroy cycle observed."""

    outputs: dict[str, Any] | None = None
    live_check_error: str | None = None
    plan_returncode: int | None = None
    plan_output: str = ""
    state_left: list[str] | None = None
    error: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def run_cycle(
    tf: ModuleType, terraform: str, tf_env: dict[str, str], endpoint: str, workdir: Path
) -> CycleResult:
    """init, apply, read outputs and live resources, re-plan, destroy; never raises."""
    result = CycleResult()
    env = aws_env(tf_env)
    applied = False

    def step(name: str, args: list[str], timeout: float, check: bool = True) -> Any:
        started = time.monotonic()
        try:
            return tf.run(terraform, args, env_dir, env, timeout=timeout, check=check)
        finally:
            result.seconds[name] = round(time.monotonic() - started, 1)

    try:
        env_dir = prepare(tf, workdir, endpoint)
        step("init", ["init", "-input=false", "-no-color"], 120)
        applied = True
        step(
            "apply", ["apply", "-auto-approve", "-input=false", "-no-color", "-parallelism=30"], 420
        )
        result.outputs = json.loads(step("output", ["output", "-json"], 60).stdout)
        try:
            check_live_resources(endpoint, result.outputs)
        except Exception:
            result.live_check_error = traceback.format_exc()
        plan = step(
            "plan",
            ["plan", "-detailed-exitcode", "-input=false", "-no-color", "-parallelism=30"],
            300,
            check=False,
        )
        result.plan_returncode = plan.returncode
        result.plan_output = plan.stdout[-8000:] + plan.stderr[-4000:]
    except Exception:
        result.error = traceback.format_exc()
    finally:
        if applied:
            try:
                step(
                    "destroy",
                    ["destroy", "-auto-approve", "-input=false", "-no-color", "-parallelism=30"],
                    420,
                )
                result.state_left = step("state list", ["state", "list"], 60).stdout.split()
            except Exception:
                result.error = (result.error or "") + traceback.format_exc()
    return result


def check_live_resources(endpoint: str, outputs: dict) -> None:
    """Read back, through the AWS APIs, what the module tests assert on the plan."""
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    ec2 = session.client("ec2", endpoint_url=endpoint)
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["mlops-kit-dev"]}])["Vpcs"]
    assert [v["CidrBlock"] for v in vpcs] == ["10.0.0.0/16"]
    vpc_id = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert sorted(s["CidrBlock"] for s in subnets) == sorted(
        [
            "10.0.1.0/24",
            "10.0.2.0/24",
            "10.0.10.0/24",
            "10.0.11.0/24",
            "10.0.20.0/24",
            "10.0.21.0/24",
        ]
    )

    groups = {
        g["GroupName"]: g["GroupId"]
        for g in ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])[
            "SecurityGroups"
        ]
    }
    rules = ec2.describe_security_group_rules(
        Filters=[
            {
                "Name": "group-id",
                "Values": [groups["mlops-kit-dev-alb"], groups["mlops-kit-dev-database"]],
            }
        ]
    )["SecurityGroupRules"]
    ingress = sorted(
        (r["GroupId"], r["FromPort"], r.get("CidrIpv4") or r["ReferencedGroupInfo"]["GroupId"])
        for r in rules
        if not r["IsEgress"]
    )
    assert ingress == sorted(
        [
            (groups["mlops-kit-dev-alb"], 443, "0.0.0.0/0"),
            (groups["mlops-kit-dev-database"], 5432, groups["mlops-kit-dev-eks-node"]),
        ]
    )

    s3 = session.client("s3", endpoint_url=endpoint)
    for name in (
        "raw_bucket_name",
        "processed_bucket_name",
        "models_bucket_name",
        "artifacts_bucket_name",
    ):
        bucket = outputs[name]["value"]
        sse = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][
            0
        ]
        assert sse["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(pab.values())

    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    prefix = outputs["feature_table_prefix"]["value"]
    tables = outputs["feature_table_names"]["value"]
    assert tables == {view: f"{prefix}.{view}" for view in ("device_hourly", "device_daily")}
    table_arns = set()
    for table in tables.values():
        desc = dynamodb.describe_table(TableName=table)["Table"]
        assert desc["KeySchema"] == [{"AttributeName": "entity_id", "KeyType": "HASH"}]
        assert desc["AttributeDefinitions"] == [
            {"AttributeName": "entity_id", "AttributeType": "S"}
        ]
        assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert desc["SSEDescription"]["SSEType"] == "KMS"
        backups = dynamodb.describe_continuous_backups(TableName=table)
        pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
        assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"
        table_arns.add(desc["TableArn"])

    iam = session.client("iam", endpoint_url=endpoint)
    roles = {
        w: arn.rsplit("/", 1)[1] for w, arn in outputs["service_account_role_arns"]["value"].items()
    }
    trust = iam.get_role(RoleName=roles["api"])["Role"]["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(trust)
    conditions = trust["Statement"][0]["Condition"]["StringEquals"]
    assert "system:serviceaccount:production:api" in conditions.values()

    # The feature statements of the IRSA policies name exactly the feature tables.
    expected = {
        "api": {"ReadFeatures"},
        "inference": {"ReadFeatures"},
        "training": {"ReadFeatures"},
        "data_pipeline": {"WriteFeatures"},
        "pipelines": set(),
    }
    for workload, sids in expected.items():
        statements = []
        for policy in iam.list_role_policies(RoleName=roles[workload])["PolicyNames"]:
            document = iam.get_role_policy(RoleName=roles[workload], PolicyName=policy)[
                "PolicyDocument"
            ]
            if isinstance(document, str):
                document = json.loads(document)
            statements += document["Statement"]
        features = [s for s in statements if s.get("Sid") in {"ReadFeatures", "WriteFeatures"}]
        assert {s["Sid"] for s in features} == sids, workload
        for s in features:
            resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            assert set(resources) == table_arns, (workload, resources)

"""TrainingJobSpec and per-backend validation: every error names its field."""

from __future__ import annotations

import pytest
import yaml

from mlops_kit.config import Settings
from mlops_kit.errors import ConfigError
from mlops_kit.training import TrainConfig
from mlops_kit.training.launchers import (
    TrainingJobSpec,
    flatten_config,
    launcher_for,
    parse_job_spec,
    train_arguments,
)
from mlops_kit.training.launchers.eks import build_pytorchjob, build_trainjob
from mlops_kit.training.launchers.sagemaker import resolve_instance_type

BASE = {"data_uri": "s3://processed/train.parquet", "output_uri": "s3://models/fm/1"}


def spec(**kw: object) -> TrainingJobSpec:
    return TrainingJobSpec(**{"name": "fm-1", **BASE, **kw})


@pytest.mark.parametrize("name", ["Fm-1", "1fm", "fm_1", "fm-", "fm.1", "a" * 51, "", "fm 1"])
def test_bad_job_name_is_rejected_naming_the_field(name: str) -> None:
    with pytest.raises(ConfigError, match=r"(?s)name: must be lowercase") as info:
        spec(name=name)
    assert info.value.code == "CONFIG_INVALID"


def test_zero_gpus_for_a_gpu_job_names_gpus_per_node() -> None:
    with pytest.raises(ConfigError, match="gpus_per_node: a GPU job needs at least 1 GPU"):
        spec(accelerator="gpu")
    with pytest.raises(ConfigError, match="gpus_per_node: a CPU job cannot request GPUs"):
        spec(accelerator="cpu", gpus_per_node=2)
    with pytest.raises(ConfigError, match=r"config\.device: 'cuda' needs a GPU job"):
        spec(config=TrainConfig(device="cuda"))
    assert spec(gpus_per_node=2).accelerator == "gpu"
    assert spec().accelerator == "cpu"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cpu", "two", "cpu: must be a Kubernetes quantity"),
        ("memory", "8GB", "memory: must be a Kubernetes quantity"),
        ("nodes", 0, "nodes: Input should be greater than or equal to 1"),
        ("env", {"1BAD": "x"}, "env: invalid environment variable names"),
        ("env_from_secrets", {"db": ["pass-word"]}, "env_from_secrets: keys"),
        ("env_from_secrets", {"Bad_Secret": ["K"]}, "env_from_secrets: secret name"),
        ("namespace", "Data_Pipeline", "namespace: must be a DNS-1123 label"),
        ("labels", {"team": "a b"}, "labels: label 'team'"),
        ("epochs", 3, "epochs: unknown field"),
    ],
)
def test_field_errors_name_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        spec(**{field: value})


def test_secret_env_clash_is_rejected() -> None:
    with pytest.raises(ConfigError, match="env_from_secrets: \\['TOKEN'\\] are also set in env"):
        spec(env={"TOKEN": "x"}, env_from_secrets={"mlflow": ["TOKEN"]})


def test_parse_job_spec_from_yaml() -> None:
    parsed = parse_job_spec(
        yaml.safe_load("name: fm-2\ndata_uri: s3://a/t\noutput_uri: s3://a/m\ngpus_per_node: 1\n")
    )
    assert parsed.is_gpu and parsed.nproc_per_node == 1


def test_missing_image_names_the_field(home: object) -> None:
    from mlops_kit.config import load_settings

    bare = load_settings()
    assert bare.images.training is None
    for build in (build_pytorchjob, build_trainjob):
        with pytest.raises(ConfigError, match="image: the EKS backend needs a container image"):
            build(spec(), bare)
    with pytest.raises(ConfigError, match="image: the SageMaker backend needs"):
        launcher_for("sagemaker", bare, role_arn="arn:aws:iam::1:role/r").validate(spec())


def test_default_image_follows_the_package_version(settings: Settings) -> None:
    from mlops_kit import __version__

    obj = build_pytorchjob(spec(), settings)
    container = obj["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    assert container["image"].endswith(f"/mlops-kit-training:{__version__}")
    pinned = build_pytorchjob(spec(image="registry.local/trainer@sha256:" + "a" * 64), settings)
    assert (
        "@sha256:"
        in pinned["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0][
            "image"
        ]
    )


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"instance_type": "g5.xlarge", "gpus_per_node": 1}, "instance_type: 'g5.xlarge' is not"),
        ({"instance_type": "ml.g5.xlarg", "gpus_per_node": 1}, "instance_type: 'ml.g5.xlarg'"),
        (
            {"instance_type": "ml.m5.xlarge", "gpus_per_node": 1},
            "instance_type: 'ml.m5.xlarge' has no NVIDIA GPU",
        ),
        (
            {"instance_type": "ml.g5.2xlarge", "gpus_per_node": 4},
            "gpus_per_node: ml.g5.2xlarge has 1 GPU",
        ),
    ],
)
def test_sagemaker_instance_type_checks(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_instance_type(spec(**kw))


def test_sagemaker_defaults_and_families() -> None:
    assert resolve_instance_type(spec()) == "ml.m5.xlarge"
    assert resolve_instance_type(spec(gpus_per_node=1)) == "ml.g5.xlarge"
    for t in ("ml.p4d.24xlarge", "ml.p5.48xlarge", "ml.g6e.12xlarge", "ml.g4dn.12xlarge"):
        assert resolve_instance_type(spec(instance_type=t, gpus_per_node=4)) == t


def test_sagemaker_backend_checks(settings: Settings) -> None:
    sm = launcher_for("sagemaker", settings, role_arn="arn:aws:iam::1:role/r")
    with pytest.raises(ConfigError, match="data_uri: the SageMaker backend cannot reach"):
        sm.validate(spec(data_uri="/tmp/train.parquet"))
    with pytest.raises(ConfigError, match="env_from_secrets: Kubernetes secrets do not exist"):
        sm.validate(spec(env_from_secrets={"mlflow": ["TOKEN"]}))
    with pytest.raises(ConfigError, match="role_arn: a SageMaker training job needs"):
        launcher_for("sagemaker", settings).validate(spec())


def test_eks_backend_checks(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="output_uri: the EKS backend cannot reach"):
        build_trainjob(spec(output_uri="file:///tmp/m"), settings)
    bad = settings.model_copy(deep=True)
    object.__setattr__(bad.cluster, "gpu_taint", "nvidia.com/gpu=present")
    with pytest.raises(ConfigError, match=r"cluster\.gpu_taint: expected 'key=value:Effect'"):
        build_pytorchjob(spec(gpus_per_node=1), bad)


def test_local_backend_checks(settings: Settings) -> None:
    local = launcher_for("local", settings)
    with pytest.raises(ConfigError, match="nodes: the local backend runs on one machine"):
        local.validate(spec(nodes=2))
    with pytest.raises(ConfigError, match="env_from_secrets"):
        local.validate(spec(env_from_secrets={"s": ["K"]}))
    with pytest.raises(ConfigError, match="backend: expected one of local, eks, sagemaker"):
        launcher_for("k8s", settings)  # type: ignore[arg-type]


def test_config_travels_as_set_arguments_that_parse_back() -> None:
    from mlops_kit.training.__main__ import _merge, _overrides
    from mlops_kit.training.config import parse_train_config

    cfg = TrainConfig(
        epochs=3,
        optimizer={"lr": 1e-5, "grad_clip_norm": 1.0},
        model={"hidden_sizes": [8], "activation": "gelu"},
        pos_weight="auto",
        data={"gap_hours": 24.0, "label_column": "null"},
        checkpoint_uri="s3://b/ck",
    )
    args = train_arguments(spec(config=cfg))
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    assert "epochs=3" in sets and "optimizer.lr=1.0e-05" in sets
    merged = _merge({}, _overrides(sets))
    assert parse_train_config(merged) == cfg
    assert flatten_config(cfg)["model.hidden_sizes"] == "[8]"
    assert set(flatten_config(TrainConfig(), only_changed=True)) == set()


def test_config_path_is_read_at_submission(tmp_path: object, settings: Settings) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "train.yaml"
    path.write_text("epochs: 4\nmodel:\n  hidden_sizes: [16]\n")
    obj = build_trainjob(spec(config=str(path)), settings)
    command = obj["spec"]["trainer"]["command"]
    assert "epochs=4" in command and "model.hidden_sizes=[16]" in command
    path.write_text("epochs: 0\n")
    with pytest.raises(ConfigError, match="epochs"):
        build_trainjob(spec(config=str(path)), settings)


def test_importing_the_launchers_loads_no_heavy_sdk() -> None:
    import subprocess
    import sys

    code = (
        "import sys, mlops_kit, mlops_kit.training.launchers as L; "
        "L.TrainingJobSpec(name='a', data_uri='s3://a/b', output_uri='s3://a/c'); "
        "print(sorted(m for m in ('torch', 'kubernetes', 'sagemaker', 'jsonschema') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

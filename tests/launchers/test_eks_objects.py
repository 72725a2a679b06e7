"""Every generated PyTorchJob and TrainJob validates against the official CRD schemas.

Each object is checked by the project's validator and by the independent ones of
``tests/launchers/independent.py`` (jsonschema on the CRD, kubernetes-validate on the
embedded core/v1 parts); each CEL rule form the project's validator evaluates has a
crafted object that breaks it and nothing else.
"""

from __future__ import annotations

from typing import Any

import pytest

from mlops_kit.config import Settings
from mlops_kit.errors import ConfigError
from mlops_kit.training import TrainConfig
from mlops_kit.training.launchers import TrainingJobSpec
from mlops_kit.training.launchers.crd import crd_from_manifest, validate_object
from mlops_kit.training.launchers.eks import build_pytorchjob, build_trainjob
from tests.launchers.independent import CrdSchema, core_errors, crd_schema_for

BASE = {"data_uri": "s3://processed/training/train.parquet", "output_uri": "s3://models/fm/7"}

CASES: dict[str, dict[str, Any]] = {
    "cpu": {},
    "cpu-ddp": {"procs_per_node": 4, "cpu": "4500m", "memory": "12Gi"},
    "gpu": {"gpus_per_node": 1, "checkpoint_uri": "s3://models/fm/7/ckpt"},
    "multi-node-gpu": {
        "nodes": 4,
        "gpus_per_node": 8,
        "cpu": "90",
        "memory": "900Gi",
        "max_runtime_s": 7200,
        "max_retries": 3,
        "config": TrainConfig(epochs=50, batch_size=4096, optimizer={"lr": 1e-3}),
    },
    "env-from-secrets": {
        "env": {"MLFLOW_TRACKING_URI": "http://mlflow.data-pipeline:5000"},
        "env_from_secrets": {"mlflow-auth": ["MLFLOW_TRACKING_TOKEN"], "wandb": ["WANDB_API_KEY"]},
        "labels": {"team": "ml", "example.com/cost-center": "c-42"},
    },
    "overrides": {
        "command": ["python", "-m", "my_trainer", "--epochs", "3"],
        "namespace": "ml-research",
        "service_account": "trainer",
        "runtime": "torch-distributed-custom",
        "nodes": 2,
        "procs_per_node": 2,
        "cpu": "3",
        "memory": "6Gi",
        "max_runtime_s": 600,
    },
}
BUILD = {"PyTorchJob": build_pytorchjob, "TrainJob": build_trainjob}


def spec(case: str) -> TrainingJobSpec:
    return TrainingJobSpec(name=f"fm-{case}", **BASE, **CASES[case])


def pod_of_pytorchjob(obj: dict[str, Any], replica: str = "Master") -> dict[str, Any]:
    return obj["spec"]["pytorchReplicaSpecs"][replica]["template"]["spec"]


def pod_patch_of_trainjob(obj: dict[str, Any]) -> dict[str, Any]:
    patch = obj["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]
    (job,) = patch["replicatedJobs"]
    assert job["name"] == "node"
    return job["template"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("kind", ["PyTorchJob", "TrainJob"])
def test_generated_objects_match_the_crd(
    case: str, kind: str, crds: dict[str, Any], settings: Settings
) -> None:
    obj = BUILD[kind](spec(case), settings)
    assert validate_object(obj, crds[kind]) == []
    assert obj["metadata"]["namespace"] == spec(case).namespace


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("kind", ["PyTorchJob", "TrainJob"])
def test_generated_objects_pass_the_independent_validators(
    case: str, kind: str, independent_crds: dict[str, list[CrdSchema]], settings: Settings
) -> None:
    obj = BUILD[kind](spec(case), settings)
    assert crd_schema_for(independent_crds[kind], obj).errors(obj) == []
    assert core_errors(obj) == []


def _trainjob_env(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["trainer"]["env"]


def _pytorchjob_container(obj: dict[str, Any]) -> dict[str, Any]:
    return pod_of_pytorchjob(obj)["containers"][0]


INDEPENDENT_NEGATIVES: dict[str, tuple[str, Any, str]] = {
    # name: (kind, edit, expected error)
    "unknown field": (
        "TrainJob",
        lambda o: o["spec"]["trainer"].update(podSpecOverrides=[]),
        "spec.trainer: Additional properties are not allowed ('podSpecOverrides' was unexpected)",
    ),
    "wrong type": (
        "PyTorchJob",
        lambda o: o["spec"]["pytorchReplicaSpecs"]["Master"].update(replicas="1"),
        "spec.pytorchReplicaSpecs.Master.replicas: '1' is not of type 'integer'",
    ),
    "pattern": (
        "PyTorchJob",
        lambda o: _pytorchjob_container(o)["resources"]["limits"].update(memory="8 GB"),
        "spec.pytorchReplicaSpecs.Master.template.spec.containers[0].resources.limits.memory: "
        "'8 GB' does not match",
    ),
    "minimum": (
        "TrainJob",
        lambda o: o["spec"]["trainer"].update(numNodes=-1),
        "spec.trainer.numNodes: -1 is less than the minimum of 0",
    ),
    "duplicate env name (list-map)": (
        "TrainJob",
        lambda o: _trainjob_env(o).append({"name": "PYTHONUNBUFFERED", "value": "0"}),
        'spec.trainer.env[2]: Duplicate value: {"name": "PYTHONUNBUFFERED"}',
    ),
    "duplicate container (list-map)": (
        "PyTorchJob",
        lambda o: pod_of_pytorchjob(o)["containers"].append(
            {"name": "pytorch", "image": "busybox"}
        ),
        "spec.pytorchReplicaSpecs.Master.template.spec.containers[1]: "
        'Duplicate value: {"name": "pytorch"}',
    ),
    "label value": (
        "TrainJob",
        lambda o: o["metadata"]["labels"].update(team="a b"),
        "metadata.labels.team: Invalid value: 'a b'",
    ),
    "object name": (
        "PyTorchJob",
        lambda o: o["metadata"].update(name="Fm_1"),
        "metadata.name: Invalid value: 'Fm_1': not a DNS-1123 subdomain",
    ),
    "api version": (
        "TrainJob",
        lambda o: o.update(apiVersion="trainer.kubeflow.org/v1"),
        "apiVersion: expected 'trainer.kubeflow.org/v1alpha1', got 'trainer.kubeflow.org/v1'",
    ),
}


@pytest.mark.parametrize("name", sorted(INDEPENDENT_NEGATIVES))
def test_the_independent_crd_validator_rejects(
    name: str, independent_crds: dict[str, list[CrdSchema]], settings: Settings
) -> None:
    kind, edit, expected = INDEPENDENT_NEGATIVES[name]
    obj = BUILD[kind](spec("gpu"), settings)
    schema = crd_schema_for(independent_crds[kind], obj)
    edit(obj)
    assert any(e.startswith(expected) for e in schema.errors(obj)), schema.errors(obj)


CORE_NEGATIVES: dict[str, tuple[str, Any, str]] = {
    "container field": (
        "PyTorchJob",
        lambda o: _pytorchjob_container(o).update(gpus=1),
        "spec.pytorchReplicaSpecs.Master.template (PodTemplate) template.spec.containers[0]: "
        "Additional properties are not allowed ('gpus' was unexpected)",
    ),
    "env entry": (
        "TrainJob",
        lambda o: _trainjob_env(o).append({"value": "x"}),
        "spec.trainer (Pod) spec.containers[0].env[2]: 'name' is a required property",
    ),
    "pod patch field": (
        "TrainJob",
        lambda o: pod_patch_of_trainjob(o).update(serviceAccount={"name": "training"}),
        "(PodTemplate) template.spec.serviceAccount: {'name': 'training'} is not of type "
        "'string', 'null'",
    ),
}


@pytest.mark.parametrize("name", sorted(CORE_NEGATIVES))
def test_kubernetes_validate_rejects_the_embedded_core_parts(name: str, settings: Settings) -> None:
    kind, edit, expected = CORE_NEGATIVES[name]
    obj = BUILD[kind](spec("gpu"), settings)
    edit(obj)
    errors = core_errors(obj)
    assert len(errors) == 1 and errors[0].endswith(expected), errors


def test_crd_rules_are_all_understood(crds: dict[str, Any]) -> None:
    for crd in crds.values():
        assert crd.unsupported_rules == (), crd.kind


def test_gpu_pytorchjob_placement_and_limits(settings: Settings) -> None:
    obj = build_pytorchjob(spec("multi-node-gpu"), settings)
    assert obj["spec"]["nprocPerNode"] == "8"
    replicas = obj["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1 and replicas["Worker"]["replicas"] == 3
    for name in ("Master", "Worker"):
        pod = pod_of_pytorchjob(obj, name)
        assert pod["serviceAccountName"] == "training"
        assert pod["nodeSelector"] == {"mlops-kit/accelerator": "nvidia-gpu"}
        assert pod["tolerations"] == [
            {
                "key": "nvidia.com/gpu",
                "operator": "Equal",
                "value": "present",
                "effect": "NoSchedule",
            }
        ]
        (container,) = pod["containers"]
        assert container["name"] == "pytorch"
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
        assert container["resources"]["requests"]["nvidia.com/gpu"] == "8"
        assert container["command"][:4] == ["torchrun", "-m", "mlops_kit.training", "train"]
    assert obj["spec"]["runPolicy"]["activeDeadlineSeconds"] == 7200
    assert obj["spec"]["runPolicy"]["backoffLimit"] == 3


def test_cpu_jobs_stay_off_the_gpu_nodes(settings: Settings) -> None:
    pod = pod_of_pytorchjob(build_pytorchjob(spec("cpu"), settings))
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["requests"]
    assert "Worker" not in build_pytorchjob(spec("cpu"), settings)["spec"]["pytorchReplicaSpecs"]


def test_trainjob_fields(settings: Settings) -> None:
    obj = build_trainjob(spec("multi-node-gpu"), settings)
    trainer = obj["spec"]["trainer"]
    assert obj["spec"]["runtimeRef"]["name"] == "torch-distributed"
    assert trainer["numNodes"] == 4 and trainer["numProcPerNode"] == 8
    assert trainer["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "8"
    assert "--data" in trainer["command"] and "s3://models/fm/7" in trainer["command"]
    pod = pod_patch_of_trainjob(obj)
    assert pod["serviceAccountName"] == "training"
    assert pod["nodeSelector"] == {"mlops-kit/accelerator": "nvidia-gpu"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_env_from_secrets_and_uris(settings: Settings) -> None:
    for obj, env, command in (
        (
            o := build_pytorchjob(spec("env-from-secrets"), settings),
            pod_of_pytorchjob(o)["containers"][0]["env"],
            pod_of_pytorchjob(o)["containers"][0]["command"],
        ),
        (
            t := build_trainjob(spec("env-from-secrets"), settings),
            t["spec"]["trainer"]["env"],
            t["spec"]["trainer"]["command"],
        ),
    ):
        by_name = {e["name"]: e for e in env}
        assert by_name["MLFLOW_TRACKING_TOKEN"]["valueFrom"] == {
            "secretKeyRef": {"name": "mlflow-auth", "key": "MLFLOW_TRACKING_TOKEN"}
        }
        assert by_name["WANDB_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "wandb"
        assert by_name["MLFLOW_TRACKING_URI"]["value"].startswith("http://mlflow")
        assert by_name["MLOPS_KIT_AWS__REGION"]["value"] == settings.aws.region
        assert command[command.index("--data") + 1] == BASE["data_uri"]
        assert obj["metadata"]["labels"]["example.com/cost-center"] == "c-42"
    gpu = build_trainjob(spec("gpu"), settings)["spec"]["trainer"]["command"]
    assert "checkpoint_uri=s3://models/fm/7/ckpt" in gpu


def test_validator_is_strict_about_unknown_fields_and_cel(
    crds: dict[str, Any], settings: Settings
) -> None:
    obj = build_trainjob(spec("gpu"), settings)
    obj["spec"]["podTemplateOverrides"] = [{"targetJobs": [{"name": "node"}]}]
    obj["spec"]["trainer"]["numProcPerNode"] = 0
    obj["metadata"]["name"] = "9-starts-with-digit"
    errors = validate_object(obj, crds["TrainJob"])
    assert any("'podTemplateOverrides' was unexpected" in e for e in errors)
    assert any("numProcPerNode must be greater than or equal to 1" in e for e in errors)
    assert any("RFC 1035" in e for e in errors)
    pj = build_pytorchjob(spec("cpu"), settings)
    pod_of_pytorchjob(pj)["containers"][0]["resources"]["limits"]["memory"] = "8 GB"
    pj["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = "1"
    errors = validate_object(pj, crds["PyTorchJob"])
    assert any("replicas: '1' is not of type 'integer'" in e for e in errors)
    assert any("limits.memory" in e for e in errors)


# -- CEL rules and list types of the project's validator -------------------------------------

MANAGED_BY = (
    "ManagedBy must be trainer.kubeflow.org/trainjob-controller or kueue.x-k8s.io/multikueue if set"
)
STORAGE_URI = "storageUri may be empty, or it must be a valid URI (scheme://...)"

#: every CEL rule of the TrainJob CRD that applies to a create, keyed by its text: an edit of
#: a valid TrainJob that breaks that rule alone, and the one error the validator must report
CEL_NEGATIVES: dict[str, tuple[Any, str]] = {
    "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')": (
        lambda o: o["metadata"].update(name="fm.v2"),
        "(root): metadata.name must match RFC 1035 DNS label format",
    ),
    "size(self.metadata.name) <= 63": (
        lambda o: o["metadata"].update(name="f" * 64),
        "(root): metadata.name must be no more than 63 characters",
    ),
    "self >= 1": (
        lambda o: o["spec"]["trainer"].update(numProcPerNode=0),
        "spec.trainer.numProcPerNode: numProcPerNode must be greater than or equal to 1",
    ),
    "self in ['trainer.kubeflow.org/trainjob-controller', 'kueue.x-k8s.io/multikueue']": (
        lambda o: o["spec"].update(managedBy="example.com/controller"),
        f"spec.managedBy: {MANAGED_BY}",
    ),
    "self == '' || self.matches('^[A-Za-z][A-Za-z0-9+.-]*://.+$')": (
        lambda o: o["spec"].update(initializer={"dataset": {"storageUri": "processed/train"}}),
        f"spec.initializer.dataset.storageUri: {STORAGE_URI}",
    ),
    "has(self.lastUpdatedTime)": (
        lambda o: o.update(status={"trainerStatus": {"progressPercentage": 40}}),
        "status.trainerStatus: lastUpdatedTime is required when trainerStatus is present",
    ),
}
#: rules only an update evaluates (``oldSelf``); a create never breaks them
TRANSITION_RULES = {"self == oldSelf"}


def _crd_rules(path: Any) -> set[str]:
    import yaml

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            for rule in node.get("x-kubernetes-validations") or []:
                yield rule["rule"]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    with open(path, encoding="utf-8") as fh:
        return set(walk(yaml.load(fh, Loader=yaml.CSafeLoader)))


def test_every_cel_rule_of_the_crds_has_a_negative_case(crds: dict[str, Any]) -> None:
    from tests.launchers.conftest import PYTORCHJOB_CRD, TRAINJOB_CRD

    assert _crd_rules(TRAINJOB_CRD) - TRANSITION_RULES == set(CEL_NEGATIVES)
    assert _crd_rules(PYTORCHJOB_CRD) - TRANSITION_RULES == set()


@pytest.mark.parametrize("rule", sorted(CEL_NEGATIVES))
def test_an_object_breaking_one_cel_rule_is_rejected_naming_it(
    rule: str, crds: dict[str, Any], settings: Settings
) -> None:
    edit, expected = CEL_NEGATIVES[rule]
    obj = build_trainjob(spec("gpu"), settings)
    assert validate_object(obj, crds["TrainJob"]) == []
    edit(obj)
    assert validate_object(obj, crds["TrainJob"]) == [expected]


def _widget_crd(rule: str, message: str | None = "") -> Any:
    """A minimal CRD whose ``spec`` carries one CEL rule (and list types)."""
    validation: dict[str, str] = {"rule": rule}
    if message:
        validation["message"] = message
    return crd_from_manifest(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "spec": {
                "group": "example.com",
                "names": {"kind": "Widget", "plural": "widgets"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "apiVersion": {"type": "string"},
                                    "kind": {"type": "string"},
                                    "metadata": {"type": "object"},
                                    "spec": {
                                        "type": "object",
                                        "properties": {
                                            "n": {"type": "integer"},
                                            "s": {"type": "string"},
                                            "tags": {
                                                "type": "array",
                                                "items": {"type": "string"},
                                                "x-kubernetes-list-type": "set",
                                            },
                                            "ports": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "properties": {
                                                        "port": {"type": "integer"},
                                                        "protocol": {
                                                            "type": "string",
                                                            "default": "TCP",
                                                        },
                                                    },
                                                },
                                                "x-kubernetes-list-type": "map",
                                                "x-kubernetes-list-map-keys": ["port", "protocol"],
                                            },
                                        },
                                        "x-kubernetes-validations": [validation],
                                    },
                                },
                            }
                        },
                    }
                ],
            },
        }
    )


def _widget(**spec_fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": spec_fields,
    }


@pytest.mark.parametrize(
    ("rule", "good", "bad"),
    [
        ("self.n <= 3", {"n": 3}, {"n": 4}),
        ("self.n < 3", {"n": 2}, {"n": 3}),
        ("self.n >= -1", {"n": -1}, {"n": -2}),
        ("self.n > 3", {"n": 4}, {"n": 3}),
        ("self.n == 3", {"n": 3}, {"n": 2}),
        ("size(self.s) <= 2", {"s": "ab"}, {"s": "abc"}),
        ("size(self.s) < 2", {"s": "a"}, {"s": "ab"}),
        ("size(self.tags) >= 1", {"tags": ["a"]}, {"tags": []}),
        ("size(self.tags) > 1", {"tags": ["a", "b"]}, {"tags": ["a"]}),
        ("size(self.s) == 2", {"s": "ab"}, {"s": "a"}),
        ("self.s in ['a', 'b']", {"s": "b"}, {"s": "c"}),
        ("self.s.matches('^[a-z]+$')", {"s": "abc"}, {"s": "ab1"}),
        # a CEL string literal: '\\d' is the regex \d
        ("self.s.matches('^\\\\d+\\\\.\\\\d+$')", {"s": "1.5"}, {"s": "1x5"}),
        ("has(self.s)", {"s": ""}, {"n": 1}),
    ],
)
def test_each_supported_cel_form_and_operator(rule: str, good: Any, bad: Any) -> None:
    crd = _widget_crd(rule)
    assert crd.unsupported_rules == ()
    assert validate_object(_widget(**good), crd) == []
    assert validate_object(_widget(**bad), crd) == [f"spec: failed rule: {rule}"]
    assert validate_object(_widget(**bad), _widget_crd(rule, "spec.x: broken")) == [
        "spec: spec.x: broken"
    ]


def test_wrongly_typed_values_fail_their_rules_instead_of_crashing(
    crds: dict[str, Any], settings: Settings
) -> None:
    obj = build_trainjob(spec("gpu"), settings)
    obj["spec"]["trainer"]["numProcPerNode"] = "auto"
    obj["spec"]["managedBy"] = {"name": "trainer"}
    errors = validate_object(obj, crds["TrainJob"])
    assert "spec.trainer.numProcPerNode: 'auto' is not of type 'integer'" in errors
    assert (
        "spec.trainer.numProcPerNode: numProcPerNode must be greater than or equal to 1" in errors
    )
    assert f"spec.managedBy: {MANAGED_BY}" in errors
    obj = build_trainjob(spec("gpu"), settings)
    obj["metadata"]["name"] = 7
    assert validate_object(obj, crds["TrainJob"]) == [
        "(root): metadata.name must match RFC 1035 DNS label format",
        "(root): metadata.name must be no more than 63 characters",
    ]
    assert validate_object(_widget(s=5), _widget_crd("size(self.s) <= 2"))[-1] == (
        "spec: failed rule: size(self.s) <= 2"
    )


def test_list_types_reject_duplicates(crds: dict[str, Any], settings: Settings) -> None:
    tj = build_trainjob(spec("env-from-secrets"), settings)
    tj["spec"]["trainer"]["env"].append({"name": "WANDB_API_KEY", "value": "inline"})
    last = len(tj["spec"]["trainer"]["env"]) - 1
    assert validate_object(tj, crds["TrainJob"]) == [
        f'spec.trainer.env[{last}]: Duplicate value: {{"name": "WANDB_API_KEY"}}'
    ]
    pj = build_pytorchjob(spec("cpu"), settings)
    mounts = pod_of_pytorchjob(pj)["containers"][0]["volumeMounts"]
    mounts.append({"name": "scratch", "mountPath": "/dev/shm"})
    assert validate_object(pj, crds["PyTorchJob"]) == [
        "spec.pytorchReplicaSpecs.Master.template.spec.containers[0].volumeMounts[1]: "
        'Duplicate value: {"mountPath": "/dev/shm"}'
    ]
    crd = _widget_crd("has(self.tags)")
    assert validate_object(_widget(tags=["a", "b"]), crd) == []
    assert validate_object(_widget(tags=["a", "b", "a"]), crd) == [
        'spec.tags[2]: Duplicate value: "a"'
    ]
    ports = [{"port": 80}, {"port": 80, "protocol": "UDP"}]
    assert validate_object(_widget(tags=[], ports=ports), crd) == []
    ports.append({"port": 80, "protocol": "TCP"})
    assert validate_object(_widget(tags=[], ports=ports), crd) == [
        'spec.ports[2]: Duplicate value: {"port": 80, "protocol": "TCP"}'
    ]


def test_the_independent_validator_applies_nullable(tmp_path: Any) -> None:
    import yaml

    from tests.launchers.independent import load_crd_schemas

    manifest = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets"},
            "versions": [
                {"name": "v1alpha1", "served": False, "storage": False, "schema": {}},
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "owner": {"type": "string", "nullable": True},
                                        "mode": {"type": "string", "enum": ["a"], "nullable": True},
                                        "size": {"type": "integer"},
                                    },
                                },
                            },
                        }
                    },
                },
            ],
        },
    }
    path = tmp_path / "widgets.yaml"
    path.write_text(yaml.safe_dump(manifest))
    (schema,) = load_crd_schemas(path)
    assert schema.api_version == "example.com/v1"
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert schema.errors({**widget, "spec": {"owner": None, "mode": None}}) == []
    assert schema.errors({**widget, "spec": {"size": None}}) == [
        "spec.size: None is not of type 'integer'"
    ]
    assert schema.errors({**widget, "spec": {"mode": "b"}}) == [
        "spec.mode: 'b' is not one of ['a', None]"
    ]


@pytest.mark.parametrize("kind", ["PyTorchJob", "TrainJob"])
def test_env_names_are_unique(
    kind: str, independent_crds: dict[str, list[CrdSchema]], settings: Settings
) -> None:
    """A user value overrides a default once; a name given twice is refused by name."""
    job = TrainingJobSpec(name="fm-env", **BASE, env={"PYTHONUNBUFFERED": "0"})
    obj = BUILD[kind](job, settings)
    env = _trainjob_env(obj) if kind == "TrainJob" else _pytorchjob_container(obj)["env"]
    names = [e["name"] for e in env]
    assert names.count("PYTHONUNBUFFERED") == 1
    assert {e["name"]: e.get("value") for e in env}["PYTHONUNBUFFERED"] == "0"
    assert crd_schema_for(independent_crds[kind], obj).errors(obj) == []
    twice = TrainingJobSpec(
        name="fm-env", **BASE, env_from_secrets={"a": ["TOKEN"], "b": ["TOKEN"]}
    )
    with pytest.raises(ConfigError, match=r"env_from_secrets\.b: 'TOKEN' is already set"):
        BUILD[kind](twice, settings)

"""The training pipeline: features_training_set -> train -> export_onnx -> evaluate ->
register -> conditional promotion.

The ONNX model is scored on the time-split validation rows of the training set
(``evaluate_model``), registered as a new version (``register_model``) and, when the
policy's own gates held on that evaluation (``passed == "true"``), promoted to
``promote_target`` (``challenger`` by default) by ``promote_model``, which compares it
with the champion on the same rows and records the decision. Promotion to ``champion``
needs a recorded approval when the policy says so: ``mlops-kit model approve`` then
``mlops-kit model promote NAME challenger``.

Two variants, chosen at compile time (a pipeline parameter cannot add or remove a
node selector or a toleration):

* ``training_pipeline`` (``pipelines/training.yaml``): the train task runs on the
  ordinary CPU node groups.
* ``training_gpu_pipeline`` (``pipelines/training_gpu.yaml``): the train task asks for
  one NVIDIA GPU and is placed on the GPU node group (node selector
  ``mlops-kit/accelerator=nvidia-gpu``, toleration of ``nvidia.com/gpu=present:NoSchedule``,
  the defaults of ``cluster.gpu_node_label`` / ``cluster.gpu_taint``).

Both expose the MLflow credentials of the Kubernetes secret :data:`TRACKING_SECRET` as
environment variables of the train and export tasks (optional: a missing secret or key
leaves the variable unset). Kubeflow Pipelines v2 sets the service account per run, not
per task: submit with ``service_account=SERVICE_ACCOUNT`` (the IRSA account bound to the
training role) so the tasks reach S3 and the feature store.

Caching is off on every task: the steps read the feature store and write MLflow runs, so
the same arguments do not give the same result.
"""

from typing import Any, List, NamedTuple

from mlops_kit._lazy import require
from mlops_kit.components._kfp import Dataset, Metrics, dsl
from mlops_kit.components.features import features_training_set
from mlops_kit.components.registry import evaluate_model, promote_model, register_model
from mlops_kit.components.training import export_onnx, train
from mlops_kit.config import ClusterSettings

kubernetes = require("kfp.kubernetes", "setting Kubernetes options on pipeline tasks")

PIPELINE_NAME = "mlops-kit-training"
GPU_PIPELINE_NAME = "mlops-kit-training-gpu"
SERVICE_ACCOUNT = "training"
"""The IRSA service account to submit training runs with (see the module docstring)."""
TRACKING_SECRET = "mlflow-tracking"
"""Kubernetes secret whose keys become environment variables of train and export."""
TRACKING_SECRET_KEYS = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
)
GPU_RESOURCE = "nvidia.com/gpu"


def _label(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    return key, value


def _taint(text: str) -> tuple[str, str, str]:
    key_value, _, effect = text.partition(":")
    key, _, value = key_value.partition("=")
    return key, value, effect


GPU_NODE_LABEL = _label(ClusterSettings.model_fields["gpu_node_label"].default)
"""``(key, value)`` of the GPU node group's label."""
GPU_TAINT = _taint(ClusterSettings.model_fields["gpu_taint"].default)
"""``(key, value, effect)`` of the GPU node group's taint."""


class TrainingOutputs(NamedTuple):
    """The pipeline's outputs."""

    training_set: Dataset
    model: dsl.Model
    train_metrics: Metrics
    onnx_model: dsl.Model
    export_metrics: Metrics
    evaluation_metrics: dsl.ClassificationMetrics
    evaluation_scores: Metrics


def _tracking_env(task: Any) -> None:
    kubernetes.use_secret_as_env(
        task,
        secret_name=TRACKING_SECRET,
        secret_key_to_env={key: key for key in TRACKING_SECRET_KEYS},
        optional=True,
    )


def _on_gpu(task: Any) -> None:
    task.set_accelerator_type(GPU_RESOURCE).set_accelerator_limit(1)
    kubernetes.add_node_selector(task, *GPU_NODE_LABEL)
    key, value, effect = GPU_TAINT
    kubernetes.add_toleration(
        task,
        key=key,
        operator="Equal",
        value=value,
        effect=effect,
    )


def make_training_pipeline(gpu: bool = False) -> Any:
    """Build the training pipeline; ``gpu`` puts the train task on a GPU node.

    Args:
        gpu: request one NVIDIA GPU and the GPU node group for the train task.
    """

    @dsl.pipeline(
        name=GPU_PIPELINE_NAME if gpu else PIPELINE_NAME,
        description=(
            "Build a point-in-time training set from the feature store, train the failure "
            "model"
            + (" on a GPU node" if gpu else "")
            + ", export it to ONNX behind the parity gate, track the run in MLflow, "
            "evaluate, register and conditionally promote the model."
        ),
    )
    def training_pipeline(
        settings_json: str = "{}",
        features: List[str] = [],
        missing: str = "",
        label_column: str = "failure",
        config_json: str = "{}",
        experiment: str = "",
        exporter: str = "dynamo",
        atol: float = 1e-5,
        model_name: str = "",
        policy_json: str = "{}",
        promote_target: str = "challenger",
    ) -> TrainingOutputs:
        """features_training_set -> train -> export_onnx -> evaluate -> register -> promote.

        Args:
            settings_json: JSON object of mlops_kit settings overrides passed to every step
                ("{}": the pods' MLOPS_KIT_* environment and config file).
            features: feature references ([]: the feature service).
            missing: keep or drop label rows without features ("": features.missing).
            label_column: the label column of the training set.
            config_json: JSON object of TrainConfig fields, e.g. '{"epochs": 10}'.
            experiment: MLflow experiment ("": MLFLOW_EXPERIMENT_NAME or mlops-kit).
            exporter: ONNX exporter, dynamo or torchscript.
            atol: absolute tolerance of the ONNX parity gate.
            model_name: registered model ("": registry.model_name).
            policy_json: promotion policy as JSON ("{}": registry.policy or the defaults).
            promote_target: alias promote_model moves when the gates hold (challenger or
                champion).
        """
        training_set = features_training_set(
            features=features, missing=missing, settings_json=settings_json
        ).set_display_name("training set")
        trained = train(
            training_set=training_set.outputs["training_set"],
            config_json=config_json,
            label_column=label_column,
            experiment=experiment,
            settings_json=settings_json,
        ).set_display_name("train (GPU)" if gpu else "train")
        exported = export_onnx(
            model=trained.outputs["model"],
            exporter=exporter,
            atol=atol,
            experiment=experiment,
            settings_json=settings_json,
        ).set_display_name("export ONNX + parity")
        evaluated = evaluate_model(
            onnx_model=exported.outputs["onnx_model"],
            evaluation=training_set.outputs["training_set"],
            policy_json=policy_json,
            label_column=label_column,
            split="validation",
            settings_json=settings_json,
        ).set_display_name("evaluate")
        registered = register_model(
            onnx_model=exported.outputs["onnx_model"],
            model_name=model_name,
            settings_json=settings_json,
        ).set_display_name("register")
        registered.after(evaluated)
        tasks = [training_set, trained, exported, evaluated, registered]
        with dsl.If(evaluated.outputs["passed"] == "true", name="gates-passed"):
            promoted = promote_model(
                evaluation=training_set.outputs["training_set"],
                version=registered.outputs["version"],
                model_name=model_name,
                target=promote_target,
                policy_json=policy_json,
                label_column=label_column,
                split="validation",
                why="training pipeline",
                settings_json=settings_json,
            ).set_display_name("promote")
            tasks.append(promoted)
        for task in tasks:
            task.set_caching_options(False)
        for task in (trained, exported, registered, promoted):
            _tracking_env(task)
        if gpu:
            _on_gpu(trained)
        return TrainingOutputs(
            training_set=training_set.outputs["training_set"],
            model=trained.outputs["model"],
            train_metrics=trained.outputs["metrics"],
            onnx_model=exported.outputs["onnx_model"],
            export_metrics=exported.outputs["metrics"],
            evaluation_metrics=evaluated.outputs["metrics"],
            evaluation_scores=evaluated.outputs["scores"],
        )

    return training_pipeline


training_pipeline = make_training_pipeline(gpu=False)
"""features_training_set -> train -> export_onnx -> evaluate -> register -> promote, on CPU."""
training_gpu_pipeline = make_training_pipeline(gpu=True)
"""The same with the train task on a GPU node."""

__all__ = [
    "GPU_NODE_LABEL",
    "GPU_PIPELINE_NAME",
    "GPU_TAINT",
    "PIPELINE_NAME",
    "SERVICE_ACCOUNT",
    "TRACKING_SECRET",
    "TRACKING_SECRET_KEYS",
    "TrainingOutputs",
    "make_training_pipeline",
    "training_gpu_pipeline",
    "training_pipeline",
]

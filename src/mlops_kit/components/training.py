"""Training components: train (in the pipeline's pod), launch_eks, launch_sagemaker, export_onnx.

Each component is an interface only: its body calls one function of
:mod:`mlops_kit.components.runtime.training`, which calls :mod:`mlops_kit.training`,
:mod:`mlops_kit.training.launchers` and :mod:`mlops_kit.tracking`. A model travels as a
Model folder (the model bundle: ``model.pt``, ``preprocess.json``, ``metrics.json``,
``config.json``, ``holdout.parquet``, ``tracking.json``, ``lineage.json``); the ONNX model
as a Model folder with ``model.onnx``, ``parity.json`` and ``preprocess.json``.
"""

from mlops_kit.components._kfp import Dataset, Input, Metrics, Output, dsl
from mlops_kit.components.image import IMAGE

Model = dsl.Model


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train(
    training_set: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    config_json: str = "{}",
    label_column: str = "",
    experiment: str = "",
    tracking_uri: str = "",
    track: bool = True,
    settings_json: str = "{}",
):
    """Train the failure model in this pod and log the run to MLflow.

    Args:
        training_set: a training-set folder (data.parquet + manifest.json, from
            features_training_set) or a training table (Parquet).
        model: the model bundle (no ONNX: export_onnx does that); metadata: val_roc_auc,
            val_pr_auc, val_f1, val_loss, best_epoch, epochs_run, device, lineage,
            mlflow_run_id, mlflow_experiment, mlflow_tracking_uri.
        metrics: val_roc_auc, val_pr_auc, val_f1, val_loss, val_positive_rate, val_n,
            best_epoch, epochs_run.
        config_json: JSON object of TrainConfig fields, e.g. '{"epochs": 10}'.
        label_column: the label column ("": the config's; the feature store's labels
            from the readings call it failure).
        experiment: MLflow experiment ("": MLFLOW_EXPERIMENT_NAME or mlops-kit).
        tracking_uri: MLflow tracking URI ("": MLFLOW_TRACKING_URI, or the local
            profile's SQLite store).
        track: log params, per-epoch metrics, weights and lineage tags to MLflow.
        settings_json: JSON object of mlops_kit settings overrides ("{}": the pod's
            MLOPS_KIT_* environment and config file).
    """
    from mlops_kit.components.runtime.training import train_step

    train_step(
        training_set,
        model,
        metrics,
        config_json,
        label_column,
        experiment,
        tracking_uri,
        track,
        settings_json,
    )


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def launch_eks(
    training_set: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    name: str = "",
    config_json: str = "{}",
    label_column: str = "",
    output_uri: str = "",
    image: str = "",
    nodes: int = 1,
    gpus_per_node: int = 0,
    procs_per_node: int = 0,
    cpu: str = "2",
    memory: str = "8Gi",
    secrets_json: str = "{}",
    service_account: str = "training",
    namespace: str = "data-pipeline",
    max_runtime_s: int = 0,
    timeout_s: int = 0,
    poll_s: float = 30.0,
    experiment: str = "",
    tracking_uri: str = "",
    track: bool = True,
    settings_json: str = "{}",
):
    """Train as a PyTorchJob on EKS, wait for it, and bring its model bundle back.

    Args:
        training_set: the training set; the job reads it from its s3:// URI.
        model: the model bundle copied from output_uri; metadata as for train, plus
            backend, job_name, job_kind, job_uid, job_phase, bundle_uri.
        metrics: as for train.
        name: job name ("": failure-mlp-<random>).
        config_json: JSON object of TrainConfig fields.
        label_column: the label column ("": the config's).
        output_uri: where the job writes the bundle ("": <storage.models_uri>/<name>).
        image: training image ("": images.training tagged with the version).
        nodes: pods (more than one: multi-node DDP).
        gpus_per_node: GPUs per pod (0: a CPU job; >0: the GPU node group).
        procs_per_node: processes per pod on CPU (0: one).
        cpu: CPU request per pod.
        memory: memory request and limit per pod.
        secrets_json: JSON object, Kubernetes secret -> keys exposed as environment
            variables, e.g. '{"mlflow-tracking": ["MLFLOW_TRACKING_URI"]}'.
        service_account: the IRSA service account of the job's pods.
        namespace: namespace of the job.
        max_runtime_s: the job's activeDeadlineSeconds (0: none).
        timeout_s: fail the task after waiting this long (0: wait for ever).
        poll_s: seconds between status polls.
        experiment: MLflow experiment.
        tracking_uri: MLflow tracking URI ("": MLFLOW_TRACKING_URI).
        track: log the run (from the bundle) to MLflow, tagged launcher=eks.
        settings_json: JSON object of mlops_kit settings overrides.
    """
    from mlops_kit.components.runtime.training import launch_eks_step

    launch_eks_step(
        training_set,
        model,
        metrics,
        name,
        config_json,
        label_column,
        output_uri,
        image,
        nodes,
        gpus_per_node,
        procs_per_node,
        cpu,
        memory,
        secrets_json,
        service_account,
        namespace,
        max_runtime_s,
        timeout_s,
        poll_s,
        experiment,
        tracking_uri,
        track,
        settings_json,
    )


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def launch_sagemaker(
    training_set: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    name: str = "",
    config_json: str = "{}",
    label_column: str = "",
    output_uri: str = "",
    image: str = "",
    instance_type: str = "",
    instance_count: int = 1,
    gpus_per_node: int = 0,
    volume_size_gb: int = 50,
    max_runtime_s: int = 0,
    timeout_s: int = 0,
    poll_s: float = 30.0,
    experiment: str = "",
    tracking_uri: str = "",
    track: bool = True,
    settings_json: str = "{}",
):
    """Train as a SageMaker training job, wait for it, and bring its model bundle back.

    Args:
        training_set: the training set; the job reads it from its s3:// URI.
        model: the model bundle copied from output_uri; metadata as for train, plus
            backend, job_name, job_kind, job_uid, job_phase, bundle_uri.
        metrics: as for train.
        name: job name ("": failure-mlp-<random>; SageMaker appends a timestamp).
        config_json: JSON object of TrainConfig fields.
        label_column: the label column ("": the config's).
        output_uri: s3:// URI the job writes the bundle to ("": <storage.models_uri>/<name>).
        image: training image in ECR ("": images.training tagged with the version).
        instance_type: e.g. ml.g5.xlarge ("": chosen by accelerator).
        instance_count: instances (more than one: multi-node DDP).
        gpus_per_node: GPUs per instance the job uses (0: a CPU job).
        volume_size_gb: ML storage volume per instance.
        max_runtime_s: the job's stopping condition (0: SageMaker's default).
        timeout_s: fail the task after waiting this long (0: wait for ever).
        poll_s: seconds between status polls.
        experiment: MLflow experiment.
        tracking_uri: MLflow tracking URI ("": MLFLOW_TRACKING_URI).
        track: log the run (from the bundle) to MLflow, tagged launcher=sagemaker.
        settings_json: JSON object of mlops_kit settings overrides.
    """
    from mlops_kit.components.runtime.training import launch_sagemaker_step

    launch_sagemaker_step(
        training_set,
        model,
        metrics,
        name,
        config_json,
        label_column,
        output_uri,
        image,
        instance_type,
        instance_count,
        gpus_per_node,
        volume_size_gb,
        max_runtime_s,
        timeout_s,
        poll_s,
        experiment,
        tracking_uri,
        track,
        settings_json,
    )


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def export_onnx(
    model: Input[Model],
    onnx_model: Output[Model],
    metrics: Output[Metrics],
    validation: Input[Dataset] = None,
    atol: float = 1e-5,
    rtol: float = 0.0,
    opset: int = 0,
    exporter: str = "dynamo",
    parity_rows: int = 256,
    experiment: str = "",
    tracking_uri: str = "",
    track: bool = True,
    settings_json: str = "{}",
):
    """Export the model to ONNX behind the parity gate; fail the task when parity fails.

    Args:
        model: the model bundle of train, launch_eks or launch_sagemaker.
        onnx_model: folder with model.onnx, parity.json and preprocess.json; metadata:
            parity_passed, max_abs_diff, max_rel_diff, where, atol, rtol, rows, opset,
            providers, exporter, sha256, feature_names, mlflow_run_id, mlflow_model_uri.
        metrics: parity_passed, max_abs_diff, max_rel_diff, rows.
        validation: a training set or table whose time-split validation rows feed the
            gate (default: the bundle's held-out rows).
        atol: absolute tolerance of the gate.
        rtol: relative tolerance of the gate.
        opset: ONNX opset (0: mlops_kit's pinned opset).
        exporter: dynamo (torch.export) or torchscript.
        parity_rows: held-out rows compared.
        experiment: MLflow experiment of a new run ("": the bundle's).
        tracking_uri: MLflow tracking URI ("": MLFLOW_TRACKING_URI, or the local
            profile's SQLite store).
        track: log the ONNX model (signature, input example) and the parity figures to
            the bundle's MLflow run.
        settings_json: JSON object of mlops_kit settings overrides.
    """
    from mlops_kit.components.runtime.training import export_onnx_step

    export_onnx_step(
        model,
        onnx_model,
        metrics,
        validation,
        atol,
        rtol,
        opset,
        exporter,
        parity_rows,
        experiment,
        tracking_uri,
        track,
        settings_json,
    )

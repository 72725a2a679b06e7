"""Registry components: evaluate_model, register_model, promote_model.

Each component is an interface only: its body calls one function of
:mod:`mlops_kit.components.runtime.registry`, which calls :mod:`mlops_kit.registry`. The
ONNX model travels as the Model folder of ``export_onnx`` (``model.onnx``,
``preprocess.json``, ``parity.json``; metadata ``mlflow_run_id``). Decisions come out as
string parameters (``passed``, ``version``, ``decision``, ``reasons``), so a pipeline can
branch on them with ``dsl.If``.
"""

from mlops_kit.components._kfp import Dataset, Input, Metrics, Output, dsl
from mlops_kit.components.image import IMAGE

Model = dsl.Model
ClassificationMetrics = dsl.ClassificationMetrics


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate_model(
    onnx_model: Input[Model],
    evaluation: Input[Dataset],
    metrics: Output[ClassificationMetrics],
    scores: Output[Metrics],
    passed: dsl.OutputPath(str),
    policy_json: str = "{}",
    label_column: str = "",
    split: str = "",
    settings_json: str = "{}",
):
    """Score the ONNX model on the evaluation set and check the policy's own gates.

    Args:
        onnx_model: the ONNX folder of export_onnx.
        evaluation: the evaluation set: a training set or table (Parquet).
        metrics: ROC curve and confusion matrix at the policy's threshold.
        scores: roc_auc, pr_auc, f1, positive_rate, n, latency_p50_ms, latency_p99_ms.
        passed: "true" when the thresholds, the parity gate and the latency budget hold
            (the champion comparison and the approval are promote_model's).
        policy_json: promotion policy fields as JSON or YAML text ("{}": the
            registry.policy setting's file, else the defaults).
        label_column: label column of the evaluation set ("": the policy's).
        split: all or validation (the time-split validation rows; "": the policy's).
        settings_json: JSON object of mlops_kit settings overrides.
    """
    from mlops_kit.components.runtime.registry import evaluate_model_step

    evaluate_model_step(
        onnx_model,
        evaluation,
        metrics,
        scores,
        passed,
        policy_json,
        label_column,
        split,
        settings_json,
    )


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def register_model(
    onnx_model: Input[Model],
    version: dsl.OutputPath(str),
    model_name: str = "",
    run_id: str = "",
    quality_report: str = "",
    tracking_uri: str = "",
    settings_json: str = "{}",
):
    """Register the run's ONNX model as a new version of the registered model.

    Args:
        onnx_model: the ONNX folder of export_onnx (its metadata names the MLflow run).
        version: the new version number.
        model_name: registered model ("": registry.model_name).
        run_id: the MLflow run ("": the onnx_model's mlflow_run_id).
        quality_report: the training data's quality.json ("": the run's tag, else the
            latest report under storage.reports_uri).
        tracking_uri: MLflow tracking URI ("": MLFLOW_TRACKING_URI or the local store).
        settings_json: JSON object of mlops_kit settings overrides.
    """
    from mlops_kit.components.runtime.registry import register_model_step

    register_model_step(
        onnx_model,
        version,
        model_name,
        run_id,
        quality_report,
        tracking_uri,
        settings_json,
    )


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def promote_model(
    evaluation: Input[Dataset],
    report: Output[Metrics],
    decision: dsl.OutputPath(str),
    reasons: dsl.OutputPath(str),
    version: str,
    model_name: str = "",
    target: str = "challenger",
    policy_json: str = "{}",
    label_column: str = "",
    split: str = "",
    who: str = "pipeline",
    why: str = "",
    tracking_uri: str = "",
    settings_json: str = "{}",
):
    """Evaluate the promotion policy and move the alias, or refuse (the task succeeds).

    Args:
        evaluation: the fixed evaluation set (the champion is scored on the same rows).
        report: every check as a metric (1 passed, 0 failed) plus the figures.
        decision: "accepted" or "refused".
        reasons: JSON list of the failed checks with their figures.
        version: version number or alias to promote.
        model_name: registered model ("": registry.model_name).
        target: challenger or champion.
        policy_json: promotion policy fields as JSON or YAML text ("{}": the setting's).
        label_column: label column of the evaluation set ("": the policy's).
        split: all or validation ("": the policy's).
        who: recorded with the decision.
        why: recorded with the decision.
        tracking_uri: MLflow tracking URI ("": MLFLOW_TRACKING_URI or the local store).
        settings_json: JSON object of mlops_kit settings overrides.
    """
    from mlops_kit.components.runtime.registry import promote_model_step

    promote_model_step(
        evaluation,
        report,
        decision,
        reasons,
        version,
        model_name,
        target,
        policy_json,
        label_column,
        split,
        who,
        why,
        tracking_uri,
        settings_json,
    )

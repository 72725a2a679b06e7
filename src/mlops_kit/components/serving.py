"""Serving component: serve_rollout.

An interface only: its body calls :func:`mlops_kit.components.runtime.serving.serve_rollout_step`,
which drives :class:`mlops_kit.serving.rollout.RolloutController` against the Ray Serve
application the settings name (``serving.ray_address``). The outcome comes out as the
``status`` string (``promoted`` or ``rolled_back``), so a pipeline can branch on it with
``dsl.If``; a rollback is an outcome, not a failed task.
"""

from mlops_kit.components._kfp import Metrics, Output, dsl
from mlops_kit.components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def serve_rollout(
    report: Output[Metrics],
    status: dsl.OutputPath(str),
    version: str,
    model_name: str = "",
    fault_rate: float = 0.0,
    who: str = "pipeline",
    why: str = "",
    settings_json: str = "{}",
):
    """Roll a registered version out as the canary, 10% -> 50% -> 100% (serving.rollout).

    Args:
        report: each judged window as metrics (step, outcome, error rates, p99), the
            final state in the metadata.
        status: "promoted" (the version is champion and stable) or "rolled_back".
        version: the registered version to roll out (a number or an alias).
        model_name: registered model ("": registry.model_name).
        fault_rate: share of the canary's requests failed on purpose (a rehearsal).
        who: recorded in the registry's audit log.
        why: recorded.
        settings_json: JSON object of mlops_kit settings overrides.
    """
    from mlops_kit.components.runtime.serving import serve_rollout_step

    serve_rollout_step(report, status, version, model_name, fault_rate, who, why, settings_json)

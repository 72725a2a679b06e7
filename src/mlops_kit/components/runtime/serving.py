"""What the serving component runs: serve_rollout (no kfp import).

Like :mod:`mlops_kit.components.runtime`: an artifact is anything with a ``path`` and a
``metadata`` dict; a metrics artifact also has ``log_metric``. An output parameter
(``dsl.OutputPath(str)``) arrives as the path of a file to write.
"""

from __future__ import annotations

import os
from typing import Any

from mlops_kit.components.runtime import MetricsLike, settings_from_json


def serve_rollout_step(
    report: MetricsLike,
    status: str,
    version: str,
    model_name: str = "",
    fault_rate: float = 0.0,
    who: str = "pipeline",
    why: str = "",
    settings_json: str = "{}",
) -> dict[str, Any]:
    """Start a rollout of ``version`` and drive it to its end; write ``status``.

    Args:
        report: output; per judged window ``window<i>_pass`` (1/0) and the canary's error
            rate, the final state in the metadata.
        status: output parameter path; ``promoted`` or ``rolled_back``.
        version: registered version (or alias) to roll out.
        model_name: registered model ("": ``registry.model_name``).
        fault_rate: the canary's injected failure share (0 but in a rehearsal).
        who: recorded.
        why: recorded.
        settings_json: settings overrides.

    Returns:
        The final rollout state as a dict.
    """
    from mlops_kit.serving import ray_app
    from mlops_kit.serving.rollout import RolloutController

    settings = settings_from_json(settings_json)
    ray_app.connect(settings)
    controller = RolloutController(settings, model=model_name or None)
    controller.start(version, fault_rate=fault_rate, who=who, why=why)
    state = controller.run()
    for i, window in enumerate(state.history):
        report.log_metric(f"window{i}_step", float(window["step"]))
        report.log_metric(f"window{i}_pass", 1.0 if window["outcome"] == "pass" else 0.0)
        canary = (window.get("figures") or {}).get("canary") or {}
        if "error_rate" in canary:
            report.log_metric(f"window{i}_canary_error_rate", float(canary["error_rate"]))
    report.metadata.update(
        {"status": state.status, "reason": state.reason, "rollout": state.id,
         "stable": state.stable, "canary": state.canary}
    )  # fmt: skip
    folder = os.path.dirname(status)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(status, "w", encoding="utf-8") as fh:
        fh.write(state.status)
    return state.to_dict()

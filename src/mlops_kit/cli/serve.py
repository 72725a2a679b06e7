"""``mlops-kit serve``: the champion in process, or on Ray Serve with canary rollouts.

* ``serve local``: one process (uvicorn), the alias's model, POST /predict and /v2.
* ``serve up``: the Ray Serve application (stable = the champion) on the cluster of
  ``serving.ray_address``, else on this machine's (started when there is none).
* ``serve rollout VERSION``: roll a version out 10% -> 50% -> 100% (``serving.rollout``),
  judged at each step against the stable; rolled back on a breach. ``--resume`` drives a
  rollout another controller left.
* ``serve status``, ``serve rollback --why``, ``serve down [--stop-ray]``.

Ray is imported only inside the commands, so ``mlops-kit --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from mlops_kit.cli._common import HomeOpt, console, load_cli_settings

serve_app = typer.Typer(
    help=(
        "Serve a registry alias's model: in process (local), or on Ray Serve (up, rollout, "
        "status, rollback, down) with canary rollouts and automatic rollback."
    ),
    no_args_is_help=True,
)


@serve_app.command("local")
def local_cmd(
    home: Path | None = HomeOpt,
    model: str | None = typer.Option(None, help="Registered model (default: the settings')."),
    alias: str = typer.Option("champion", help="The alias to serve."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
) -> None:
    """Serve a registry alias's model in this process (uvicorn).

    Routes: POST /predict and the Open Inference Protocol (/v2/health/ready,
    /v2/models/<name>/infer); see docs/serving.md.
    """
    from mlops_kit._lazy import require
    from mlops_kit.serving import InferenceService, create_app

    uvicorn = require("uvicorn", "serving over HTTP")
    service = InferenceService(load_cli_settings(home), model=model, alias=alias)
    service.warm_up()
    console.print(
        f"serving {service.name} v{service.model.version} ({alias}) on http://{host}:{port}"
    )
    uvicorn.run(create_app(service), host=host, port=port, log_level="warning")


@serve_app.command("up")
def up_cmd(
    home: Path | None = HomeOpt,
    stable: str | None = typer.Option(
        None, help="Version the stable serves (default: the one serving.alias points to)."
    ),
) -> None:
    """Deploy the Ray Serve application (ingress, stable, canary) and wait until it runs.

    Without serving.ray_address it uses this machine's Ray cluster, starting one that
    outlives the command when there is none ('serve down --stop-ray' stops it). Run it
    again after the alias moved: the replicas switch versions in place.
    """
    from mlops_kit._lazy import require

    require("ray.serve", "serving with Ray Serve")
    from mlops_kit.serving import ray_app

    settings = load_cli_settings(home)
    ray_app.connect(settings, start=True)
    url = ray_app.deploy(settings, stable_version=stable)
    served = ray_app.status(settings).get("served", {})
    console.print(f"serving v{served.get('stable')} as stable on {url} (POST /predict, /v2)")


def _controller(home: Path | None, **rollout: Any) -> Any:
    from mlops_kit._lazy import require

    require("ray.serve", "canary rollouts on Ray Serve")
    from mlops_kit.serving import ray_app
    from mlops_kit.serving.rollout import RolloutController

    settings = load_cli_settings(home)
    given = {k: v for k, v in rollout.items() if v is not None}
    if given:
        settings.serving.rollout = settings.serving.rollout.model_validate(
            {**settings.serving.rollout.model_dump(), **given}
        )
    ray_app.connect(settings)
    return RolloutController(settings)


def _progress(state: Any) -> None:
    last = state.history[-1] if state.history else None
    verdict = f"; last window: {last['outcome']}" if last else ""
    if last and last["outcome"] != "pass":
        verdict += f" ({'; '.join(last['reasons'][:2])})"
    console.print(
        f"  step {state.steps[state.step]}%: canary v{state.canary} takes "
        f"{state.weight:.0%}{verdict}"
    )


@serve_app.command("rollout")
def rollout_cmd(
    version: str | None = typer.Argument(
        None, help="Version to roll out (default with --resume: the running rollout's)."
    ),
    home: Path | None = HomeOpt,
    resume: bool = typer.Option(False, help="Drive the running rollout instead of a new one."),
    watch_s: float | None = typer.Option(None, help="Watch window per step (serving.rollout)."),
    min_requests: int | None = typer.Option(None, help="Requests per side to judge a window."),
    fault_rate: float = typer.Option(
        0.0, help="Fail this share of the canary's requests on purpose (a rollback rehearsal)."
    ),
    who: str = typer.Option("", help="Who rolls out (recorded in the audit log)."),
    why: str = typer.Option("", help="Why (recorded)."),
) -> None:
    """Roll VERSION out against the stable, step by step (10% -> 50% -> 100%).

    Exit 0 when it became champion, 1 when it was rolled back; the reason and each
    window's figures are printed and kept in the registry's audit log.
    """
    controller = _controller(home, watch_s=watch_s, min_requests=min_requests)
    if not resume:
        if version is None:
            raise typer.BadParameter("name the version to roll out (or pass --resume)")
        state = controller.start(version, fault_rate=fault_rate, who=who, why=why)
        console.print(
            f"rolling out v{state.canary} against v{state.stable}: steps "
            f"{', '.join(f'{s}%' for s in state.steps)}, "
            f"{controller.settings.serving.rollout.watch_s:g} s each"
        )
    state = controller.run(on_tick=_progress)
    console.print(f"{state.status}: {state.reason}")
    raise typer.Exit(0 if state.status == "promoted" else 1)


@serve_app.command("status")
def status_cmd(
    home: Path | None = HomeOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """What the application serves (stable, canary, weight) and the rollout's state."""
    from mlops_kit.serving import ray_app
    from mlops_kit.serving.rollout import RolloutController

    settings = load_cli_settings(home)
    ray_app.connect(settings)
    out = ray_app.status(settings)
    state = RolloutController(settings, target=None).state()
    out["rollout"] = state.to_dict() if state is not None else None
    if as_json:
        typer.echo(json.dumps(out, indent=2, default=str))
        return
    served = out.get("served") or {}
    console.print(
        f"application {settings.serving.app_name}: {out['status']}; stable "
        f"v{served.get('stable')}, canary v{served.get('canary')} at "
        f"{float(out.get('weight') or 0):.0%}"
    )
    if state is not None:
        console.print(
            f"rollout {state.id}: v{state.canary} against v{state.stable}, {state.status}, "
            f"step {state.steps[state.step]}% {state.reason}".rstrip()
        )


@serve_app.command("rollback")
def rollback_cmd(
    why: str = typer.Option(..., help="Why (recorded in the audit log)."),
    home: Path | None = HomeOpt,
) -> None:
    """End the running rollout now: all traffic to the stable, the canary idle."""
    state = _controller(home).rollback(why)
    console.print(f"rolled back v{state.canary}; v{state.stable} serves all traffic")


@serve_app.command("down")
def down_cmd(
    home: Path | None = HomeOpt,
    stop_ray: bool = typer.Option(False, help="Also stop this machine's Ray cluster."),
) -> None:
    """Delete the Ray Serve application (and, with --stop-ray, the local cluster)."""
    from mlops_kit.serving import ray_app

    settings = load_cli_settings(home)
    ray_app.shutdown(settings)
    console.print(f"application {settings.serving.app_name} deleted")
    if stop_ray:
        ray_app.stop_local_cluster()
        console.print("local Ray cluster stopped")

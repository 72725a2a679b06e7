"""``mlops-kit rayjob``: an mlops-kit command on EKS, as a KubeRay RayJob.

* ``rayjob manifest -- <command>``: print the ServiceAccount and the RayJob as YAML;
* ``rayjob submit [--wait] -- <command>``: create the RayJob (and follow it);
* ``rayjob status NAME [--wait]``: its status, and how to read its logs.

The command after ``--`` is an mlops-kit command (``etl run``; a leading ``mlops-kit`` may be
given too). The kubernetes client is imported only by ``submit`` and ``status``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from mlops_kit.cli._common import HomeOpt, console, load_cli_settings

rayjob_app = typer.Typer(
    help=(
        "Run an mlops-kit command on EKS as a KubeRay RayJob: a Ray cluster sized from the "
        "'ray' settings is started for the command (with etl.backend and features.engine "
        "set to ray) and deleted after it.\n\n"
        "\b\n"
        "Examples:\n"
        "  mlops-kit rayjob manifest -- etl run > rayjob.yaml   # for GitOps or kubectl create\n"
        "  mlops-kit rayjob submit --wait -- etl run\n"
        "  mlops-kit rayjob submit -- features materialize\n"
        "  mlops-kit rayjob status mlops-kit-etl-run-20260101-120000 --wait\n\n"
        "The settings must suit pods: profile aws, s3:// storage, a PostgreSQL warehouse "
        "(password from warehouse.secret_arn). See docs/scale-out.md."
    ),
    no_args_is_help=True,
)

CommandArg = typer.Argument(
    ...,
    help="The mlops-kit command to run, after '--' (e.g. -- etl run).",
    show_default=False,
)
NameOpt = typer.Option(
    None, "--name", help="RayJob name (default: the command's words and the time)."
)
CrdOpt = typer.Option(
    None, "--crd", help="Also check the object against this RayJob CRD (ray.io_rayjobs.yaml)."
)
KubeconfigOpt = typer.Option(None, "--kubeconfig", help="kubeconfig file (default $KUBECONFIG).")
ContextOpt = typer.Option(None, "--context", help="kubeconfig context (the EKS cluster's).")
WaitOpt = typer.Option(False, "--wait", help="Follow the status until it ends.")
TimeoutOpt = typer.Option(None, "--timeout", help="With --wait: seconds to wait at most.")
PollOpt = typer.Option(15.0, "--poll", help="With --wait: seconds between status reads.")


def _entrypoint(command: list[str]) -> list[str]:
    return command if command[:1] == ["mlops-kit"] else ["mlops-kit", *command]


def _launcher(
    home: Path | None, crd: Path | None, kubeconfig: Path | None, context: str | None
) -> Any:
    from mlops_kit._lazy import require

    require("kubernetes", "submitting RayJobs")
    from mlops_kit.platform.rayjob_launcher import RayJobLauncher

    return RayJobLauncher(load_cli_settings(home), kubeconfig=kubeconfig, context=context, crd=crd)


def _follow(launcher: Any, handle: Any, timeout: float | None, poll: float) -> None:
    seen: list[str] = []

    def show(status: Any) -> None:
        line = status.describe()
        if not seen or seen[-1] != line:
            seen.append(line)
            console.print(f"{handle.name}: {line}")

    launcher.wait(handle, timeout=timeout, poll=poll, on_status=show)


@rayjob_app.command("manifest")
def manifest_cmd(
    command: list[str] = CommandArg,
    name: str | None = NameOpt,
    crd: Path | None = CrdOpt,
    home: Path | None = HomeOpt,
) -> None:
    """Print the RayJob running COMMAND (and its IRSA ServiceAccount) as YAML.

    Nothing is sent. Give --name for a name that stays the same from one generation to the
    next (a GitOps repository); KubeRay does not run a RayJob again when its spec changes,
    so a new run needs a new name or the old RayJob deleted.
    """
    from mlops_kit.platform.rayjob import build_rayjob, check_rayjob, render_manifest

    settings = load_cli_settings(home)
    entrypoint = _entrypoint(command)
    if crd is not None:
        check_rayjob(build_rayjob(settings, entrypoint, name=name), crd)
    typer.echo(render_manifest(settings, entrypoint, name=name), nl=False)


@rayjob_app.command("submit")
def submit_cmd(
    command: list[str] = CommandArg,
    name: str | None = NameOpt,
    wait: bool = WaitOpt,
    timeout: float | None = TimeoutOpt,
    poll: float = PollOpt,
    crd: Path | None = CrdOpt,
    kubeconfig: Path | None = KubeconfigOpt,
    context: str | None = ContextOpt,
    home: Path | None = HomeOpt,
) -> None:
    """Create the RayJob running COMMAND on the cluster of the kubeconfig.

    The IRSA ServiceAccount is not created here: apply it once from 'rayjob manifest'.
    Submitting the same name and spec again follows the RayJob already there. Exit status
    2 when the job fails (with --wait).
    """
    launcher = _launcher(home, crd, kubeconfig, context)
    handle = launcher.submit(_entrypoint(command), name=name)
    console.print(f"submitted RayJob {handle.namespace}/{handle.name}")
    console.print(f"logs: {launcher.logs_command(handle)}")
    if wait:
        _follow(launcher, handle, timeout, poll)


@rayjob_app.command("status")
def status_cmd(
    name: str = typer.Argument(..., help="The RayJob's name."),
    namespace: str | None = typer.Option(None, help="Its namespace (default ray.namespace)."),
    wait: bool = WaitOpt,
    timeout: float | None = TimeoutOpt,
    poll: float = PollOpt,
    kubeconfig: Path | None = KubeconfigOpt,
    context: str | None = ContextOpt,
    home: Path | None = HomeOpt,
) -> None:
    """Print a RayJob's status (Pending, Running, Succeeded or Failed, with the operator's
    reason) and the command that prints its logs. Exit status 2 when it failed."""
    launcher = _launcher(home, None, kubeconfig, context)
    handle = launcher.handle(name, namespace)
    if wait:
        _follow(launcher, handle, timeout, poll)
        return
    status = launcher.status(handle)
    console.print(f"{handle.name}: {status.describe()}")
    if status.raw.get("dashboardURL"):
        console.print(f"dashboard (in the cluster): {status.raw['dashboardURL']}")
    console.print(f"logs: {launcher.logs_command(handle)}")
    if status.phase.value == "Failed":
        raise typer.Exit(2)

"""Canary rollout: a persisted state machine that steps traffic and rolls back on a breach.

::

    start ─> step 10% ─watch─> analyse ─pass─> step 50% ─watch─> ... ─> 100% ─> promoted
                                  │ fail (or too quiet for too long)
                                  └──> rolled_back: all traffic to the stable, canary removed

At each step the canary takes ``steps[i]`` percent of the traffic for ``watch_s`` seconds;
then the window's figures of both sides go to :func:`~mlops_kit.serving.analysis.analyze`
(error rate, p99 latency, prediction shift, with minimum sample counts). A window too quiet
to judge is extended (it goes on counting for another ``watch_s``), up to
``max_extensions`` times. At 100% the stable answers nothing,
so the canary is judged against the stable's last judged window. On success the canary is promoted
to ``champion`` through the registry's own gates (compare-and-set on the stable version)
and becomes the stable deployment; on a breach all traffic goes back to the stable, the
canary is removed and the registry's ``champion`` stays on the stable version. Every
decision and its figures go to the registry's audit log.

The state lives in ``<serving state>/rollouts/<model>.json`` and is written after every
transition, so a restarted controller resumes where the last one stopped. A controller
holds a lease on the rollout (renewed at each tick, ``lease_s``); a second controller is
refused while the lease is live (:class:`RolloutBusyError`), and takes over once it has
expired.

The traffic itself is moved by a :class:`RolloutTarget`: :class:`RayServeTarget` updates
the Ray Serve application's ``user_config`` (replicas reconfigure in place) and reads the
analysis window from its ingress.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mlops_kit import storage
from mlops_kit.serving.errors import RolloutBusyError, RolloutError

if TYPE_CHECKING:
    from mlops_kit.config import Settings

RUNNING, PROMOTED, ROLLED_BACK = "running", "promoted", "rolled_back"
TERMINAL = (PROMOTED, ROLLED_BACK)


@dataclass
class RolloutState:
    """Where a rollout stands (the persisted document)."""

    model: str
    stable: str
    canary: str
    steps: list[int]
    step: int = 0
    status: str = RUNNING
    window_started: float = 0.0
    extensions: int = 0
    fault_rate: float = 0.0
    owner: str | None = None
    lease_until: float = 0.0
    reason: str = ""
    baseline: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def weight(self) -> float:
        """The canary's share of traffic now (0 once the rollout ended)."""
        return self.steps[self.step] / 100 if self.status == RUNNING else 0.0

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "weight": self.weight}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RolloutState:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


class RolloutTarget(Protocol):
    """What a rollout drives: the serving application."""

    def apply(self, stable: str, canary: str | None, weight: float, fault_rate: float) -> None:
        """Serve ``stable`` and ``canary`` with ``weight`` of the traffic to the canary."""

    def window(self, reset: bool) -> dict[str, Any]:
        """The analysis window per role (``{"stable": {...}, "canary": {...}}``, snapshot
        dicts); ``reset`` starts a new one."""


class RayServeTarget:
    """The Ray Serve application of :mod:`mlops_kit.serving.ray_app`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def apply(self, stable: str, canary: str | None, weight: float, fault_rate: float) -> None:
        from mlops_kit.serving import ray_app

        ray_app.deploy(
            self.settings,
            stable_version=stable,
            canary_version=canary,
            canary_weight=weight,
            canary_fault_rate=fault_rate,
        )

    def window(self, reset: bool) -> dict[str, Any]:
        from mlops_kit.serving import ray_app

        return ray_app.window(self.settings, reset)


def rollout_uri(settings: Settings, model: str) -> str:
    """Where the rollout state of ``model`` is kept."""
    base = settings.serving.state_uri or storage.join(
        str(settings.storage.state_uri or storage.join(str(settings.home), "state")), "serving"
    )
    return storage.join(base, "rollouts", f"{model}.json")


class RolloutController:
    """Drives the canary rollout of one model (see the module docstring).

    Args:
        settings: ``serving.rollout`` (steps, watch window, thresholds), the registry.
        target: the serving application (default: :class:`RayServeTarget`).
        model: the registered model (default: the settings').
        lease_s: how long a tick's claim on the rollout lasts.
        clock: seconds since the epoch (tests pass their own).
        policy: the promotion policy of the final step (default: the settings').
        evaluation: its evaluation table or URI (default: the policy's or settings').
    """

    def __init__(
        self,
        settings: Settings,
        target: RolloutTarget | None = None,
        *,
        model: str | None = None,
        lease_s: float = 60.0,
        clock: Any = time.time,
        policy: Any = None,
        evaluation: Any = None,
    ) -> None:
        from mlops_kit.registry.registry import ModelRegistry

        self.settings = settings
        self.registry = ModelRegistry(settings)
        self.name = self.registry.default_name(model)
        self.target = target or RayServeTarget(settings)
        self.lease_s = lease_s
        self.clock = clock
        self.policy = policy
        self.evaluation = evaluation
        self.me = f"{uuid.uuid4().hex[:8]}"
        self.uri = rollout_uri(settings, self.name)

    # ------------------------------------------------------------------ state
    def state(self) -> RolloutState | None:
        """The rollout of this model as last written (None: there never was one)."""
        if not storage.exists(self.uri):
            return None
        return RolloutState.from_dict(storage.read_json(self.uri))

    def _save(self, state: RolloutState) -> None:
        storage.write_json(self.uri, state.to_dict())

    def _claim(self) -> RolloutState:
        """The running rollout, leased to this controller (under the registry's lock)."""
        with self.registry._lock(f"{self.name}.rollout"):
            state = self.state()
            if state is None:
                raise RolloutError(f"no rollout of '{self.name}': start one with 'serve rollout'")
            now = self.clock()
            if state.owner not in (None, self.me) and state.lease_until > now and not state.done:
                raise RolloutBusyError(
                    f"the rollout of '{self.name}' is driven by controller {state.owner} "
                    f"(lease for {state.lease_until - now:.0f} s more): wait for it, or for "
                    "its lease to expire if it stopped"
                )
            state.owner, state.lease_until = self.me, now + self.lease_s
            self._save(state)
            return state

    def _audit(self, state: RolloutState, event: str, **extra: Any) -> None:
        self.registry.audit_log.append(
            self.name,
            {
                "action": "rollout",
                "event": event,
                "rollout": state.id,
                "stable": state.stable,
                "canary": state.canary,
                "step": state.steps[state.step],
                **extra,
            },
        )

    # ------------------------------------------------------------------ transitions
    def start(
        self, canary: str, *, fault_rate: float = 0.0, who: str = "", why: str = ""
    ) -> RolloutState:
        """Begin rolling ``canary`` out against the current champion.

        Raises:
            RolloutBusyError: a rollout of this model is still running.
            RolloutError: no champion, or the canary is the champion.
        """
        with self.registry._lock(f"{self.name}.rollout"):
            old = self.state()
            if old is not None and not old.done:
                raise RolloutBusyError(
                    f"a rollout of '{self.name}' (v{old.canary} against v{old.stable}) is "
                    "still running: 'serve rollback' ends it, 'serve rollout --resume' drives it"
                )
            champion = self.registry.aliases(self.name).get("champion")
            if champion is None:
                raise RolloutError(f"'{self.name}' has no champion to roll out against")
            version = str(self.registry.version(self.name, canary).version)
            if version == champion:
                raise RolloutError(f"version {version} of '{self.name}' is already champion")
            state = RolloutState(
                model=self.name,
                stable=champion,
                canary=version,
                steps=list(self.settings.serving.rollout.steps),
                fault_rate=fault_rate,
                owner=self.me,
                lease_until=self.clock() + self.lease_s,
            )
            self._save(state)
        self.target.apply(state.stable, state.canary, state.weight, fault_rate)
        self.target.window(reset=True)
        state.window_started = self.clock()
        self._save(state)
        self._audit(state, "start", who=who, why=why)
        return state

    def tick(self) -> RolloutState:
        """Advance the state machine by what is due now (nothing before the window ends)."""
        state = self._claim()
        if (
            state.done
            or self.clock() - state.window_started < self.settings.serving.rollout.watch_s
        ):
            return state
        from mlops_kit.serving.analysis import analyze
        from mlops_kit.serving.metrics import WindowSnapshot

        window = self.target.window(reset=False)  # a quiet window goes on counting
        rollout = self.settings.serving.rollout
        stable = window["stable"]
        if stable.get("requests", 0) >= rollout.min_requests:
            state.baseline = stable
        elif state.weight >= 1.0 and state.baseline is not None:
            stable = state.baseline  # the stable takes no traffic at 100%: its last window
        verdict = analyze(
            WindowSnapshot.from_dict(stable), WindowSnapshot.from_dict(window["canary"]), rollout
        )
        entry = {"step": state.steps[state.step], "at": self.clock(), **verdict.to_dict()}
        state.history.append(entry)
        self._audit(state, f"analysis:{verdict.outcome}", verdict=verdict.to_dict())
        if verdict.outcome == "fail":
            return self._roll_back(state, "; ".join(verdict.reasons))
        if verdict.outcome == "wait":
            state.extensions += 1
            if state.extensions > self.settings.serving.rollout.max_extensions:
                return self._roll_back(
                    state,
                    f"too little traffic to judge after {state.extensions} windows: "
                    + "; ".join(verdict.reasons),
                )
            state.window_started = self.clock()
            self._save(state)
            return state
        state.extensions = 0
        if state.step + 1 < len(state.steps):
            state.step += 1
            self.target.apply(state.stable, state.canary, state.weight, state.fault_rate)
            self.target.window(reset=True)
            state.window_started = self.clock()
            self._save(state)
            self._audit(state, "step")
            return state
        return self._promote(state)

    def _promote(self, state: RolloutState) -> RolloutState:
        from mlops_kit.errors import MlopsKitError

        try:
            decision = self.registry.promote(
                self.name,
                state.canary,
                self.policy,
                target="champion",
                evaluation=self.evaluation,
                expected_champion=state.stable,
                who=f"rollout {state.id}",
                why=f"canary passed the steps {', '.join(map(str, state.steps))}%",
            )
        except MlopsKitError as exc:
            return self._roll_back(state, f"the registry could not promote it: {exc}")
        if not decision.accepted:
            return self._roll_back(
                state, "the registry refused champion: " + "; ".join(decision.reasons())
            )
        self.target.apply(state.canary, None, 0.0, 0.0)
        state.status, state.reason = PROMOTED, f"champion is now version {state.canary}"
        self._save(state)
        self._audit(state, "promoted", audit_id=decision.audit_id)
        return state

    def _roll_back(self, state: RolloutState, reason: str) -> RolloutState:
        self.target.apply(state.stable, None, 0.0, 0.0)
        state.status, state.reason = ROLLED_BACK, reason
        self._save(state)
        champion = self.registry.aliases(self.name).get("champion")
        self._audit(state, "rolled_back", reason=reason, champion=champion)
        return state

    def rollback(self, why: str) -> RolloutState:
        """End the running rollout now: all traffic to the stable, canary removed."""
        state = self._claim()
        if state.done:
            raise RolloutError(f"the rollout of '{self.name}' already ended ({state.status})")
        return self._roll_back(state, f"manual: {why}")

    def run(self, poll_s: float = 1.0, on_tick: Any = None) -> RolloutState:
        """Tick until the rollout ends; ``on_tick(state)`` after each tick (progress)."""
        while True:
            state = self.tick()
            if on_tick is not None:
                on_tick(state)
            if state.done:
                return state
            time.sleep(poll_s)

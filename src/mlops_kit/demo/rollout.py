"""The demo's serving on Ray Serve: the champion as stable, a retrained version rolled out
10% -> 50% -> 100% under client traffic, then a faulty canary rolled back.

Runs on a Ray cluster started in this process with the machine's cores (no account, no
Kubernetes); short watch windows (:data:`DEMO_ROLLOUT`) so the demo takes seconds, the
thresholds otherwise the settings' defaults.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops_kit.config import Settings

DEMO_ROLLOUT: dict[str, Any] = {
    "watch_s": 3.0,
    "min_requests": 10,
    "max_extensions": 10,
    "p99_slack_ms": 150.0,
}
"""Rollout settings of the demo: windows of seconds (the reference architecture watches 10
minutes a step), and a latency slack wide enough for a laptop where the clients, the
replicas and the controller share a few cores (a 3-second p99 there jitters by tens of
milliseconds); the other thresholds are the settings' defaults."""


class Traffic:
    """Clients sending requests in a loop, each on a thread (entity ids only: features
    from the online store); every answer's status and version kept, in the order they
    came."""

    def __init__(self, base_url: str, key: str, ids: list[str], clients: int = 4) -> None:
        self.base_url, self.key, self.ids = base_url, key, ids
        self.answers: list[tuple[int, str | None]] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(c,), name="demo-traffic", daemon=True)
            for c in range(clients)
        ]

    def _loop(self, offset: int) -> None:
        import httpx

        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            i = offset
            while not self._stop.is_set():
                got = http.post("/predict", json={self.key: self.ids[i % len(self.ids)]})
                self.answers.append((got.status_code, got.headers.get("x-model-version")))
                i += 1

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def summary(self) -> dict[str, Any]:
        answers = list(self.answers)
        return {
            "requests": len(answers),
            "failed": sum(1 for code, _ in answers if code >= 500),
            "by_version": dict(Counter(version or "?" for _, version in answers)),
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rollout_step(
    settings: Settings,
    champion: str,
    canary: str,
    ids: list[str],
    policy: Any = None,
    evaluation: Any = None,
) -> dict[str, Any]:
    """Deploy ``champion`` as stable, roll ``canary`` out, then rehearse a faulty canary
    (the previous champion failing 20% of its requests) and see it rolled back.

    Returns:
        ``{"url", "rollout": state dict, "traffic": {...}, "samples": [...],
        "faulty": state dict, "faulty_traffic": {...}, "seconds"}``.
    """
    import logging
    import os

    import httpx
    import ray
    from ray import serve

    from mlops_kit.data.spec import spec_of
    from mlops_kit.serving import ray_app
    from mlops_kit.serving.rollout import RolloutController

    t0 = time.perf_counter()
    s = settings.model_copy(deep=True)
    s.serving.port = _free_port()
    s.serving.rollout = s.serving.rollout.model_copy(update=DEMO_ROLLOUT)
    key = spec_of(s).entity.join_key
    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=max(2, os.cpu_count() or 2),
            include_dashboard=False,
            logging_level=logging.ERROR,
            log_to_driver=False,
        )
    try:
        url = ray_app.deploy(s, stable_version=champion)
        with Traffic(url, key, ids) as traffic:
            controller = RolloutController(s, policy=policy, evaluation=evaluation)
            controller.start(canary, who="demo", why="a retrained version")
            state = controller.run(poll_s=0.25)
        with httpx.Client(base_url=url, timeout=30) as http:
            got = http.post("/predict", json=[{key: i} for i in ids[:3]])
            samples = got.json() if got.status_code == 200 else []
        previous = champion if state.status == "promoted" else canary
        with Traffic(url, key, ids) as faulty_traffic:
            controller = RolloutController(s, policy=policy, evaluation=evaluation)
            controller.start(
                previous, fault_rate=0.2, who="demo", why="rehearse an automatic rollback"
            )
            faulty = controller.run(poll_s=0.25)
    finally:
        serve.shutdown()
        if started:
            ray.shutdown()
    return {
        "url": url,
        "rollout": state.to_dict(),
        "traffic": traffic.summary(),
        "samples": samples,
        "faulty": faulty.to_dict(),
        "faulty_traffic": faulty_traffic.summary(),
        "seconds": time.perf_counter() - t0,
    }

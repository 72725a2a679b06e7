"""Test support: make two promotions meet inside the promotion's critical section.

Nothing here does anything unless the environment variable :data:`RACE_DIR_ENV` names a
folder; only the registry's race tests set it. Then:

* :func:`checkpoint` runs in :meth:`~mlops_kit.registry.ModelRegistry.promote` after the
  holder of the lock has re-read the champion and before it moves any alias. It writes
  ``<token>.reached.json`` (the version and the champion it read) and waits until the
  other party has either reached the same point or been refused the lock
  (``<token>.blocked.json``, written by :func:`blocked`). Without the lock both promoters
  are then inside the section at once, having read the same champion; with it the
  second one is provably waiting for the lock while the first writes.
* :func:`blocked` runs in the locks of :mod:`mlops_kit.registry.lock` whenever another
  holder refuses the caller.
* :data:`NO_LOCK_ENV` ``=1`` (honoured only together with :data:`RACE_DIR_ENV`) makes
  :func:`~mlops_kit.registry.lock.registry_lock` hold nothing, so the race test can show
  that it fails without the lock. Never set it outside that test.

The wait has a safety net of :data:`SAFETY_TIMEOUT_S`: past it the checkpoint writes
``<token>.timeout.json`` and goes on, and the test treats that file as a failure.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

RACE_DIR_ENV = "_MLOPS_KIT_RACE_DIR"
NO_LOCK_ENV = "_MLOPS_KIT_RACE_NO_LOCK"
PARTIES = 2
SAFETY_TIMEOUT_S = 120.0
_EVENTS = ("reached", "blocked")


def _folder() -> str | None:
    return os.environ.get(RACE_DIR_ENV) or None


def token() -> str:
    """The caller's name in the rendezvous folder (process and thread)."""
    return f"{os.getpid()}-{threading.get_ident()}"


def lock_disabled() -> bool:
    """True only when the race hook is on and :data:`NO_LOCK_ENV` is ``1``."""
    return _folder() is not None and os.environ.get(NO_LOCK_ENV) == "1"


def _mark(folder: str, event: str, data: dict[str, Any]) -> None:
    path = os.path.join(folder, f"{token()}.{event}.json")
    if os.path.exists(path):
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"token": token(), "event": event, **data}, fh)
    os.replace(tmp, path)


def blocked(model: str) -> None:
    """Record that another holder refused the caller the lock of ``model``."""
    folder = _folder()
    if folder is not None:
        _mark(folder, "blocked", {"model": model})


def _peers(folder: str) -> set[str]:
    me = token()
    found = set()
    for entry in os.listdir(folder):
        parts = entry.split(".")
        if len(parts) == 3 and parts[1] in _EVENTS and parts[2] == "json" and parts[0] != me:
            found.add(parts[0])
    return found


def checkpoint(model: str, version: str, champion: str | None) -> None:
    """Wait, inside the critical section, until the other promoter is here or is blocked."""
    folder = _folder()
    if folder is None:
        return
    _mark(folder, "reached", {"model": model, "version": version, "champion": champion})
    deadline = time.monotonic() + SAFETY_TIMEOUT_S
    while len(_peers(folder)) < PARTIES - 1:
        if time.monotonic() > deadline:
            _mark(folder, "timeout", {"model": model, "version": version})
            return
        time.sleep(0.005)

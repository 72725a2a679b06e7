"""Named fault points for crash-recovery tests.

A process started with ``MLOPS_KIT_FAULT_AT=<point>`` dies abruptly (``os._exit(137)``, as
if killed) when it reaches :func:`maybe_fail` with that point. Nothing is flushed and no
``finally`` block runs, so a test observes exactly what a kill at that moment leaves behind.

Unset, a point costs one environment lookup. The points:

- ``api.after_land``: an API page landed in the raw zone, its cursor not yet saved.
- ``stream.before_write``: a stream micro-batch was read, nothing written yet.
- ``stream.after_write``: the micro-batch landed in the raw zone, its checkpoint not yet saved.
- ``stream.after_checkpoint``: the checkpoint of the micro-batch was saved.
- ``etl.after_stage``, ``etl.after_journal``, ``etl.mid_moves``, ``etl.after_moves``,
  ``etl.after_warehouse``, ``etl.after_manifest``: the steps of an ETL commit
  (see :mod:`mlops_kit.etl.lake`).
- ``training.after_epoch_<N>``: epoch N finished and its checkpoint was written.
"""

from __future__ import annotations

import os

FAULT_ENV = "MLOPS_KIT_FAULT_AT"
"""Environment variable that names the fault point to die at."""

EXIT_CODE = 137
"""Exit status of a process killed at a fault point (the status of a SIGKILL)."""


def maybe_fail(point: str) -> None:
    """Exit the process at once when ``$MLOPS_KIT_FAULT_AT`` equals ``point``.

    Args:
        point: dotted name of the place in the code, e.g. ``"stream.after_write"``.
    """
    if os.environ.get(FAULT_ENV) == point:
        os._exit(EXIT_CODE)

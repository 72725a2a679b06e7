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
- ``etl.ray_partition``: a Ray ETL partition task computed its rows, nothing staged yet.
- ``training.after_epoch_<N>``: epoch N finished and its checkpoint was written.

With ``MLOPS_KIT_FAULT_ONCE=<path>`` as well, only the first process to reach the point
dies (it creates ``<path>`` first): a retried task then goes through, as after a worker
killed once.
"""

from __future__ import annotations

import os

FAULT_ENV = "MLOPS_KIT_FAULT_AT"
"""Environment variable that names the fault point to die at."""

ONCE_ENV = "MLOPS_KIT_FAULT_ONCE"
"""Environment variable naming a file: die only if it did not exist yet."""

EXIT_CODE = 137
"""Exit status of a process killed at a fault point (the status of a SIGKILL)."""


def maybe_fail(point: str) -> None:
    """Exit the process at once when ``$MLOPS_KIT_FAULT_AT`` equals ``point``.

    Args:
        point: dotted name of the place in the code, e.g. ``"stream.after_write"``.
    """
    if os.environ.get(FAULT_ENV) != point:
        return
    once = os.environ.get(ONCE_ENV)
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    os._exit(EXIT_CODE)

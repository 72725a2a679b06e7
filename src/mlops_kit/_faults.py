"""Named crash points, for testing that a killed process loses nothing.

Setting ``MLOPS_KIT_FAULT_AT=<point>`` makes the process exit at once (as a kill would,
without cleanup) when it reaches that point. Unset, each point costs one dict lookup.
"""

from __future__ import annotations

import os


def maybe_fail(point: str) -> None:
    """Exit the process immediately with status 137 if ``point`` is the armed one."""
    if os.environ.get("MLOPS_KIT_FAULT_AT") == point:
        os._exit(137)

"""Shared by the benchmark scripts: the machine's CPU name and writing a marked doc section.

Importing it also puts ``examples/`` on ``sys.path``, so a benchmark can import the IoT
example data (``iot_fleet``) the way the test suite does.
"""

from __future__ import annotations

import platform
import re
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def write_section(doc: Path, start: str, end: str, section: str) -> None:
    """Replace the text between ``start`` and ``end`` in ``doc`` with ``section`` (which
    carries both markers), or append it; the file is created when missing."""
    text = (
        doc.read_text()
        if doc.exists()
        else "# Benchmarks\n\nEach section is written by its script under `benchmarks/`.\n"
    )
    if start in text:
        pattern = re.escape(start) + ".*?" + re.escape(end)
        text = re.sub(pattern, lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    doc.write_text(text)

"""The container image every component runs in; its tag follows the package version."""

from __future__ import annotations

from mlops_kit._version import __version__

DEFAULT_IMAGE = "ghcr.io/mlops-kit/mlops-kit"
"""Image repository (without tag) of the pipeline components."""

IMAGE = f"{DEFAULT_IMAGE}:{__version__}"
"""The components' ``base_image``: :data:`DEFAULT_IMAGE` tagged with ``mlops_kit.__version__``."""


def image_tag(image: str) -> str:
    """The tag of an image reference (``""`` when it has none).

    Args:
        image: e.g. ``ghcr.io/mlops-kit/mlops-kit:0.1.0``.
    """
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""

"""The feature encoder derived from the data contract, and the segments stored with scores.

``FeatureEncoder`` loads on first use (PEP 562): the dashboard reads segment keys through
:mod:`churnops.features.segments` and must not pull in the encoder's numba kernels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from churnops.features.encoder import FeatureEncoder

__all__ = ["FeatureEncoder"]


def __getattr__(name: str) -> Any:
    if name != "FeatureEncoder":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from churnops.features.encoder import FeatureEncoder

    return FeatureEncoder

"""The feature encoder derived from the data contract."""

from churnops.features.encoder import FeatureEncoder

__all__ = ["FeatureEncoder"]

"""The one fast scoring path: contract -> encoded row -> calibrated probability -> reasons."""

from churnops.scoring.fast import FastScorer
from churnops.scoring.model import ScoringModel
from churnops.scoring.predictor import Predictor, Scorer
from churnops.scoring.records import RecordCodec

__all__ = ["FastScorer", "Predictor", "RecordCodec", "Scorer", "ScoringModel"]

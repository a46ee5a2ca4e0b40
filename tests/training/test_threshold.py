"""Threshold choice: max F1 by default, max campaign profit when economics are given."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

from churnops.campaign import ProfitModel
from churnops.training.threshold import choose_threshold, f1_curve, profit_curve


def _scores(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(2000) < 0.3
    p = np.clip(0.3 + 0.35 * (y - 0.3) + rng.normal(0, 0.2, 2000), 0.001, 0.999)
    return y.astype(int), p


def test_f1_curve_matches_sklearn() -> None:
    """The vectorised F1 curve equals sklearn's f1_score at every threshold."""
    y, p = _scores()
    thresholds = np.array([0.2, 0.35, 0.5, 0.7])
    expected = [f1_score(y, p >= t) for t in thresholds]
    np.testing.assert_allclose(f1_curve(y, p, thresholds), expected)


def test_f1_choice_is_the_best_f1() -> None:
    """The chosen threshold's F1 is at least every other candidate's."""
    y, p = _scores(1)
    choice = choose_threshold(y, p)
    best = f1_score(y, p >= choice.threshold)
    assert all(best >= f1_score(y, p >= t) - 1e-12 for t in np.linspace(0.05, 0.95, 19))


def test_profit_curve_by_hand() -> None:
    """Profit = accepted churners' value minus the cost of every contact."""
    y = np.array([1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.4, 0.1])
    economics = ProfitModel(offer_cost=10.0, acceptance_rate=0.5, customer_value=100.0)
    profit = profit_curve(y, p, np.array([0.85, 0.75, 0.3, 0.05]), economics)
    np.testing.assert_allclose(profit, [40.0, 30.0, 70.0, 60.0])


def test_expensive_offers_raise_the_threshold() -> None:
    """Costlier offers mean fewer contacts: the profit threshold moves up."""
    y, p = _scores(2)
    cheap = choose_threshold(y, p, "profit", ProfitModel(1.0, 0.3, 500.0))
    dear = choose_threshold(y, p, "profit", ProfitModel(100.0, 0.3, 500.0))
    assert dear.threshold > cheap.threshold


def test_per_customer_values_change_the_profit() -> None:
    """A value column weighs churners by what they are worth."""
    y, p = _scores(3)
    t = np.array([0.5])
    flat = profit_curve(y, p, t, ProfitModel(5.0, 0.3, 100.0))
    rich = profit_curve(y, p, t, ProfitModel(5.0, 0.3, 100.0), values=np.full(len(y), 200.0))
    assert rich[0] > flat[0]

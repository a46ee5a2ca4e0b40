"""Test factories: Telco-like customer tables with a known churn signal."""

from __future__ import annotations

import numpy as np
import pandas as pd

CONTRACTS = ("Month-to-month", "One year", "Two year")
INTERNET = ("DSL", "Fiber optic", "No")
PAYMENTS = ("Electronic check", "Mailed check", "Bank transfer (automatic)")


def make_customers(n: int = 600, churn_rate: float = 0.27, seed: int = 0) -> pd.DataFrame:
    """Return ``n`` customers whose churn depends on contract, tenure and charges.

    The label follows a logistic model, so a good model reaches ROC-AUC around 0.8, and
    the obvious churner (new, month-to-month, fibre, high bill) is far above a loyal one.
    """
    rng = np.random.default_rng(seed)
    contract = rng.choice(CONTRACTS, n, p=[0.55, 0.21, 0.24])
    internet = rng.choice(INTERNET, n, p=[0.34, 0.44, 0.22])
    tenure = rng.integers(0, 73, n)
    monthly = np.round(np.where(internet == "Fiber optic", 85, 50) + rng.normal(0, 15, n), 2)
    monthly = np.clip(monthly, 18.0, 120.0)
    total = np.round(monthly * np.maximum(tenure, 1), 2)
    senior = rng.integers(0, 2, n)
    margin = (
        1.3 * (contract == "Month-to-month")
        - 1.2 * (contract == "Two year")
        + 0.7 * (internet == "Fiber optic")
        - 0.045 * tenure
        + 0.012 * (monthly - 65)
        + 0.3 * senior
    )
    margin += np.log(churn_rate / (1 - churn_rate)) - np.mean(margin)
    churn = rng.random(n) < 1 / (1 + np.exp(-margin))
    return pd.DataFrame(
        {
            "customer_id": [f"T{seed:02d}-{i:06d}" for i in range(n)],
            "senior_citizen": senior,
            "partner": rng.choice(["Yes", "No"], n),
            "tenure": tenure,
            "contract": contract,
            "internet_service": internet,
            "payment_method": rng.choice(PAYMENTS, n),
            "monthly_charges": monthly,
            "total_charges": total,
            "churn": np.where(churn, "Yes", "No"),
        }
    )


def obvious_churner() -> dict:
    """Return a customer every sensible model ranks as very likely to churn."""
    return {
        "customer_id": "RISKY",
        "senior_citizen": 1,
        "partner": "No",
        "tenure": 1,
        "contract": "Month-to-month",
        "internet_service": "Fiber optic",
        "payment_method": "Electronic check",
        "monthly_charges": 105.0,
        "total_charges": 105.0,
    }


def loyal_customer() -> dict:
    """Return a customer every sensible model ranks as unlikely to churn."""
    return {
        "customer_id": "LOYAL",
        "senior_citizen": 0,
        "partner": "Yes",
        "tenure": 70,
        "contract": "Two year",
        "internet_service": "DSL",
        "payment_method": "Bank transfer (automatic)",
        "monthly_charges": 45.0,
        "total_charges": 3150.0,
    }

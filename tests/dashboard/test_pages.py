"""Every page through Streamlit's AppTest on seeded stores: no exception, the right numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from churnops.batch.report import score_text
from churnops.dashboard import launch
from churnops.serving.auth import principal_for
from tests.dashboard.conftest import DATES, Seeded

pytestmark = pytest.mark.integration
APP = str(launch.APP)
PAGES = ("at_risk", "customer", "campaign", "model", "monitoring")


def signed_in(seeded: Seeded, role: str = "analyst") -> AppTest:
    """An app whose session is signed in with the seeded key of ``role``."""
    at = AppTest.from_file(APP, default_timeout=120)
    key = seeded.keys[role]
    at.session_state["principal"] = principal_for(seeded.settings, key)
    at.session_state["key"] = key
    at.session_state["checked_at"] = 1e18  # checked "now": no recheck during the test
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"pages/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label))


def expected_scores(seeded: Seeded, day: Any) -> np.ndarray:
    """The scores the store should hold for a date, from the model itself."""
    from churnops.scoring import Predictor

    predictor = Predictor.from_registry(seeded.settings)
    frame = seeded.tables[day].drop(columns=[seeded.target])
    return predictor.model.predict_frame(frame)["probability"].to_numpy()


def test_sign_in_takes_analyst_and_admin_keys_only(telco_store: Seeded, use_store: Any) -> None:
    use_store(telco_store)
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert at.text_input[0].label == "API key"
    assert not at.title or "At risk" not in at.title[0].value
    at.text_input[0].input(telco_store.keys["scorer"])
    at.button[0].click().run()
    assert "needs an analyst or admin key" in at.error[0].value
    at.text_input[0].input("chk_not-a-key")
    at.button[0].click().run()
    assert "Unknown or revoked" in at.error[0].value
    at.text_input[0].input(telco_store.keys["analyst"])
    at.button[0].click().run()
    assert not at.exception
    assert at.title[0].value == "Customers at risk"


@pytest.mark.parametrize("store", ["telco_store", "other_store"])
def test_every_page_renders_on_any_table(
    store: str, request: pytest.FixtureRequest, use_store: Any
) -> None:
    seeded = use_store(request.getfixturevalue(store))
    at = signed_in(seeded)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    for page in PAGES:
        open_page(at, page)
        assert not at.error, [e.value for e in at.error]


def test_at_risk_numbers_match_the_models_scores(telco_store: Seeded, use_store: Any) -> None:
    seeded = use_store(telco_store)
    at = open_page(signed_in(seeded).run(), "at_risk")
    day = DATES[1]  # the latest date is the default
    p = expected_scores(seeded, day)
    from churnops import registry

    threshold = registry.get_version(seeded.settings, alias="champion").threshold
    assert metric(at, "Customers scored") == f"{len(p):,}"
    assert metric(at, "Above threshold") == f"{int((p >= threshold).sum()):,}"
    assert metric(at, "Expected churners") == f"{p.sum():,.0f}"
    values = seeded.tables[day]["monthly_charges"].to_numpy()
    assert metric(at, "Revenue at risk").replace(",", "") == f"{(p * values).sum():.0f}"
    table = at.dataframe[0].value
    assert list(table["rank"][:3]) == [1, 2, 3]
    assert list(table["score"][:5]) == [score_text(s) for s in np.sort(p)[::-1][:5]]


def test_at_risk_filter_and_search_narrow_the_list(telco_store: Seeded, use_store: Any) -> None:
    seeded = use_store(telco_store)
    at = open_page(signed_in(seeded).run(), "at_risk")
    frame = seeded.tables[DATES[1]]
    at.toggle(key="above").set_value(False).run()
    assert at.dataframe[0].value.shape[0] == 50  # a full page of everyone
    at.selectbox(key="seg:contract").set_value("Two year").run()
    assert not at.exception
    shown = at.dataframe[0].value
    assert set(shown["contract"]) == {"Two year"}
    assert f"{(frame['contract'] == 'Two year').sum():,} customers match" in " ".join(
        c.value for c in at.caption
    )
    one = frame["customer_id"].iloc[5]
    at.selectbox(key="seg:contract").set_value("All")
    at.text_input(key="search").input(one).run()
    assert list(at.dataframe[0].value["customer"]) == [one]


def test_customer_page_shows_history_and_explanation(telco_store: Seeded, use_store: Any) -> None:
    seeded = use_store(telco_store)
    at = signed_in(seeded).run()
    customer = seeded.tables[DATES[1]]["customer_id"].iloc[0]
    at.session_state["customer_id"] = customer
    open_page(at, "customer")
    p = expected_scores(seeded, DATES[1])[0]
    assert metric(at, "Churn score") == score_text(p)
    features = at.dataframe[0].value
    assert set(features["feature"]) >= {"tenure", "contract"}
    assert features["typical non-churner"].ne("—").all()
    assert len(at.get("plotly_chart")) == 2


def test_campaign_budget_changes_the_selection(telco_store: Seeded, use_store: Any) -> None:
    from churnops.campaign import ProfitModel, plan_campaign

    seeded = use_store(telco_store)
    at = open_page(signed_in(seeded).run(), "campaign")
    at.radio(key="value_mode").set_value("Constant").run()
    at.number_input(key="budget").set_value(200.0)
    at.number_input(key="offer_cost").set_value(10.0)
    at.number_input(key="constant_value").set_value(500.0)
    at.slider(key="acceptance").set_value(0.3).run()
    p = np.sort(expected_scores(seeded, DATES[1]))[::-1]
    plan = plan_campaign(p, None, ProfitModel(10.0, 0.3, 500.0), budget=200.0)
    assert plan.contacts == 20  # the budget binds: every one of the top 20 pays for itself
    assert metric(at, "Customers to contact") == "20"
    assert list(at.dataframe[0].value["score"]) == [score_text(s) for s in p[:20]]
    assert metric(at, "Expected profit") == f"{plan.profit:,.0f}"
    at.number_input(key="budget").set_value(100.0).run()
    assert metric(at, "Customers to contact") == "10"
    assert at.dataframe[0].value.shape[0] == 10


def test_model_page_admin_actions_need_an_admin_key(telco_store: Seeded, use_store: Any) -> None:
    seeded = use_store(telco_store)
    analyst = open_page(signed_in(seeded).run(), "model")
    labels = [b.label for b in analyst.button]
    assert not any("Roll back" in label for label in labels)
    admin = open_page(signed_in(seeded, "admin").run(), "model")
    assert any("Roll back" in b.label for b in admin.button)
    assert "Champion" in [h.value for h in admin.subheader]


def test_monitoring_page_lists_both_runs(telco_store: Seeded, use_store: Any) -> None:
    seeded = use_store(telco_store)
    at = open_page(signed_in(seeded).run(), "monitoring")
    assert metric(at, "Monitoring runs") == "2"
    assert at.dataframe[0].value.shape[0] == 2


def test_empty_store_says_what_to_run(tmp_path: Path, use_store: Any) -> None:
    from churnops.config import Settings
    from churnops.serving.auth import create_key

    settings = Settings(home=tmp_path / "empty")
    key = create_key(settings, "empty-analyst", "analyst")["key"]
    seeded = use_store(Seeded(settings, {}, {"analyst": key}, "id", "churn"))
    at = signed_in(seeded).run()
    assert "churnops score" in at.info[0].value
    for page, hint in (
        ("campaign", "churnops score"),
        ("model", "churnops train"),
        ("monitoring", "churnops monitor"),
    ):
        open_page(at, page)
        assert hint in at.info[0].value

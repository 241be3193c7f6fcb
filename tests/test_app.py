"""The site assembles every tab and exposes the documented API names."""
from __future__ import annotations

import app


def test_every_tab_is_built_with_its_public_id():
    assert app.TAB_IDS == ["generate", "classify", "translate", "attention", "costs", "guide"]


def test_the_documented_api_names_exist():
    api_names = {dep.api_name for dep in app.demo.fns.values() if dep.api_name and dep.api_visibility == "public"}
    assert {"generate", "classify", "translate", "attention", "estimate_training"} <= api_names


def test_deep_link_selects_a_known_tab_and_ignores_unknown_ones():
    class Request:
        def __init__(self, tab):
            self.query_params = {"tab": tab}

    assert app.select_tab_from_url(Request("costs")).selected == "costs"
    assert app.select_tab_from_url(Request("../../etc")).selected is None


def test_health_endpoint_reports_models(monkeypatch):
    from fastapi.testclient import TestClient

    client = TestClient(app.create_app(app.demo))
    response = client.get("/health")
    body = response.json()
    assert {m["id"] for m in body["models"]} >= {"smollm2-135m-instruct", "minilm-l6-v2"}
    assert body["runtime"]["device"] in {"cpu", "cuda"}
    assert response.status_code == (200 if body["status"] == "ok" else 503)

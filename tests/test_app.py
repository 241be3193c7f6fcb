"""The site assembles every tab and exposes the documented API names."""
from __future__ import annotations

import pytest

import app
from models.registry import REGISTRY


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


def _health(monkeypatch, model_dir=None):
    from fastapi.testclient import TestClient

    from models import runtime

    if model_dir is not None:
        monkeypatch.setenv("LAB_MODEL_DIR", str(model_dir))
    monkeypatch.setattr(runtime, "_sessions", {})  # judge the cache on disk, not what another test loaded
    monkeypatch.setattr(runtime, "_problems", {})
    response = TestClient(app.create_app(app.demo)).get("/health")
    return response.status_code, response.json()


def test_health_is_503_and_names_every_model_when_nothing_is_exported(monkeypatch, tmp_path):
    status, body = _health(monkeypatch, tmp_path)
    assert status == 503 and body["status"] == "degraded"
    assert set(body["unavailable"]) == set(REGISTRY)
    for model in body["models"]:
        assert model["exported"] is False and model["available"] is False
        assert "python -m export" in model["problem"]
    assert body["runtime"]["device"] in {"cpu", "cuda"}
    assert body["active_generations"] == body["active_translations"] == 0


@pytest.mark.integration
def test_health_is_200_when_every_model_is_exported_and_checked(monkeypatch):
    """Against the model cache `make test` exports (and checks) before the tests run."""
    status, body = _health(monkeypatch)
    assert status == 200 and body["status"] == "ok", body["unavailable"]
    assert [m["id"] for m in body["models"]] == list(REGISTRY)
    assert all(m["exported"] and m["available"] and m["problem"] is None for m in body["models"])

"""The same API tests as the local backend (every endpoint, streaming, Stop proven on the server, every
bad-input message), run against a site whose models are Ray Serve replicas (LAB_BACKEND=ray), plus what only
the Ray backend has: /health naming it with replica counts."""
from __future__ import annotations

import re

import pytest
from gradio_client import Client

# The very test functions of the local-backend modules: collected here again, with the fixtures below.
from tests.api.test_api_bad_input import *  # noqa: F401,F403
from tests.api.test_api_endpoints import *  # noqa: F401,F403
from tests.api.ray_cluster import ray_site_url  # noqa: F401  (fixture)
from tests.api.site_checks import assert_healthy

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def site_url(ray_site_url):  # noqa: F811  (overrides the local site for the tests imported above)
    return ray_site_url


@pytest.fixture(scope="module")
def client(site_url):  # noqa: F811
    client = Client(site_url, verbose=False, download_files=False)
    yield client
    client.close()


def test_health_names_the_ray_backend_with_two_running_replicas_of_each_model(site_url):
    report = assert_healthy(site_url)
    backend = report["backend"]
    assert backend["name"] == "ray" and backend["ok"]
    apps = backend["applications"]
    assert apps["decoder"]["replica_states"].get("RUNNING") >= 2
    assert apps["classifier"]["replica_states"].get("RUNNING") >= 2
    by_kind = {}
    for replica in backend["replicas"]:
        by_kind.setdefault(replica["deployment"], []).append(replica)
    assert len(by_kind["decoder"]) >= 2 and len(by_kind["classifier"]) >= 2
    assert all(r["threads"] == "1" for r in by_kind["decoder"] + by_kind["classifier"]), "1 onnxruntime thread each"
    assert len({r["pid"] for r in backend["replicas"]}) == len(backend["replicas"]), "one process per replica"
    served = {m["id"]: m for m in report["models"]}
    assert served["smollm2-135m-instruct"]["replicas"] >= 2 and served["sentiment-minilm"]["replicas"] >= 2


def test_the_footer_says_ray_serve_and_the_replica_counts(site_url):
    """The footer renders backend_text() of this very report (demos/status.py)."""
    from demos.status import backend_text

    line = backend_text(assert_healthy(site_url)["backend"])
    assert line.startswith("Ray Serve at 127.0.0.1:")
    assert re.search(r"classifier [2-9] running \[healthy\]; decoder [2-9] running \[healthy\]", line), line

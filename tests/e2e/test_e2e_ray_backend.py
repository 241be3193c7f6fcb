"""The browser tests of Generate (streaming, Stop that stops the replica's decode loop, a phone) and Classify
(label, highlights, batch upload, bad files), against a site whose models are Ray Serve replicas
(LAB_BACKEND=ray; the cluster of tests/api/ray_cluster.py)."""
from __future__ import annotations

import pytest

from tests.api.ray_cluster import ray_site_url  # noqa: F401  (fixture)
from tests.e2e.test_e2e_classify import *  # noqa: F401,F403
from tests.e2e.test_e2e_generate import *  # noqa: F401,F403

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def site_url(ray_site_url):  # noqa: F811  (overrides the local site for the tests imported above)
    return ray_site_url


def test_the_footer_names_ray_serve(visit):
    from playwright.sync_api import expect

    page = visit.open()
    expect(page.locator("#status-line")).to_contain_text("Ray Serve at 127.0.0.1:")
    expect(page.locator("#status-line")).to_contain_text("decoder 2 running")

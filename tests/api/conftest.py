"""API tests: gradio_client against the launched site (every public api_name, Stop, bad input)."""
from __future__ import annotations

import pytest
from gradio_client import Client

from tests.api.site_checks import site_url  # noqa: F401  (fixture)


@pytest.fixture(scope="session")
def client(site_url):  # noqa: F811
    client = Client(site_url, verbose=False, download_files=False)
    yield client
    client.close()  # ends its heartbeat stream, which would otherwise hold up the site's shutdown

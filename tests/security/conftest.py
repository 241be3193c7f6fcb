"""Security tests: file routes, upload limit, what error responses reveal, sha256 checks of model sources."""
from __future__ import annotations

from tests.api.site_checks import site_url  # noqa: F401  (fixture; importing it also plants the env canary)

"""What the running site hands out over HTTP: no file outside its own assets, no upload over 5 MB, and no
traceback or environment secret in any error response."""
from __future__ import annotations

import json
import os

import httpx
import pytest

from models.paths import REPO_ROOT
from tests.api.site_checks import CANARY_ENV, CANARY_VALUE, assert_healthy, assert_no_leaks, rest_call

pytestmark = pytest.mark.integration

PASSWD_MARK = "root:x:0:0"
APP_PY_MARK = "def build_site"


def _model_file() -> str:
    """A real file in the model cache the site serves from (it must not be downloadable)."""
    root = os.environ.get("LAB_MODEL_DIR") or os.path.expanduser("~/.cache/llm-startup-lab")
    return os.path.join(root, "onnx", "minilm-l6-v2", "config.json")


FORBIDDEN_PATHS = [
    "gradio_api/file=/etc/passwd",
    "file=/etc/passwd",
    "gradio_api/file=%2Fetc%2Fpasswd",
    "gradio_api/file=//etc/passwd",
    "gradio_api/file=..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "gradio_api/file=..%252f..%252f..%252fetc%252fpasswd",
    "gradio_api/file=%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "gradio_api/file=/tmp/gradio/..%2f..%2fetc%2fpasswd",
    "gradio_api/file=../../../../etc/passwd",
    "static/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "assets/..%2f..%2f..%2fapp.py",
    "gradio_api/file=app.py",
    f"gradio_api/file={REPO_ROOT}/app.py",
    f"file={REPO_ROOT}/app.py",
    f"gradio_api/file={REPO_ROOT}/.git/config",
    "gradio_api/file=/proc/self/environ",
    "gradio_api/file={model_file}",
    "gradio_api/file=..%2f..%2f..%2f..%2f..%2f..%2f{model_file}",
]


@pytest.fixture(scope="module")
def http(site_url):
    with httpx.Client(base_url=site_url, timeout=30) as session:
        yield session


@pytest.mark.parametrize("path", FORBIDDEN_PATHS)
def test_files_outside_the_app_are_refused(http, path):
    response = http.get(path.format(model_file=_model_file()))
    assert response.status_code in (400, 403, 404), f"{path} answered {response.status_code}"
    body = response.text
    assert PASSWD_MARK not in body and APP_PY_MARK not in body and '"model_type"' not in body
    assert_no_leaks(body)
    assert CANARY_VALUE not in body


def test_the_file_route_does_serve_the_apps_own_uploads(http):
    """The control for the refusals above: a file the app itself stored is served."""
    uploaded = http.post("gradio_api/upload", files={"files": ("ok.csv", b"text\nhello\n", "text/csv")})
    assert uploaded.status_code == 200
    path = uploaded.json()[0]
    served = http.get(f"gradio_api/file={path}")
    assert served.status_code == 200 and served.content == b"text\nhello\n"


def test_uploads_over_5_mb_are_refused_with_a_clear_message(http, site_url):
    six_mb = os.urandom(6 * 1024 * 1024)
    response = http.post("gradio_api/upload", files={"files": ("big.csv", six_mb, "text/csv")})
    assert response.status_code == 413
    assert "maximum allowed size" in response.text and "5242880" in response.text
    assert_no_leaks(response.text)
    below = http.post("gradio_api/upload", files={"files": ("fine.csv", b"x" * (4 * 1024 * 1024), "text/csv")})
    assert below.status_code == 200
    assert_healthy(site_url)


BAD_CALLS = [
    ("generate", ["", "chat", 4, 0, 50, 0.95, 1.1, 1, "", ""]),
    ("generate", ["hi", "chat", "nan", 0, 50, 0.95, 1.1, 1, "", ""]),
    ("generate", ["hi", "chat", 4, 0, 50, 0.95, 1.1, "abc", "", ""]),
    ("generate", [{"nested": ["x"]}]),
    ("translate", ["hello", "en", "xx"]),
    ("translate", [None, None, None]),
    ("attention", ["x", "minilm-l6-v2", "nan", -1]),
    ("attention", ["x", "minilm-l6-v2", 0]),
    ("classify", [None]),
    ("classify", []),
    ("estimate_training", ["x", "2e12", "H100-80GB", 8, "", "", "", "custom", "on-demand", 1.2, 0.4, "", ""]),
    ("estimate_training", ["7e9", "2e12", "H100-80GB", "nan", "", "", "", "custom", "on-demand", 1.2, 0.4, "", ""]),
    ("estimate_training", ["7e9", "2e12", "H100-80GB", 10**30, "", "", "", "custom", "on-demand", 1.2, 0.4, "", ""]),
    ("no_such_api", ["x"]),
]


@pytest.mark.parametrize("api_name, data", BAD_CALLS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BAD_CALLS)])
def test_error_responses_reveal_no_traceback_or_secret(http, site_url, api_name, data):
    status, text = rest_call(http, api_name, data)
    assert status != 200 or "event: error" in text, f"expected an error, got {text[:300]!r}"
    assert_no_leaks(text)
    assert str(REPO_ROOT) not in text, "a server path leaked"
    assert_healthy(site_url)


@pytest.mark.parametrize("method, path, body", [
    pytest.param("POST", "gradio_api/call/generate", b"{not json", id="invalid-json"),
    pytest.param("POST", "gradio_api/queue/join",
                 json.dumps({"data": "x", "fn_index": 999, "session_hash": "abc"}).encode(), id="join-bad-data"),
    pytest.param("POST", "gradio_api/queue/join",
                 json.dumps({"data": [], "fn_index": 999, "session_hash": "abc"}).encode(), id="join-unknown-fn"),
    pytest.param("POST", "gradio_api/upload", b"--x\r\nnot multipart", id="upload-not-multipart"),
    pytest.param("GET", "no/such/page", b"", id="unknown-page"),
    pytest.param("GET", "gradio_api/info?" + "x=" * 3000, b"", id="long-query"),
])
def test_malformed_requests_get_no_traceback(http, site_url, method, path, body):
    response = http.request(method, path, content=body, headers={"content-type": "application/json"})
    assert response.status_code >= 400 or path.startswith("gradio_api/info")
    assert_no_leaks(response.text)
    assert_healthy(site_url)


def test_the_site_config_and_api_info_reveal_no_environment_secret(http):
    assert os.environ.get(CANARY_ENV) == CANARY_VALUE  # planted before the site started (unless LAB_SITE_URL)
    for path in ("config", "gradio_api/info", "health", ""):
        response = http.get(path)
        assert response.status_code == 200, path
        assert_no_leaks(response.text)

"""A whole local cluster for the Ray-backend tests: `scripts/cluster.sh start` (Ray head on 127.0.0.1, the Serve
apps, the Gradio front with LAB_BACKEND=ray) on free ports, and `scripts/cluster.sh stop` at the end of the
session, also when a test fails. The API and the browser modules both import `ray_site_url`; they share one
cluster (started by whichever asks first), so there is never more than one. LAB_RAY_SITE_URL points the tests
at a cluster front that is already running instead.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 480  # head + 5 replicas loading their models + the front, on a busy 2-core box: ~3 min
SCRIPT = [str(REPO / "scripts" / "cluster.sh")]
_cluster: dict = {}  # the one cluster of this test session: its environment and URL


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start() -> str:
    env = dict(os.environ, LAB_RAY_PORT=str(_free_port()), GRADIO_SERVER_PORT=str(_free_port()),
               LAB_CLUSTER_DIR=str(REPO / "artifacts" / "cluster-test"), VENV=str(Path(sys.executable).parent.parent))
    _cluster["env"] = env
    started = subprocess.run(SCRIPT + ["start"], cwd=REPO, env=env, capture_output=True, text=True,
                             timeout=START_TIMEOUT_S)
    if started.returncode != 0:
        raise RuntimeError(f"scripts/cluster.sh start failed:\n{started.stdout[-3000:]}\n{started.stderr[-3000:]}")
    _cluster["url"] = f"http://127.0.0.1:{env['GRADIO_SERVER_PORT']}/"
    return _cluster["url"]


def _stop() -> None:
    env = _cluster.pop("env", None)
    _cluster.pop("url", None)
    if env is not None:
        subprocess.run(SCRIPT + ["stop"], cwd=REPO, env=env, capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def ray_site_url() -> str:
    external = os.environ.get("LAB_RAY_SITE_URL")
    if external:
        yield external.rstrip("/") + "/"
        return
    try:
        yield _cluster.get("url") or _start()
    finally:
        _stop()  # the first teardown stops it; the other module's finds nothing left to stop

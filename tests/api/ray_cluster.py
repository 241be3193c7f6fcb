"""A whole local cluster for the Ray-backend tests: `scripts/cluster.sh start` (Ray head on 127.0.0.1, the Serve
apps, the Gradio front with LAB_BACKEND=ray) on free ports, and `scripts/cluster.sh stop` afterwards, also when
a test fails. LAB_RAY_SITE_URL points the tests at a cluster front that is already running instead.
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def ray_site_url() -> str:
    external = os.environ.get("LAB_RAY_SITE_URL")
    if external:
        yield external.rstrip("/") + "/"
        return
    run_dir = REPO / "artifacts" / "cluster-test"
    env = dict(os.environ, LAB_RAY_PORT=str(_free_port()), GRADIO_SERVER_PORT=str(_free_port()),
               LAB_CLUSTER_DIR=str(run_dir), VENV=str(Path(sys.executable).parent.parent))
    script = [str(REPO / "scripts" / "cluster.sh")]
    try:
        started = subprocess.run(script + ["start"], cwd=REPO, env=env, capture_output=True, text=True,
                                 timeout=START_TIMEOUT_S)
        if started.returncode != 0:
            raise RuntimeError(f"scripts/cluster.sh start failed:\n{started.stdout[-3000:]}\n{started.stderr[-3000:]}")
        yield f"http://127.0.0.1:{env['GRADIO_SERVER_PORT']}/"
    finally:
        subprocess.run(script + ["stop"], cwd=REPO, env=env, capture_output=True, timeout=120)

"""Load every served ONNX session once (at start-up, in the background)."""
from __future__ import annotations

import logging

from models.registry import REGISTRY
from models.runtime import RuntimeUnavailable, get_session

log = logging.getLogger(__name__)


def load_all() -> None:
    """Warm whatever serves the models: these sessions (local backend) or the cluster's handles (ray)."""
    from models.backend import get_backend

    get_backend().warm_up()


def load_sessions() -> None:
    for model_id in REGISTRY:
        try:
            get_session(model_id)
        except (RuntimeUnavailable, OSError) as exc:  # the status line and /health report what is missing
            log.warning("could not load %s: %s", model_id, exc)

"""Load every served ONNX session once (at start-up, in the background)."""
from __future__ import annotations

import logging

from models.registry import REGISTRY
from models.runtime import RuntimeUnavailable, get_session

log = logging.getLogger(__name__)


def load_all() -> None:
    for model_id in REGISTRY:
        try:
            get_session(model_id)
        except (RuntimeUnavailable, OSError) as exc:  # the status line and /health report what is missing
            log.warning("could not load %s: %s", model_id, exc)

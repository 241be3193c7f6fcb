"""How many decode loops run right now, per kind: /health shows them (Stop tests and the soak test use
them to prove that cancelled requests really stop and nothing is left running)."""
from __future__ import annotations

import threading


class ActiveCounter:
    def __init__(self):
        self._lock = threading.Lock()
        self.value = 0

    def __enter__(self):
        with self._lock:
            self.value += 1

    def __exit__(self, *exc):
        with self._lock:
            self.value -= 1


GENERATIONS = ActiveCounter()
TRANSLATIONS = ActiveCounter()

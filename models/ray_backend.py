"""The `ray` backend: the Gradio front's side of the Serve deployments in models/ray_app.py.

Calls go through Serve deployment handles (power-of-two-choices routing across replicas, streaming,
cancellation). This module makes a remote call behave exactly like the local one:
- errors raised by the library in a replica (ValueError with a message for the visitor, RuntimeUnavailable)
  come back as the same exception type and message, never as Ray's wrapper with a remote traceback;
- a request whose replica died before it produced anything (queued there, or its process was killed) is
  sent again, to a live replica; a stream that had already started ends with a clear ReplicaLost message;
- closing the stream (Gradio cancels the job when the visitor presses Stop) cancels the remote call, so the
  replica's decode loop stops too.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import ray
from ray import serve
from ray.exceptions import RayActorError, RayTaskError, TaskCancelledError
from ray.serve.exceptions import DeploymentUnavailableError, RequestCancelledError

from models.backend import ModelInfo
from models.generation import GENERATION_MODEL, Update
from models.runtime import RuntimeUnavailable

# Attempts for a request that has not started: a killed replica's queue is re-sent while Serve notices the
# death (well under a second here) and routes to the survivors or the restarted replica.
ATTEMPTS = 6
BACKOFF_S = (0.1, 0.3, 0.6, 1.0, 2.0)
CALL_TIMEOUT_S = 600
LOST_ERRORS = (RayActorError, DeploymentUnavailableError)


class ReplicaLost(ValueError):
    """A model replica died in the middle of a streamed answer. A ValueError, so every demo's existing
    bad-input path shows it as a clear message (gr.Error) instead of a generic error."""


def _unwrap(exc: RayTaskError) -> Exception:
    """The library's own exception (same type and message) instead of Ray's wrapper with a remote traceback."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, (ValueError, RuntimeError)):
        cause.__traceback__ = None
        return cause
    return RuntimeUnavailable(f"the model server failed: {type(cause or exc).__name__}")


def _lost_message(what: str) -> str:
    return (f"the model worker serving this {what} stopped in the middle of it (its replica is being restarted); "
            "the text so far is kept — press the button again to retry")


def apply_delta(update: Update, delta: dict) -> Update:
    """The front's copy of the replica's Update after one models.ray_app.update_delta message."""
    update.text = update.text + delta["text"] if delta["append"] else delta["text"]
    update.tokens.extend(delta["tokens"])
    for key in ("ttft_ms", "tokens_per_s", "n_tokens", "finish_reason", "note"):
        setattr(update, key, delta[key])
    return update


class RayBackend:
    name = "ray"

    def __init__(self, address: str, app_suffix: str = ""):
        self.address = address
        self.app_suffix = app_suffix  # another copy of the apps (models.ray_app.deploy(suffix=...)): benchmarks
        self._lock = threading.Lock()
        self._handles: dict[str, serve.handle.DeploymentHandle] = {}
        self._connected = False
        self._stats_cache: tuple[float, dict] | None = None
        self.retries = 0  # requests re-sent after a replica died before answering (observability, tests)

    # ------------------------------------------------------------------ connection

    def _connect(self) -> None:
        with self._lock:
            if not self._connected:
                try:
                    ray.init(address=self.address, namespace="serve", log_to_driver=False, ignore_reinit_error=True)
                except (ConnectionError, RuntimeError) as exc:
                    raise RuntimeUnavailable(f"cannot reach the Ray cluster at {self.address} ({exc}); start it "
                                             "with `make cluster` or point LAB_RAY_ADDRESS at it") from None
                self._connected = True

    def handle(self, app: str):
        self._connect()
        with self._lock:
            if app not in self._handles:
                self._handles[app] = serve.get_app_handle(app + self.app_suffix)
            return self._handles[app]

    # ------------------------------------------------------------------ calls with retry

    def _unary(self, app: str, method: str, *args):
        for attempt in range(ATTEMPTS):
            try:
                return getattr(self.handle(app), method).remote(*args).result(timeout_s=CALL_TIMEOUT_S)
            except RayTaskError as exc:
                raise _unwrap(exc) from None
            except LOST_ERRORS:
                if attempt == ATTEMPTS - 1:
                    raise RuntimeUnavailable(f"no {app} replica answered after {ATTEMPTS} tries; "
                                             "the cluster is restarting it, try again shortly") from None
                self.retries += 1
                time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])

    def _stream(self, app: str, method: str, what: str, *args) -> Iterator:
        for attempt in range(ATTEMPTS):
            response = getattr(self.handle(app).options(stream=True), method).remote(*args)
            started = False
            try:
                for item in response:
                    started = True
                    yield item
                return
            except RayTaskError as exc:
                raise _unwrap(exc) from None
            except (TaskCancelledError, RequestCancelledError):
                return
            except LOST_ERRORS:
                if started:
                    raise ReplicaLost(_lost_message(what)) from None
                if attempt == ATTEMPTS - 1:
                    raise RuntimeUnavailable(f"no {app} replica answered after {ATTEMPTS} tries; "
                                             "the cluster is restarting it, try again shortly") from None
                self.retries += 1
                time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
            finally:
                response.cancel()  # no-op when the stream is done; stops the replica when the visitor did

    # ------------------------------------------------------------------ the backend interface

    def generate(self, prompt, settings, mode="chat", history=None, system_prompt="",
                 should_stop: Callable[[], bool] | None = None, alternatives=5, model_id=None) -> Iterator[Update]:
        if model_id not in (None, GENERATION_MODEL):
            raise ValueError(f"the cluster serves {GENERATION_MODEL} for generation, not {model_id!r}")
        update = Update(text="")
        for delta in self._stream("decoder", "generate", "answer", prompt, settings, mode, history, system_prompt,
                                  alternatives):
            yield apply_delta(update, delta)
            if should_stop and should_stop():
                return  # closing the stream cancels it on the replica

    def translate_stream(self, text, source, target, should_stop=None):
        for update in self._stream("translator", "translate", "translation", text, source, target):
            yield update
            if should_stop and should_stop():
                return

    def classify_one(self, text):
        return self._unary("classifier", "classify", text)

    def saliency(self, text):
        return self._unary("classifier", "saliency", text)

    def batch_rows(self, texts, progress=None, chunk: int = 256):
        """Chunks go out at once, so every classifier replica works on the file; progress as they finish."""
        from models.sentiment import validate_texts

        texts = validate_texts(texts)
        chunks = [texts[i:i + chunk] for i in range(0, len(texts), chunk)]
        handle = self.handle("classifier")
        responses = [handle.batch_rows.remote(part) for part in chunks]
        rows, done = [], 0
        for part, response in zip(chunks, responses):
            try:
                rows.extend(response.result(timeout_s=CALL_TIMEOUT_S))
            except RayTaskError as exc:
                raise _unwrap(exc) from None
            except LOST_ERRORS:  # that chunk's replica died: run it again (rows are independent)
                rows.extend(self._unary("classifier", "batch_rows", part))
            done += len(part)
            if progress:
                progress(done, len(texts))
        return rows

    def attention_for_text(self, text, model_id, max_tokens=None):
        from models.attention import MAX_TOKENS
        from models.registry import MINILM

        app = "classifier" if model_id == MINILM.id else "decoder"
        return self._unary(app, "attention", text, model_id, max_tokens or MAX_TOKENS)

    def translation_attention(self, text, source, target):
        return self._unary("translator", "translation_attention", text, source, target)

    # ------------------------------------------------------------------ status

    def replicas(self) -> list[dict]:
        from models.ray_app import STATS_ACTOR, STATS_NAMESPACE

        self._connect()
        try:
            actor = ray.get_actor(STATS_ACTOR, namespace=STATS_NAMESPACE)
            return ray.get(actor.snapshot.remote(), timeout=5)
        except (ValueError, ray.exceptions.GetTimeoutError):
            return []

    def model_info(self, model_id: str) -> ModelInfo:
        for replica in self.replicas():
            if model_id in replica["models"]:
                entry = replica["models"][model_id]
                return ModelInfo(entry["provider"], entry["precision"])
        return ModelInfo("ray replica", "unknown")  # nothing reported yet: the badge still renders

    def active_generations(self) -> int:
        return sum(r["active"] for r in self.replicas() if r["deployment"] in ("decoder", "translator")
                   and r["app"] == r["deployment"] + self.app_suffix)

    def health(self) -> dict:
        """Backend section of /health: Serve's application status and replica counts, plus each replica."""
        from models.ray_app import cluster_status

        try:
            self._connect()
            status = cluster_status()
        except Exception as exc:  # an unreachable cluster is a degraded site, not a 500
            return {"name": self.name, "address": self.address, "ok": False, "error": str(exc)[:300]}
        apps = status["applications"]
        ok = all(app in apps and apps[app]["status"] == "HEALTHY" for app in ("decoder", "classifier", "translator"))
        return {"name": self.name, "address": self.address, "ok": ok, "applications": apps,
                "replicas": status["replicas"], "retries": self.retries}

    def warm_up(self) -> None:
        for app in ("decoder", "classifier", "translator"):
            try:
                self.handle(app)
            except Exception:  # reported by /health; the first request retries the connection
                return

"""Ray Serve deployments of the site's models: the `ray` backend's server side (models/ray_backend.py is the client).

One Serve application per model family, each its own ingress (no HTTP route: the Gradio front calls them
through deployment handles, which stream and cancel natively):
- `decoder`    SmolLM2 running models.generation.generate (the decode engine), streaming token deltas; its
               attention view too (the same session).
- `classifier` the sentiment graph behind `@serve.batch` (concurrent requests share one ONNX run), saliency,
               batch mode, and MiniLM attention.
- `translator` Qwen2.5 running models.translate.translate_stream, and the translation-alignment view.
Every replica runs onnxruntime with ORT_NUM_THREADS from its runtime_env (1 for decoder/classifier), and
reports itself (pid, node, active requests, sessions) to one small named actor every second, which is how
/health can count active decode loops across replicas and name the process a fault test kills.

`python -m models.ray_app deploy|status|shutdown` (scripts/cluster.sh calls it); replica counts and
autoscaling come from the flags or LAB_RAY_<KIND>_REPLICAS / LAB_RAY_<KIND>_AUTOSCALE=min:max.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace

import ray
from ray import serve

STATS_ACTOR, STATS_NAMESPACE = "lab_replica_stats", "lab"
REPORT_EVERY_S = 1.0
STALE_AFTER_S = 3.5  # a replica silent this long is gone (killed): its counts no longer show
_DONE = object()


@dataclass(frozen=True)
class ReplicaSettings:
    replicas: int
    threads: int  # ORT_NUM_THREADS in the replica, and the logical CPUs Ray reserves for it
    max_ongoing: int  # requests one replica takes at once (the decode engine batches concurrent streams)
    autoscale: tuple[int, int] | None = None  # (min, max) replicas instead of a fixed count


DEFAULTS = {
    "decoder": ReplicaSettings(replicas=2, threads=1, max_ongoing=8),
    "classifier": ReplicaSettings(replicas=2, threads=1, max_ongoing=32),  # >= the batch size, or no batching
    "translator": ReplicaSettings(replicas=1, threads=2, max_ongoing=4),  # 0.5B model: one copy per machine
}


def settings_from_env(kind: str, env=os.environ) -> ReplicaSettings:
    prefix = f"LAB_RAY_{kind.upper()}_"
    base = DEFAULTS[kind]
    auto = env.get(prefix + "AUTOSCALE", "").strip()
    try:
        autoscale = tuple(int(x) for x in auto.split(":")) if auto else None
        settings = replace(base, replicas=int(env.get(prefix + "REPLICAS", base.replicas)),
                           threads=int(env.get(prefix + "THREADS", base.threads)), autoscale=autoscale)
    except ValueError:
        raise ValueError(f"{prefix}REPLICAS/THREADS must be integers and {prefix}AUTOSCALE min:max") from None
    if settings.replicas < 1 or settings.threads < 1 or (autoscale and (len(autoscale) != 2 or not 0 <= autoscale[0] <= autoscale[1])):
        raise ValueError(f"{kind}: replicas and threads must be >= 1, autoscale min:max with 0 <= min <= max")
    return settings


# --------------------------------------------------------------------------- replica bookkeeping


@ray.remote(num_cpus=0)
class ReplicaStats:
    """Last report of every replica, stamped on arrival (one clock, so staleness needs no synced clocks)."""

    def __init__(self):
        self.replicas: dict[str, dict] = {}

    def report(self, key: str, entry: dict) -> None:
        self.replicas[key] = dict(entry, seen=time.time())

    def snapshot(self) -> list[dict]:
        now = time.time()
        self.replicas = {k: v for k, v in self.replicas.items() if now - v["seen"] < 60}
        return [dict(v, key=k, age_s=round(now - v["seen"], 2)) for k, v in self.replicas.items()
                if now - v["seen"] < STALE_AFTER_S]


def stats_actor():
    # detached: it must outlive whichever replica (or deploy script) happened to create it
    return ReplicaStats.options(name=STATS_ACTOR, namespace=STATS_NAMESPACE, lifetime="detached",
                                get_if_exists=True).remote()


class _Replica:
    """Shared by the deployments: a thread pool for the (blocking) onnxruntime calls and the heartbeat."""

    kind = ""

    def __init__(self, sessions: dict):
        self.sessions = {model_id: {"provider": info.provider, "precision": info.precision}
                         for model_id, info in sessions.items()}
        self.active = 0
        self._lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=DEFAULTS[self.kind].max_ongoing + 2,
                                           thread_name_prefix=self.kind)
        replica = serve.get_replica_context().replica_id
        self.key, self.app = replica.unique_id, replica.deployment_id.app_name
        self.stats = stats_actor()
        threading.Thread(target=self._heartbeat, daemon=True, name="replica-heartbeat").start()

    def _entry(self) -> dict:
        return {"deployment": self.kind, "app": self.app, "pid": os.getpid(), "node": ray.util.get_node_ip_address(),
                "active": self.active, "threads": os.environ.get("ORT_NUM_THREADS", ""), "models": self.sessions}

    def _report(self) -> None:
        self.stats.report.remote(self.key, self._entry())  # fire and forget: never on a request's path

    def _heartbeat(self) -> None:
        while True:
            self._report()
            time.sleep(REPORT_EVERY_S)

    def _count(self, delta: int) -> None:
        with self._lock:
            self.active += delta
        self._report()

    async def _call(self, fn, *args):
        """A blocking call on the replica's pool; counted as active while it runs."""
        self._count(+1)
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
        finally:
            self._count(-1)

    async def _stream(self, make_iterator, convert):
        """Yield convert(item) for each item of a blocking iterator, one next() at a time on the pool.

        When the caller cancels (the visitor pressed Stop: Serve cancels this coroutine), should_stop turns
        true for the decode loop, and the iterator is closed as soon as the step in flight returns, so the
        model stops within one token and the active count drops."""
        stop = threading.Event()
        self._count(+1)
        iterator, pending = None, None
        try:
            iterator = make_iterator(stop.is_set)
            while True:
                pending = self.executor.submit(next, iterator, _DONE)
                item = await asyncio.wrap_future(pending)
                pending = None
                if item is _DONE:
                    return
                yield convert(item)
        finally:
            stop.set()
            self._finish(iterator, pending)

    def _finish(self, iterator, pending: Future | None) -> None:
        def close(_=None):
            try:
                if iterator is not None:
                    iterator.close()
            finally:
                self._count(-1)

        if pending is not None and not pending.done():
            pending.add_done_callback(close)  # runs on the worker thread right after its step returns
        else:
            close()

    def describe(self) -> dict:
        return self._entry()


def update_delta(update, sent: dict) -> dict:
    """The part of a generation Update the front has not seen yet (the full token list every step would
    send O(n^2) bytes for a long answer). `sent` tracks what went out; text may shrink at a stop string."""
    append = update.text.startswith(sent["text"])
    delta = {"append": append, "text": update.text[len(sent["text"]):] if append else update.text,
             "tokens": update.tokens[sent["tokens"]:], "ttft_ms": update.ttft_ms,
             "tokens_per_s": update.tokens_per_s, "n_tokens": update.n_tokens,
             "finish_reason": update.finish_reason, "note": update.note}
    sent["text"], sent["tokens"] = update.text, len(update.tokens)
    return delta


class Decoder(_Replica):
    kind = "decoder"

    def __init__(self):
        from models.generation import GENERATION_MODEL, get_generator

        self.model_id = GENERATION_MODEL
        super().__init__({self.model_id: get_generator(self.model_id).info})  # RUNNING only once it can serve

    async def generate(self, prompt, settings, mode="chat", history=None, system_prompt="", alternatives=5):
        from models.generation import generate

        sent = {"text": "", "tokens": 0}
        async for delta in self._stream(
                lambda should_stop: generate(prompt, settings, mode=mode, history=history,
                                             system_prompt=system_prompt, should_stop=should_stop,
                                             alternatives=alternatives, model_id=self.model_id),
                lambda update: update_delta(update, sent)):
            yield delta

    async def attention(self, text, model_id, max_tokens):
        from models.attention import attention_for_text

        return await self._call(attention_for_text, text, model_id, max_tokens)


class Classifier(_Replica):
    kind = "classifier"

    def __init__(self):
        from models import sentiment
        from models.runtime import get_session_info

        super().__init__({sentiment.MODEL_ID: get_session_info(sentiment.MODEL_ID)[1]})

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)  # the local batcher's 32 rows / 5 ms
    async def _classify_batch(self, texts: list[str]) -> list[tuple[dict, str]]:
        from models import sentiment

        probs, truncated = await self._call(sentiment.predict_proba, texts)
        return [(sentiment.as_dict(p), sentiment.truncation_note(t)) for p, t in zip(probs, truncated)]

    async def classify(self, text: str) -> tuple[dict, str]:
        from models.sentiment import validate_texts

        validate_texts([text])  # bad input fails alone, never inside a shared batch
        return await self._classify_batch(text)

    async def saliency(self, text: str):
        from models.sentiment import saliency

        return await self._call(saliency, text)

    async def batch_rows(self, texts: list[str]):
        from models.batch_io import batch_rows

        return await self._call(batch_rows, texts)

    async def attention(self, text, model_id, max_tokens):
        from models.attention import attention_for_text

        return await self._call(attention_for_text, text, model_id, max_tokens)


class Translator(_Replica):
    kind = "translator"

    def __init__(self):
        from models.translate import TRANSLATION_MODEL, get_translator

        super().__init__({TRANSLATION_MODEL: get_translator().info})

    async def translate(self, text, source, target):
        from models.translate import translate_stream

        async for update in self._stream(
                lambda should_stop: translate_stream(text, source, target, should_stop=should_stop),
                lambda update: update):
            yield update

    async def translation_attention(self, text, source, target):
        from models.attention import translation_attention

        return await self._call(translation_attention, text, source, target)


REPLICA_CLASSES = {"decoder": Decoder, "classifier": Classifier, "translator": Translator}


def deployment_options(kind: str, settings: ReplicaSettings) -> dict:
    options = {
        "name": kind,
        "max_ongoing_requests": settings.max_ongoing,
        # Serve restarts a replica whose process died at once; these catch a hung one within ~12 s
        "health_check_period_s": 2, "health_check_timeout_s": 10,
        "ray_actor_options": {"num_cpus": settings.threads,
                              "runtime_env": {"env_vars": {"ORT_NUM_THREADS": str(settings.threads)}}},
    }
    if settings.autoscale:
        low, high = settings.autoscale
        options["autoscaling_config"] = {"min_replicas": low, "initial_replicas": max(low, 1), "max_replicas": high,
                                         "target_ongoing_requests": max(1, settings.max_ongoing // 2)}
    else:
        options["num_replicas"] = settings.replicas
    return options


def build_apps(kinds=tuple(REPLICA_CLASSES), overrides: dict | None = None) -> dict:
    """{app name: bound Serve application}; one app per model family."""
    apps = {}
    for kind in kinds:
        settings = (overrides or {}).get(kind) or settings_from_env(kind)
        apps[kind] = serve.deployment(REPLICA_CLASSES[kind]).options(**deployment_options(kind, settings)).bind()
    return apps


def deploy(address: str, kinds=tuple(REPLICA_CLASSES), overrides: dict | None = None, suffix: str = "") -> None:
    """Deploy (or update) the apps and return once their replicas run. A suffix deploys a second copy under
    other app names (the scaling benchmark runs "classifier" and "classifier-1" side by side)."""
    ray.init(address=address, namespace="serve", log_to_driver=False, ignore_reinit_error=True)
    serve.start(proxy_location="Disabled")  # no HTTP: the Gradio front is the one public URL
    stats_actor()
    for name, app in build_apps(kinds, overrides).items():
        serve.run(app, name=name + suffix, route_prefix=None, blocking=False)


def cluster_status() -> dict:
    """Serve's view (application/deployment status, replica counts by state) plus the replicas' reports."""
    status = serve.status()
    apps = {}
    for app_name, app in status.applications.items():
        for dep_name, dep in app.deployments.items():
            apps[app_name] = {"status": str(getattr(dep.status, "value", dep.status)),
                              "replica_states": {str(getattr(k, "value", k)): v for k, v in dep.replica_states.items()},
                              "message": dep.message}
    try:
        replicas = ray.get(ray.get_actor(STATS_ACTOR, namespace=STATS_NAMESPACE).snapshot.remote(), timeout=5)
    except (ValueError, ray.exceptions.GetTimeoutError):
        replicas = []
    return {"applications": apps, "replicas": replicas}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Deploy the site's models on a Ray cluster (Ray Serve)")
    parser.add_argument("command", choices=("deploy", "status", "shutdown"))
    parser.add_argument("--address", default=os.environ.get("LAB_RAY_ADDRESS", "127.0.0.1:6379"))
    parser.add_argument("--apps", default=",".join(REPLICA_CLASSES), help="comma-separated: decoder,classifier,translator")
    for kind in REPLICA_CLASSES:
        parser.add_argument(f"--{kind}-replicas", type=int, default=None)
    args = parser.parse_args(argv)
    if args.command == "deploy":
        kinds = tuple(k for k in args.apps.split(",") if k)
        unknown = set(kinds) - set(REPLICA_CLASSES)
        if unknown:
            parser.error(f"unknown app(s): {', '.join(sorted(unknown))}")
        overrides = {k: replace(settings_from_env(k), replicas=getattr(args, f"{k}_replicas"))
                     for k in kinds if getattr(args, f"{k}_replicas")}
        started = time.monotonic()
        deploy(args.address, kinds, overrides)
        print(f"deployed {', '.join(kinds)} in {time.monotonic() - started:.1f} s")
        for kind in kinds:
            print(f"  {kind}: {json.dumps(asdict(overrides.get(kind) or settings_from_env(kind)))}")
        return 0
    ray.init(address=args.address, namespace="serve", log_to_driver=False)
    if args.command == "status":
        print(json.dumps(cluster_status(), indent=2, default=str))
    else:
        serve.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

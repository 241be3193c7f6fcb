"""The one interface the demos call to run a model: in this process (`local`) or on a Ray Serve cluster (`ray`).

LAB_BACKEND=local (default: `make run`, a Hugging Face Space) runs today's in-process onnxruntime sessions.
LAB_BACKEND=ray with LAB_RAY_ADDRESS=host:port (default 127.0.0.1:6379) sends every model call to the Serve
deployments of models/ray_app.py, so this process stays a thin Gradio front (one front: Gradio's queue state
is per process) and the models scale out as replicas on as many machines as join the cluster.

Both implementations have the same signatures, yield the same update objects and raise the same errors
(ValueError with the library's message for bad input), so the demos cannot tell them apart.
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

BACKENDS = ("local", "ray")
DEFAULT_RAY_ADDRESS = "127.0.0.1:6379"


@dataclass(frozen=True)
class ModelInfo:
    """What the badges show: the provider and precision of the session that actually serves a model."""
    provider: str
    precision: str




def decoder_slots() -> int:
    """How many generate/translate streams the front runs at once (its Gradio concurrency limit). Local: the
    decode engine's slots (models.engine, LAB_DECODE_SLOTS); ray: what the decoder replicas take together
    (replicas x max_ongoing as `deploy` reads them from the same environment), or LAB_DECODER_SLOTS."""
    configured = os.environ.get("LAB_DECODER_SLOTS", "").strip()
    if configured:
        return max(1, int(configured))
    if backend_name() != "ray":
        from models.engine import engine_slots

        return engine_slots()
    from models.ray_app import settings_from_env

    settings = settings_from_env("decoder")
    return (settings.autoscale[1] if settings.autoscale else settings.replicas) * settings.max_ongoing


def backend_name() -> str:
    name = os.environ.get("LAB_BACKEND", "local").strip().lower() or "local"
    if name not in BACKENDS:
        raise ValueError(f"LAB_BACKEND={name!r} is not one of {', '.join(BACKENDS)}")
    return name


def ray_address() -> str:
    return os.environ.get("LAB_RAY_ADDRESS", "").strip() or DEFAULT_RAY_ADDRESS


class LocalBackend:
    """Today's behaviour: the models run in this process (the Space and `make run`)."""

    name = "local"

    def generate(self, prompt, settings, mode="chat", history=None, system_prompt="",
                 should_stop: Callable[[], bool] | None = None, alternatives=5, model_id=None):
        from models import generation

        return generation.generate(prompt, settings, mode=mode, history=history, system_prompt=system_prompt,
                                   should_stop=should_stop, alternatives=alternatives,
                                   model_id=model_id or generation.GENERATION_MODEL)

    def translate_stream(self, text, source, target, should_stop=None):
        from models.translate import translate_stream

        return translate_stream(text, source, target, should_stop=should_stop)

    def classify_one(self, text):
        from models import sentiment

        return sentiment.classify_one(text)

    def saliency(self, text):
        from models import sentiment

        return sentiment.saliency(text)

    def batch_rows(self, texts, progress=None):
        from models import batch_io

        return batch_io.batch_rows(texts, progress)

    def attention_for_text(self, text, model_id, max_tokens=None):
        extra = {"max_tokens": max_tokens} if max_tokens else {}
        return _attention_module().attention_for_text(text, model_id, **extra)

    def translation_attention(self, text, source, target):
        return _attention_module().translation_attention(text, source, target)

    def model_info(self, model_id: str) -> ModelInfo:
        """The session the model's own module serves from (the decoders' engines, else the runtime's)."""
        from models import generation, translate
        from models.runtime import get_session_info

        if model_id == generation.GENERATION_MODEL:
            info = generation.get_generator(model_id).info
        elif model_id == translate.TRANSLATION_MODEL:
            info = translate.get_translator().info
        else:
            info = get_session_info(model_id)[1]
        return ModelInfo(info.provider, info.precision)

    def warm_up(self) -> None:
        from models.warmup import load_sessions

        load_sessions()

    def health(self) -> dict:
        return {"name": self.name}

    def active_generations(self) -> int:
        """Sequences waiting or running in this process's decode engines."""
        from models.engine import active_sequences

        return active_sequences()


def _attention_module():
    # through sys.modules, so a stand-in module (the attention tab's tests) is honoured
    return importlib.import_module("models.attention")


@lru_cache(maxsize=None)
def _backend(name: str, address: str):
    if name == "ray":
        from models.ray_backend import RayBackend

        return RayBackend(address)
    return LocalBackend()


def get_backend():
    """The backend the settings choose (one instance per setting, so tests can switch with the env)."""
    name = backend_name()
    return _backend(name, ray_address() if name == "ray" else "")


# The functions the demos import: the same names and signatures as the models.* functions they replace.

def generate(prompt, settings, mode="chat", history=None, system_prompt="", should_stop=None, alternatives=5,
             model_id=None) -> Iterator:
    return get_backend().generate(prompt, settings, mode=mode, history=history, system_prompt=system_prompt,
                                  should_stop=should_stop, alternatives=alternatives, model_id=model_id)


def translate_stream(text, source, target, should_stop=None) -> Iterator:
    return get_backend().translate_stream(text, source, target, should_stop=should_stop)


def classify_one(text):
    return get_backend().classify_one(text)


def saliency(text):
    return get_backend().saliency(text)


def batch_rows(texts, progress=None):
    return get_backend().batch_rows(texts, progress)


def attention_for_text(text, model_id, max_tokens=None):
    return get_backend().attention_for_text(text, model_id, max_tokens)


def translation_attention(text, source, target):
    return get_backend().translation_attention(text, source, target)


def model_info(model_id: str) -> ModelInfo:
    return get_backend().model_info(model_id)

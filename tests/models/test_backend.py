"""The backend switch (LAB_BACKEND) and the pieces of the Ray backend that need no cluster: settings, the
streamed-update deltas, error unwrapping, deployment options and the footer text."""
from __future__ import annotations

import pytest

from models import backend
from models.generation import Update


def test_an_unknown_backend_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LAB_BACKEND", "kubernetes")
    with pytest.raises(ValueError, match="LAB_BACKEND='kubernetes' is not one of local, ray"):
        backend.get_backend()


def test_local_is_the_default_and_ray_reads_the_address(monkeypatch):
    monkeypatch.delenv("LAB_BACKEND", raising=False)
    assert backend.get_backend().name == "local"
    monkeypatch.setenv("LAB_BACKEND", "ray")
    monkeypatch.setenv("LAB_RAY_ADDRESS", "10.0.0.5:6379")
    chosen = backend.get_backend()
    assert chosen.name == "ray" and chosen.address == "10.0.0.5:6379"  # no connection until the first call


def test_local_backend_streams_what_models_generation_streams(tiny_llama, make_engine, monkeypatch):
    from models import generation
    from models.sampling import SamplingSettings

    lm = make_engine("tiny-llama", eos=False)
    monkeypatch.setattr(generation, "get_generator", lambda model_id=None: lm)
    monkeypatch.delenv("LAB_BACKEND", raising=False)
    settings = SamplingSettings(max_new_tokens=6, temperature=0)
    via_backend = [u.text for u in backend.generate("The cat", settings, mode="completion")]
    direct = [u.text for u in generation.generate("The cat", settings, mode="completion")]
    assert via_backend == direct and len(via_backend) == 6
    assert backend.model_info(generation.GENERATION_MODEL).provider == "CPUExecutionProvider"
    with pytest.raises(ValueError, match="empty"):
        list(backend.generate("  ", settings))


def test_update_deltas_rebuild_the_replicas_updates_exactly():
    from models.ray_app import update_delta
    from models.ray_backend import apply_delta

    replica = Update(text="")
    front = Update(text="")
    sent = {"text": "", "tokens": 0}
    steps = [("Hel", "Hel"), ("lo", "lo"), (" wor", " wor"), ("ld. END", "ld. END")]
    for i, (full_piece, token) in enumerate(steps, 1):
        replica.text += full_piece
        replica.tokens.append({"text": token, "alternatives": [(token, 0.9)]})
        replica.n_tokens, replica.tokens_per_s = i, 10.0 * i
        delta = update_delta(replica, sent)
        assert len(delta["tokens"]) == 1, "each message carries only the new token"
        apply_delta(front, delta)
        assert front.text == replica.text and front.tokens == replica.tokens
    replica.text, replica.finish_reason = "Hello world.", "stop_string"  # cut at the stop string: text shrinks
    apply_delta(front, update_delta(replica, sent))
    assert (front.text, front.finish_reason, front.n_tokens) == ("Hello world.", "stop_string", 4)


def test_a_replicas_value_error_comes_back_as_the_same_message_without_a_traceback():
    import ray

    from models.ray_backend import _unwrap

    try:
        raise ValueError("the prompt is empty: type something")
    except ValueError as cause:
        wrapped = ray.exceptions.RayTaskError("generate", "Traceback (most recent call last): ...", cause)
    error = _unwrap(wrapped)
    assert type(error) is ValueError and str(error) == "the prompt is empty: type something"


def test_replica_settings_from_the_environment_and_the_serve_options(monkeypatch):
    from models.ray_app import deployment_options, settings_from_env

    monkeypatch.setenv("LAB_RAY_DECODER_REPLICAS", "4")
    decoder = settings_from_env("decoder")
    options = deployment_options("decoder", decoder)
    assert options["num_replicas"] == 4 and "autoscaling_config" not in options
    assert options["ray_actor_options"]["runtime_env"]["env_vars"]["ORT_NUM_THREADS"] == "1"
    monkeypatch.setenv("LAB_RAY_CLASSIFIER_AUTOSCALE", "1:6")
    auto = deployment_options("classifier", settings_from_env("classifier"))
    assert "num_replicas" not in auto
    assert (auto["autoscaling_config"]["min_replicas"], auto["autoscaling_config"]["max_replicas"]) == (1, 6)
    monkeypatch.setenv("LAB_RAY_CLASSIFIER_AUTOSCALE", "6:1")
    with pytest.raises(ValueError, match="min:max"):
        settings_from_env("classifier")
    monkeypatch.setenv("LAB_RAY_DECODER_REPLICAS", "two")
    with pytest.raises(ValueError, match="integers"):
        settings_from_env("decoder")


def test_the_footer_names_the_backend_and_replica_states():
    from demos.status import backend_text

    assert backend_text({"name": "local"}) == "in-process models"
    assert backend_text({"name": "ray", "address": "h:1", "ok": False, "error": "x"}) == "Ray Serve at h:1: unreachable"
    apps = {"decoder": {"status": "UPSCALING", "replica_states": {"RUNNING": 1, "STARTING": 1}},
            "classifier": {"status": "HEALTHY", "replica_states": {"RUNNING": 2}}}
    text = backend_text({"name": "ray", "address": "h:1", "applications": apps})
    assert text == "Ray Serve at h:1: classifier 2 running [healthy]; decoder 1 running (1 starting) [upscaling]"


def test_the_front_runs_as_many_streams_as_the_decoder_replicas_take(monkeypatch):
    monkeypatch.delenv("LAB_DECODER_SLOTS", raising=False)
    monkeypatch.delenv("LAB_BACKEND", raising=False)
    monkeypatch.setenv("LAB_DECODE_SLOTS", "12")
    assert backend.decoder_slots() == 12  # local: as wide as the decode engine
    monkeypatch.setenv("LAB_BACKEND", "ray")
    monkeypatch.setenv("LAB_RAY_DECODER_REPLICAS", "3")
    assert backend.decoder_slots() == 3 * 8  # replicas x max_ongoing
    monkeypatch.setenv("LAB_RAY_DECODER_AUTOSCALE", "1:5")
    assert backend.decoder_slots() == 5 * 8
    monkeypatch.setenv("LAB_DECODER_SLOTS", "6")
    assert backend.decoder_slots() == 6

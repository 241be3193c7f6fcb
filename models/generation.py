"""Text generation for the Generate tab: chat or completion prompts, context trimming, streaming updates.

Everything here is plain Python over the decode engine (models.engine); demos/generate.py only renders what
this yields.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from models import runtime
from models.decoding import GenerationStats
from models.engine import Engine, get_engine
from models.sampling import SamplingSettings

GENERATION_MODEL = "smollm2-135m-instruct"
MAX_PROMPT_CHARS = 20_000
MAX_SYSTEM_CHARS = 4_000
MODES = ("chat", "completion")


def get_generator(model_id: str = GENERATION_MODEL) -> Engine:
    return get_engine(model_id)


@dataclass
class Update:
    text: str  # everything generated so far
    tokens: list[dict] = field(default_factory=list)  # per token: text, prob alternatives
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    n_tokens: int = 0
    finish_reason: str | None = None
    note: str = ""  # e.g. "trimmed the 2 oldest turns to fit the 8192-token context"


def validate_prompt(prompt: str) -> str:
    if prompt is None or not isinstance(prompt, str):
        raise ValueError("the prompt must be text")
    if "\x00" in prompt:
        prompt = prompt.replace("\x00", "")
    if not prompt.strip():
        raise ValueError("the prompt is empty: type something for the model to answer or continue")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(f"the prompt is {len(prompt):,} characters; the limit is {MAX_PROMPT_CHARS:,}")
    return prompt


def build_prompt(lm: Engine, mode: str, prompt: str, history: list[dict] | None = None,
                 system_prompt: str = "", reserve: int = 256) -> tuple[list[int], str]:
    """Token ids for the model and a note when something had to be trimmed to fit the context window."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    budget = lm.max_context - min(reserve, lm.max_context // 2)  # the prompt always keeps half the window
    tok = lm.tokenizer
    if mode == "completion":
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        if len(ids) > budget:
            return ids[-budget:], f"kept the last {budget} of {len(ids)} prompt tokens to fit the {lm.max_context}-token context"
        return ids, ""
    turns = [m for m in (history or []) if m.get("role") in ("user", "assistant") and isinstance(m.get("content"), str)]
    system = [{"role": "system", "content": system_prompt.strip()}] if system_prompt and system_prompt.strip() else []
    dropped = 0
    while True:
        messages = system + turns + [{"role": "user", "content": prompt}]
        ids = tok.apply_chat_template(messages, add_generation_prompt=True)
        if len(ids) <= budget or not turns:
            break
        turns = turns[2:] if len(turns) >= 2 else []  # drop the oldest user/assistant exchange
        dropped += 1
    note = f"trimmed the {dropped} oldest exchange(s) to fit the {lm.max_context}-token context" if dropped else ""
    if len(ids) > budget:  # a single message longer than the window: keep its end
        over = len(ids) - budget
        prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        prompt = tok.decode(prompt_ids[over:])
        ids = tok.apply_chat_template(system + [{"role": "user", "content": prompt}], add_generation_prompt=True)[-budget:]
        note = f"the message was longer than the {lm.max_context}-token context; kept its last part"
    return ids, note


def generate(prompt: str, settings: SamplingSettings, mode: str = "chat", history: list[dict] | None = None,
             system_prompt: str = "", should_stop: Callable[[], bool] | None = None,
             alternatives: int = 5, model_id: str = GENERATION_MODEL) -> Iterator[Update]:
    """Stream Updates while the model writes; validation errors raise ValueError before any work."""
    prompt = validate_prompt(prompt)
    if not isinstance(system_prompt, str):
        raise ValueError("the system prompt must be text")
    if len(system_prompt) > MAX_SYSTEM_CHARS:
        raise ValueError(f"the system prompt is {len(system_prompt):,} characters; the limit is {MAX_SYSTEM_CHARS:,}")
    if not isinstance(history, (list, type(None))):
        raise ValueError("history must be a list of messages")
    if history and sum(len(str(m.get("content", ""))) for m in history if isinstance(m, dict)) > 10 * MAX_PROMPT_CHARS:
        raise ValueError("the conversation is too long; press Clear to start a new one")
    settings.validate()
    lm = get_generator(model_id)
    runtime.check_loaded(lm.info.model_id)  # its file deleted or changed since loaded: a clear refusal, not garbage
    ids, note = build_prompt(lm, mode, prompt, history, system_prompt, reserve=settings.max_new_tokens)
    stats = GenerationStats()
    update = Update(text="", note=note)
    for step in lm.stream(ids, settings, should_stop=should_stop, alternatives=alternatives):
        stats.on_token()
        update.text += step.text
        if step.finish_reason != "eos":
            update.tokens.append({"text": step.text, "alternatives": step.alternatives})
        update.n_tokens = stats.tokens
        update.ttft_ms, update.tokens_per_s = stats.ttft_ms, stats.tokens_per_s
        if step.finish_reason:
            update.finish_reason = step.finish_reason
            if step.finish_reason == "stop_string":
                update.text = _cut_at_stop(update.text, settings.stop_strings)
        yield update


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> str:
    positions = [text.find(s) for s in stops if s in text]
    return text[: min(positions)] if positions else text

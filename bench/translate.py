"""`python -m bench translate`: decode speed of the Translate tab's model (Qwen2.5-Coder-0.5B-Instruct).

The prompt is the site's own translation prompt (models.translate.messages_for, English -> Chinese) for a
fixed paragraph; the decode loop, the contenders and the columns are those of `python -m bench generate`
(see bench/generate.py): every manifest variant through the site's engine (models.engine), llama.cpp on the
Q4_K_M GGUF when installed, and PyTorch `generate` on the same device in the same run.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from bench.common import Report
from bench.generate import concurrency_table, decoder_benchmark, table  # noqa: F401 - `python -m bench` prints

TRANSLATE_TEXT = (
    "Small teams can now build useful products on top of open language models. The hard part is no longer "
    "the model itself, but knowing what users need, keeping costs under control, and measuring every change."
)
SOURCE, TARGET = "en", "zh"


def run(tokens: int = 64, rounds: int = 3, streams: Sequence[int] = (), variants: list[str] | None = None,
        with_torch: bool = True, log: Callable[[str], None] = print) -> Report:
    from models.tokenization import get_tokenizer
    from models.translate import TRANSLATION_MODEL, messages_for

    tokenizer = get_tokenizer(TRANSLATION_MODEL)
    prompt_ids = list(tokenizer.apply_chat_template(messages_for(TRANSLATE_TEXT, SOURCE, TARGET),
                                                    add_generation_prompt=True))
    report = decoder_benchmark("translate", TRANSLATION_MODEL, prompt_ids, tokens, rounds, streams, variants,
                               with_torch, log)
    report.settings.update({"text": TRANSLATE_TEXT, "source": SOURCE, "target": TARGET})
    return report

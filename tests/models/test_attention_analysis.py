"""Attention maths on matrices small enough to check by hand."""
from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from models import attention_analysis as aa


def stack(*layers_of_heads) -> np.ndarray:
    """[layers][heads] of [T, T] lists -> float32 [L, H, T, T]."""
    return np.asarray(layers_of_heads, dtype=np.float32)


def random_attention(layers, heads, t, causal, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((layers, heads, t, t)).astype(np.float32) * 2
    if causal:
        logits[..., np.triu(np.ones((t, t), dtype=bool), k=1)] = -np.inf
    logits -= logits.max(-1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(-1, keepdims=True)


def causal_uniform(t):
    return np.tril(np.ones((t, t))) / np.arange(1, t + 1)[:, None]


# ------------------------------------------------------------------ statistics


def test_uniform_bidirectional_head_has_log2_t_bits_and_full_normalised_entropy():
    stats = aa.head_statistics(stack([np.full((4, 4), 0.25)]), causal=False)
    assert stats.entropy_bits[0, 0] == pytest.approx(2.0)
    assert stats.entropy_norm[0, 0] == pytest.approx(1.0)
    assert stats.mean_distance[0, 0] == pytest.approx(np.mean([1.5, 1.0, 1.0, 1.5]))


def test_causal_entropy_skips_forced_row_zero_and_normalisation_removes_the_short_row_bias():
    stats = aa.head_statistics(stack([causal_uniform(4)]), causal=True)
    # rows 1..3 are uniform over 2, 3, 4 keys: raw bits depend on the row length, normalised bits do not
    assert stats.entropy_bits[0, 0] == pytest.approx(np.mean(np.log2([2, 3, 4])))
    assert stats.entropy_norm[0, 0] == pytest.approx(1.0)
    assert stats.diagonal[0, 0] == pytest.approx(np.mean([1 / 2, 1 / 3, 1 / 4]))


def test_previous_token_head_is_recognised():
    t = 5
    prev = np.zeros((t, t))
    prev[0, 0] = 1
    prev[np.arange(1, t), np.arange(t - 1)] = 1
    stats = aa.head_statistics(stack([prev]), causal=True)
    assert stats.previous_token[0, 0] == pytest.approx(1.0)
    assert stats.diagonal[0, 0] == pytest.approx(0.0)
    assert stats.entropy_bits[0, 0] == pytest.approx(0.0)
    assert stats.mean_distance[0, 0] == pytest.approx(1.0)
    assert stats.sink_first[0, 0] == pytest.approx(1 / 4)  # only row 1's previous token is token 0


def test_first_token_sink_and_top_key_are_reported_per_head():
    t = 4
    sink = np.zeros((t, t))
    sink[:, 0] = 1
    to_last = np.zeros((t, t))
    to_last[:, -1] = 1  # a [SEP]-style sink on the last token
    stats = aa.head_statistics(stack([sink, to_last]), causal=False)
    assert stats.sink_first[0].tolist() == pytest.approx([1.0, 0.0])
    assert stats.top_key[0].tolist() == [0, 3]
    assert stats.top_key_share[0].tolist() == pytest.approx([1.0, 1.0])
    rows = stats.rows(["[CLS]", "a", "b", "[SEP]"])
    assert rows[1][0:2] == [0, 1] and rows[1][8] == "3:[SEP]"
    assert len(rows[0]) == len(aa.STAT_COLUMNS)


def test_statistics_have_one_value_per_layer_and_head():
    stats = aa.head_statistics(random_attention(3, 5, 16, causal=True), causal=True)
    for name in aa.STAT_COLUMNS[2:]:
        assert getattr(stats, name).shape == (3, 5)
    assert np.all((stats.entropy_norm >= 0) & (stats.entropy_norm <= 1 + 1e-6))


# ------------------------------------------------------------------ rollout


def test_rollout_matches_hand_computed_two_layer_causal_case():
    # layer 0: heads average to [[1, 0], [.5, .5]]; with the residual: [[1, 0], [.25, .75]]
    layer0 = [[[1, 0], [1, 0]], [[1, 0], [0, 1]]]
    # layer 1: [[1, 0], [.2, .8]] -> with the residual [[1, 0], [.1, .9]]
    layer1 = [[[1, 0], [0.2, 0.8]], [[1, 0], [0.2, 0.8]]]
    rolled = aa.attention_rollout(stack(layer0, layer1))
    np.testing.assert_allclose(rolled[0], [[1, 0], [0.25, 0.75]], atol=1e-6)
    # [[1, 0], [.1, .9]] @ [[1, 0], [.25, .75]] = [[1, 0], [.1 + .225, .675]]
    np.testing.assert_allclose(rolled[1], [[1, 0], [0.325, 0.675]], atol=1e-6)


def test_rollout_matches_hand_computed_two_layer_bidirectional_case():
    layer0 = [[[0.5, 0.5], [0.5, 0.5]]]  # -> with residual [[.75, .25], [.25, .75]]
    layer1 = [[[0.0, 1.0], [1.0, 0.0]]]  # -> with residual [[.5, .5], [.5, .5]]
    rolled = aa.attention_rollout(stack(layer0, layer1))
    np.testing.assert_allclose(rolled[1], [[0.5, 0.5], [0.5, 0.5]], atol=1e-6)
    plain = aa.attention_rollout(stack(layer0, layer1), residual=False)
    np.testing.assert_allclose(plain[1], np.array([[0, 1], [1, 0]]) @ np.full((2, 2), 0.5), atol=1e-6)


@pytest.mark.parametrize("causal", [True, False])
def test_rollout_rows_sum_to_one_and_causal_rollout_stays_causal(causal):
    rolled = aa.attention_rollout(random_attention(6, 4, 20, causal=causal, seed=3))
    np.testing.assert_allclose(rolled.sum(-1), 1.0, atol=1e-5)
    if causal:
        assert np.abs(np.triu(rolled, k=1)).max() < 1e-7


# ------------------------------------------------------------------ selection and token view


def test_select_matrix_averages_heads_or_layers_and_rejects_bad_indices():
    att = stack([np.eye(2), np.ones((2, 2)) / 2], [np.ones((2, 2)) / 2, np.ones((2, 2)) / 2])
    np.testing.assert_allclose(aa.select_matrix(att, 0, None), [[0.75, 0.25], [0.25, 0.75]])
    np.testing.assert_allclose(aa.select_matrix(att, 0, -1), [[0.75, 0.25], [0.25, 0.75]])
    np.testing.assert_allclose(aa.select_matrix(att, 0, 0), np.eye(2))
    np.testing.assert_allclose(aa.select_matrix(att, None, None), [[0.625, 0.375], [0.375, 0.625]])
    with pytest.raises(ValueError, match="layer 2 is out of range: this model has 2 layers"):
        aa.select_matrix(att, 2, 0)
    with pytest.raises(ValueError, match="head 5 is out of range"):
        aa.select_matrix(att, 1, 5)


def test_token_flow_sums_selected_rows_and_columns():
    m = np.array([[1.0, 0, 0], [0.5, 0.5, 0], [0.2, 0.3, 0.5]])
    flow = aa.token_flow(m, [2, 1, 2])
    assert flow.selected == [1, 2]
    np.testing.assert_allclose(flow.paid, [0.7, 0.8, 0.5])
    np.testing.assert_allclose(flow.received, [0.0, 0.5, 0.8])
    with pytest.raises(ValueError, match="out of range"):
        aa.token_flow(m, [3])
    with pytest.raises(ValueError, match="select at least one token"):
        aa.token_flow(m, [])


def test_paid_by_layer_gives_one_row_per_layer():
    att = random_attention(4, 3, 10, causal=True)
    by_layer = aa.paid_by_layer(att, [5, 9])
    assert by_layer.shape == (4, 10)
    np.testing.assert_allclose(by_layer.sum(-1), 2.0, atol=1e-5)  # two selected rows, each sums to 1


# ------------------------------------------------------------------ pooling


def test_bin_edges_cover_every_position_once():
    for t, bins in [(512, 64), (100, 7), (5, 64), (513, 32)]:
        edges = aa.bin_edges(t, bins)
        assert edges[0] == 0 and edges[-1] == t
        assert np.all(np.diff(edges) >= 1)
        assert len(edges) - 1 == min(t, bins)


def test_mass_pooling_matches_a_hand_computed_block_average():
    m = np.array([[1, 0, 0, 0], [0.5, 0.5, 0, 0], [0.2, 0.2, 0.6, 0], [0.1, 0.2, 0.3, 0.4]])
    pooled, edges = aa.pool_attention(m, 2)
    assert edges.tolist() == [0, 2, 4]
    np.testing.assert_allclose(pooled, [[1.0, 0.0], [0.35, 0.65]])
    maxed, _ = aa.pool_attention(m, 2, mode="max")
    np.testing.assert_allclose(maxed, [[1.0, 0.0], [0.2, 0.6]])


def test_pooling_keeps_row_sums_for_long_uneven_inputs():
    att = random_attention(2, 3, 100, causal=True)
    pooled, edges = aa.pool_attention(att, 7)
    assert pooled.shape == (2, 3, 7, 7)
    np.testing.assert_allclose(pooled.sum(-1), 1.0, atol=1e-5)
    assert len(aa.bin_labels([f"t{i}" for i in range(100)], edges)) == 7
    with pytest.raises(ValueError, match="unknown pooling mode"):
        aa.pool_attention(att, 7, mode="median")


def test_512_tokens_pool_to_64_bins():
    att = random_attention(1, 2, 512, causal=False)
    pooled, edges = aa.pool_attention(att, 64)
    assert pooled.shape == (1, 2, 64, 64)
    np.testing.assert_allclose(pooled.sum(-1), 1.0, atol=1e-4)
    assert aa.bin_labels([f"t{i}" for i in range(512)], edges)[1] == "t8 … t15 [8-15]"


# ------------------------------------------------------------------ translation alignment


def alignment_case():
    """T=6: prompt 0, source 1-2, separator 3, target 4-5. One layer, two heads."""
    t = 6
    head = causal_uniform(t)
    # step that writes token 4 is query 3; make it look at source token 2 (and the prompt)
    head[3] = [0.5, 0.0, 0.5, 0.0, 0, 0]
    head[4] = [0.2, 0.6, 0.2, 0.0, 0.0, 0]
    other = head.copy()
    return stack([head, other])


def test_alignment_uses_the_generating_step_and_renormalises_over_the_source():
    aligned = aa.translation_alignment(alignment_case(), (1, 3), (4, 6))
    assert aligned.target_positions == [4, 5] and aligned.source_positions == [1, 2]
    np.testing.assert_allclose(aligned.matrix.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(aligned.matrix[0], [0.0, 1.0])  # query 3: 0.5 on token 2 only
    np.testing.assert_allclose(aligned.matrix[1], [0.75, 0.25])  # query 4: 0.6 / 0.2 -> .75 / .25
    reading = aa.translation_alignment(alignment_case(), (1, 3), (4, 6), at_generation_step=False)
    np.testing.assert_allclose(reading.matrix[0], [0.75, 0.25])


def test_alignment_averages_the_chosen_layer_range_only():
    first = alignment_case()[0]
    second = np.broadcast_to(np.eye(6), first.shape)  # attends to itself: nothing on the source
    att = np.stack([first, second])
    only_first = aa.translation_alignment(att, (1, 3), (4, 6), layers=(0, 0))
    np.testing.assert_allclose(only_first.matrix[1], [0.75, 0.25])
    only_second = aa.translation_alignment(att, (1, 3), (4, 6), layers=(1, 1))
    np.testing.assert_allclose(only_second.matrix, 0.5)  # no weight on the source -> uniform, not NaN
    with pytest.raises(ValueError, match="layer range"):
        aa.translation_alignment(att, (1, 3), (4, 6), layers=(1, 2))
    with pytest.raises(ValueError, match="must end before"):
        aa.translation_alignment(att, (1, 5), (4, 6))


# ------------------------------------------------------------------ export and labels


def test_csv_export_keeps_labels_and_values_and_escapes_formulas():
    labels = ["=SUM(A1)", "+1", "-x", "@cmd", "猫", 'say "hi", ok']
    rows_in = [[label, 0.5 if i == 0 else 0.0, -0.5] for i, label in enumerate(labels)]
    text = aa.table_to_csv(["query \\ key", "=a", "b"], rows_in)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["query \\ key", "'=a", "b"]
    assert [row[0] for row in rows[1:]] == ["'=SUM(A1)", "'+1", "'-x", "'@cmd", "猫", 'say "hi", ok']
    assert float(rows[1][1]) == 0.5 and float(rows[2][1]) == 0.0
    assert rows[1][2] == "-0.5"  # numbers are data, not formulas
    assert aa.csv_safe(-0.5) == -0.5


def test_default_selection_skips_special_tokens_and_punctuation():
    tokens = ["[CLS]", "The", "cat", "is", "tired", "!?", "[SEP]"]
    special = [True, False, False, False, False, False, True]
    assert aa.default_selection(tokens, special) == [4]
    # a special token is known by its flag, not by how it looks: an ordinary "[SEP]" typed as text counts
    assert aa.default_selection(["<s>", "[SEP]", "。"], [True, False, False]) == [1]
    assert aa.default_selection(["<s>", "。"], [True, False]) == [1]  # nothing ordinary: the last token


def test_analysis_rejects_a_run_whose_tokens_do_not_match_its_attention():
    from models.attention import AttentionResult

    att = random_attention(1, 1, 3, causal=True)
    with pytest.raises(ValueError, match="2 tokens"):
        aa.analyse(AttentionResult("m", ["a", "b"], att, True, special=[False, False]))
    good = aa.analyse(AttentionResult("m", ["a", "b", "a"], att, True, special=[False] * 3))
    assert good.labels == ["a (0)", "b", "a (2)"] and (good.layers, good.heads, good.length) == (1, 1, 3)
    assert good.rollout is good.rollout  # computed once per run


def test_position_labels_are_unique_and_visible():
    labels = aa.position_labels(["The", " cat", "the", " cat", "\n", " "])
    assert labels == ["The", "cat (1)", "the", "cat (3)", "↵", "␣"]
    assert len(set(labels)) == len(labels)


def test_bad_shapes_are_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match=r"\[layers, heads, T, T\]"):
        aa.check_attentions(np.zeros((2, 3, 4)))

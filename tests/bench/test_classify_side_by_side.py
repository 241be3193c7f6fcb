"""bench/classify.py's one-thread rows on the real exported classifier: same probabilities, input order kept."""
from __future__ import annotations

import numpy as np

from bench import classify


def test_one_thread_sessions_side_by_side_give_the_served_probabilities_in_input_order():
    from models import sentiment
    from models.paths import model_dir

    fp32 = model_dir(sentiment.MODEL_ID) / "model.onnx"
    texts = classify.texts() + classify.throughput_texts(60)  # short and long texts mixed, so lanes differ
    served = classify.bucketed(classify.onnx_session(fp32))(texts)
    single = classify.one_thread_session(fp32)
    assert single.get_session_options().intra_op_num_threads == 1
    side_by_side = classify.SideBySide(fp32, lanes=2)
    try:
        got = side_by_side(texts)
        assert side_by_side(texts[:1]).shape == (1, len(sentiment.LABELS))  # one text: one lane idle
    finally:
        side_by_side.close()
    assert got.shape == served.shape
    assert np.abs(got - served).max() <= 1e-5
    assert np.abs(classify.bucketed(single)(texts) - served).max() <= 1e-5

from costs import urlstate


def test_round_trip_encode_decode():
    state = {"preset": "llama2-7b", "params": 6.74e9, "active_params": 1.3e9, "tokens": 2e12, "gpu": "H100-80GB",
             "gpus": 1024, "mfu": 0.4, "price": 2.5}
    query = urlstate.encode_state(state)
    assert query == {"preset": "llama2-7b", "params": "6.74e9", "active": "1.3e9", "tokens": "2e12",
                     "gpu": "H100-80GB", "gpus": "1024", "mfu": "0.4", "price": "2.5"}
    assert urlstate.decode_state(query) == state


def test_awkward_floats_survive_the_round_trip():
    state = {"params": 123456789.123, "mfu": 0.123456789012, "price": 0.0}
    assert urlstate.decode_state(urlstate.encode_state(state)) == state


def test_issue_example_url_decodes_and_spellings_are_canonicalised():
    query = {"tab": "costs", "params": "7e9", "tokens": "2e12", "gpu": "h100_sxm", "gpus": "1024", "mfu": "0.4",
             "price": "2.5"}
    assert urlstate.decode_state(query) == {"params": 7e9, "tokens": 2e12, "gpu": "H100-80GB", "gpus": 1024,
                                            "mfu": 0.4, "price": 2.5}


def test_bad_values_are_dropped_and_reported_not_raised():
    state = urlstate.decode_state({"params": "-1", "tokens": "2T", "gpu": "H900", "gpus": "1.5", "mfu": "nan",
                                   "preset": "nope"})
    assert state["tokens"] == 2e12
    assert set(state) == {"tokens", "_errors"} and len(state["_errors"]) == 5


def test_empty_fields_are_left_out_of_the_url():
    assert urlstate.encode_state({"params": 7e9, "mfu": None, "price": ""}) == {"params": "7e9"}


def test_sync_snippet_preserves_other_params_and_uses_replace_state():
    js = urlstate.SYNC_URL_JS
    assert "history.replaceState" in js and "new URL(window.location.href)" in js
    assert "searchParams.set" in js and "searchParams.delete" in js
    assert str(urlstate.QUERY_KEYS).replace("'", '"') in js
    assert "tab" not in urlstate.QUERY_KEYS  # 'tab' belongs to app.py; the snippet only forces it to 'costs'

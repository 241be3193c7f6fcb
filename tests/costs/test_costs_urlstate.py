import pytest

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
    assert str(urlstate.TRAIN_KEYS).replace("'", '"') in js
    assert "tab" not in urlstate.QUERY_KEYS  # 'tab' belongs to app.py; the snippet only forces it to 'costs'


def test_each_calculator_has_its_own_keys_and_round_trips():
    state = {"preset": "llama-65b", "method": "qlora", "rank": 64, "targets": "all-linear", "gpu": "L40S",
             "seq": 512, "tokens": 1e8}
    query = urlstate.encode_state(state, "finetune")
    assert query["calc"] == "finetune" and query["seq"] == "512"
    assert urlstate.decode_state(query) == dict(state, calc="finetune")
    assert "calc" not in urlstate.encode_state({"params": 7e9})  # train: calc absent, today's links unchanged


def test_guide_breakeven_link_resolves():
    link = ("?tab=costs&calc=breakeven&params=8e9&gpu=H100-80GB&gpus=1&util=0.5&api_in=0.15&api_out=0.6"
            "&price=2.0&in_tokens=2e9&out_tokens=5e8")
    assert urlstate.validate_link(link) == []
    state = urlstate.decode_state(dict(p.split("=") for p in link[1:].split("&")))
    assert state["calc"] == "breakeven" and state["util"] == 0.5 and state["in_tokens"] == 2e9


@pytest.mark.parametrize("link,needle", [
    ("?tab=costs&calc=breakeven&util=2", "fraction"), ("?tab=costs&calc=fleet&tokens=2e12", "not a fleet key"),
    ("?tab=costs&calc=bogus", "unknown calc"), ("?tab=costs&paramz=7e9", "unknown key"),
    ("?tab=guide&params=7e9", "not 'costs'"), ("?tab=costs&params=", "empty"),
    ("?tab=costs&params=7e9&params=8e9", "twice"), ("?tab=costs&calc=finetune&method=prefix", "bad method"),
])
def test_bad_links_are_reported(link, needle):
    errors = urlstate.validate_link(link)
    assert any(needle in error for error in errors), errors


def test_decode_never_raises_on_a_bad_calc_and_falls_back_to_train():
    state = urlstate.decode_state({"calc": "nope", "params": "7e9"})
    assert state["params"] == 7e9 and "calc" not in state and "unknown calc" in state["_errors"][0]


def test_per_calc_sync_snippet_sets_calc_and_clears_other_calculators_keys():
    js = urlstate.sync_url_js("breakeven")
    assert 'url.searchParams.set("calc", "breakeven")' in js and '"util"' in js
    assert '"mfu"' in js.split("forEach((key) => url.searchParams.delete(key))")[0]  # train's key is cleared
    assert "format_value" in dir(urlstate) and urlstate.format_value(7e9) == "7e9"


def test_validate_link_takes_a_parsed_params_dict_too():
    assert urlstate.validate_link({"calc": "breakeven", "gpu": "H100-80GB", "util": "0.5"}) == []
    assert urlstate.validate_link({"calc": "breakeven", "utilisation": "0.5"}) == ["unknown key 'utilisation'"]

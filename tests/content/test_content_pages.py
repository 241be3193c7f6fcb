"""The guide pages (content/): both languages present, matching structure, links that resolve, sound numbers."""
from __future__ import annotations

import ast
import math
import re
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from markdown_it import MarkdownIt

from content import pages
from costs.accelerators import canonical_names, get_accelerator
from costs.units import fraction, non_negative, positive, positive_int

REPO = Path(__file__).resolve().parents[2]
EXPECTED_PAGES = ["opportunities", "challenges", "growth", "primer", "costs", "inference", "faq", "resources"]
PLACEHOLDER = re.compile(r"example\.(com|org)|localhost|127\.0\.0\.1|TODO|TBD|xxx|\.\.\.|<|>|\s", re.I)

ALL_PAGES = [pages.get_page(page_id, lang) for lang in pages.LANGS for page_id in pages.page_ids(lang)]


def _page_params():
    return pytest.mark.parametrize("page", ALL_PAGES, ids=lambda p: f"{p.lang}-{p.id}")


def test_every_topic_has_a_page_in_both_languages_in_the_same_order():
    for lang in pages.LANGS:
        assert pages.page_ids(lang) == EXPECTED_PAGES, lang


@pytest.mark.parametrize("page_id", EXPECTED_PAGES)
def test_chinese_and_english_pages_have_the_same_heading_structure(page_id):
    zh, en = (pages.get_page(page_id, lang) for lang in pages.LANGS)
    assert [(h.level, h.anchor) for h in zh.headings] == [(h.level, h.anchor) for h in en.headings]
    assert zh.order == en.order


@_page_params()
def test_every_section_heading_has_a_unique_anchor(page):
    anchors = [h.anchor for h in page.headings]
    assert page.headings, "a page without sections"
    assert all(h.level >= 2 for h in page.headings), "the title comes from front matter; body starts at ##"
    assert None not in anchors, [h.text for h in page.headings if h.anchor is None]
    assert len(anchors) == len(set(anchors))


@_page_params()
def test_front_matter_is_complete_and_dated(page):
    assert page.title.strip() and page.nav.strip() and page.summary.strip()
    assert re.fullmatch(r"20\d\d-(0[1-9]|1[0-2])", page.updated)


def test_tab_ids_used_by_the_pages_are_the_ones_app_py_serves():
    tree = ast.parse((REPO / "app.py").read_text(encoding="utf-8"))
    tabs = next(node.value for node in ast.walk(tree)
                if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "TABS" for t in node.targets))
    app_ids = tuple(ast.literal_eval(element.elts[1]) for element in tabs.elts)
    assert app_ids == pages.TAB_IDS


def _check_internal_link(page: pages.Page, url: str) -> None:
    link = pages.parse_internal_link(url)
    if link.tab is None:
        assert link.anchor in page.anchors, f"#{link.anchor} is not a heading of {page.lang}/{page.id}"
        return
    assert link.tab in pages.TAB_IDS, url
    if link.tab == "guide":
        assert set(link.params) <= {"doc", "lang"}, url
        assert link.params.get("lang") in pages.LANGS, url
        target = pages.get_page(link.params["doc"], link.params["lang"])
        if link.anchor:
            assert link.anchor in target.anchors, f"{url}: no such heading"
    elif link.tab == "costs":
        check_calculator_link(link.params)
        assert link.anchor is None, url
    else:
        assert not link.params and link.anchor is None, f"{url}: demo tabs take no parameters"


CALCULATOR_VIEWS = ("train", "finetune", "serve", "fleet", "breakeven")
# The break-even view's URL keys, agreed with the cost helper (USD per 1M tokens, USD per GPU-hour, monthly tokens).
BREAKEVEN_KEYS = {
    "params": lambda v: positive(v, "params"), "gpu": lambda v: get_accelerator(v).name,
    "gpus": lambda v: positive_int(v, "gpus"), "util": lambda v: fraction(v, "util"),
    "api_in": lambda v: non_negative(v, "api_in"), "api_out": lambda v: non_negative(v, "api_out"),
    "price": lambda v: non_negative(v, "price"), "in_tokens": lambda v: non_negative(v, "in_tokens"),
    "out_tokens": lambda v: non_negative(v, "out_tokens"),
}


def check_calculator_link(params: dict[str, str]) -> None:
    """A ?tab=costs link's parameters are ones the calculator reads, with values it accepts (the cost tab's own
    validator: a key it does not know, or a value it rejects, would silently vanish from the shared estimate)."""
    from costs.urlstate import validate_link

    errors = validate_link(dict(params, tab="costs"))
    assert not errors, errors


def test_calculator_link_check_rejects_unknown_keys_and_bad_values():
    check_calculator_link({"calc": "breakeven", "gpu": "H100-80GB", "util": "0.5"})
    for bad in ({"calc": "breakeven", "utilisation": "0.5"}, {"calc": "breakeven", "util": "1.5"},
                {"calc": "breakeven", "gpu": "H900"}, {"calc": "nosuch"}, {"mfu": "2"}, {"gpus": "1", "api_in": "1"}):
        with pytest.raises((AssertionError, ValueError)):
            check_calculator_link(bad)


@_page_params()
def test_internal_links_point_at_real_tabs_pages_and_headings(page):
    internal = [link.url for link in page.links if link.internal]
    assert internal, "every page links into the site"
    for url in internal:
        _check_internal_link(page, url)


@_page_params()
def test_external_references_are_well_formed_https_urls(page):
    external = [link for link in page.links if not link.internal]
    assert len(external) >= 3, "facts carry sources"
    for link in external:
        parts = urlsplit(link.url)
        assert parts.scheme == "https", link.url
        assert "." in parts.netloc, link.url
        assert not PLACEHOLDER.search(link.url), link.url
        assert link.text.strip(), link.url


@_page_params()
def test_rendered_page_turns_heading_anchors_into_html_ids(page):
    rendered = pages.render(page)
    for heading in page.headings:
        assert f'<a id="{heading.anchor}"></a>{heading.text}' in rendered
    assert "{#" not in rendered
    assert pages.guide_url(page.id, page.lang) in rendered


def test_internal_link_parser_splits_tab_params_and_anchor():
    link = pages.parse_internal_link("?tab=guide&doc=costs&lang=en#memory")
    assert (link.tab, link.params, link.anchor) == ("guide", {"doc": "costs", "lang": "en"}, "memory")
    with pytest.raises(ValueError):
        pages.parse_internal_link("/costs")


def _gpu_table_rows(page: pages.Page) -> dict[str, tuple[float, float, float]]:
    """Rows of the table in the #gpu-table section: name -> (BF16 dense TFLOP/s, memory GB, bandwidth TB/s)."""
    section = page.body.split("{#gpu-table}", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.fullmatch(r"[\d,.]+", cells[1]):
            rows[cells[0]] = tuple(float(cell.replace(",", "")) for cell in cells[1:4])
    return rows


@pytest.mark.parametrize("lang", pages.LANGS)
def test_costs_page_gpu_table_matches_the_calculator_data(lang):
    rows = _gpu_table_rows(pages.get_page("costs", lang))
    assert len(rows) >= 10
    assert set(rows) <= set(canonical_names())
    for name, (tflops, memory, bandwidth) in rows.items():
        acc = get_accelerator(name)
        assert (tflops, memory, bandwidth) == (acc.bf16_dense_tflops, acc.memory_gb, acc.bandwidth_tbps), name


@pytest.mark.parametrize("lang", pages.LANGS)
def test_costs_page_worked_example_uses_the_calculator_peak(lang):
    """7B params x 2T tokens on A100-80GB at 40% MFU: the GPU-hours the page quotes."""
    flops = 6 * 7e9 * 2e12
    hours = flops / (get_accelerator("A100-80GB").peak_flops * 0.40) / 3600
    body = pages.get_page("costs", lang).body
    assert f"{hours:,.0f}" in body
    assert "8.4×10²²" in body


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("lang", pages.LANGS)
def test_attention_worked_example_in_the_primer_is_arithmetically_right(lang):
    q = np.array([[1, 0, 1, 0], [0, 2, 0, 0], [1, 1, 1, 1]], float)
    k = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0]], float)
    v = np.array([[1, 0], [0, 1], [1, 1]], float)
    scores = q @ k.T / math.sqrt(k.shape[1])
    weights = _softmax(scores)
    causal = _softmax(np.where(np.tril(np.ones((3, 3))) == 1, scores, -np.inf))
    body = pages.get_page("primer", lang).body

    def row(values):
        return "[" + ", ".join(f"{x:.3f}" for x in values) + "]"

    for matrix in (weights, weights @ v, causal, causal @ v):
        for values in matrix:
            assert row(values) in body, row(values)
    assert "[1.0, 0.0, 0.5]" in body  # the scaled scores of the first query


@pytest.mark.parametrize("page", [p for p in ALL_PAGES if "\n|---" in p.body], ids=lambda p: f"{p.lang}-{p.id}")
def test_tables_scroll_inside_their_own_box_so_a_phone_page_does_not_widen(page):
    html = MarkdownIt("commonmark").enable("table").render(pages.render(page))
    tables = html.count("<table>")
    assert tables >= 1
    assert html.count('<div class="guide-table" style="overflow-x:auto">\n<table>') == tables
    assert html.count("</table>\n</div>") == tables

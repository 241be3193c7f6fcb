"""Guide pages: Markdown files with YAML front matter, one file per topic and language.

Data access only (no gradio): the Guide tab (demos/guide.py) and the tests read pages through this module.

Layout: ``content/<lang>/<page-id>.md``. Front matter keys: ``id`` (= file stem), ``title``, ``nav`` (short
label for the page switcher), ``order``, ``updated`` (YYYY-MM), ``summary``. Section headings carry a language-independent anchor in the
Pandoc/kramdown attribute syntax, ``## 训练算力 {#training-flops}``, so a link such as
``?tab=guide&doc=costs&lang=en#training-flops`` lands on the same section in either language.

Links inside pages are either external (``https://...``) or site-relative:
``?tab=<tab-id>[&key=value...]`` opens a tab (``?tab=guide&doc=<id>&lang=<zh|en>[#anchor]`` a guide page),
``#anchor`` jumps within the page.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qsl, quote

import yaml
from markdown_it import MarkdownIt

from content import measured
from costs import api_prices

CONTENT_DIR = Path(__file__).resolve().parent
LANGS: tuple[str, ...] = ("zh", "en")
DEFAULT_LANG = "zh"
# Public URL scheme (docs/CONVENTIONS.md); tests check this copy against app.py's TABS.
TAB_IDS: tuple[str, ...] = ("generate", "classify", "translate", "attention", "costs", "guide")

_ANCHOR_SUFFIX = re.compile(r"\s*\{#([a-z0-9][a-z0-9-]*)\}\s*$")
_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)
_REQUIRED_KEYS = ("id", "title", "nav", "order", "updated", "summary")
# Generated tables: a line that is exactly {{table:<name>}} becomes that table, in the page's language, when the
# page is read. The inference page's API prices and the calculator read the same CSV, so a price exists once.
TABLES: dict[str, Callable[[str], str]] = {"api-prices": api_prices.markdown_table}
_TABLE_LINE = re.compile(r"^\{\{table:([^}]*)\}\}$", re.M)
# CommonMark plus GFM tables (the costs page has them); linkify off: every link is written [text](url).
_MD = MarkdownIt("commonmark").enable("table")


@dataclass(frozen=True)
class Heading:
    level: int  # 2 for "##", 3 for "###", ...
    text: str  # without the {#anchor} suffix
    anchor: str | None
    line: int  # 0-based line in the page body


@dataclass(frozen=True)
class Link:
    text: str
    url: str

    @property
    def internal(self) -> bool:
        return is_internal(self.url)


@dataclass(frozen=True)
class InternalLink:
    """A site-relative link split into its parts: ``?tab=costs&gpu=H100`` or ``#anchor``."""

    tab: str | None  # None for a same-page "#anchor" link
    params: dict[str, str] = field(default_factory=dict)  # query parameters other than "tab"
    anchor: str | None = None


@dataclass(frozen=True)
class Page:
    id: str
    lang: str
    title: str
    nav: str
    order: int
    updated: str
    summary: str
    body: str  # Markdown without the front matter
    headings: tuple[Heading, ...]
    links: tuple[Link, ...]
    path: Path

    @property
    def anchors(self) -> set[str]:
        return {h.anchor for h in self.headings if h.anchor}


def is_internal(url: str) -> bool:
    return url.startswith("?") or url.startswith("#")


def parse_internal_link(url: str) -> InternalLink:
    """Split ``?tab=guide&doc=costs&lang=en#memory`` into tab, other params and anchor.

    Raises ValueError for anything that is not a site-relative link.
    """
    if url.startswith("#"):
        return InternalLink(tab=None, anchor=url[1:] or None)
    if not url.startswith("?"):
        raise ValueError(f"not a site-relative link: {url!r}")
    query, _, anchor = url[1:].partition("#")
    pairs = parse_qsl(query, keep_blank_values=True)
    params = dict(pairs)
    if len(params) != len(pairs):
        raise ValueError(f"repeated query parameter in {url!r}")
    tab = params.pop("tab", None)
    if tab is None:
        raise ValueError(f"site link without ?tab=: {url!r}")
    return InternalLink(tab=tab, params=params, anchor=anchor or None)


def guide_url(page_id: str, lang: str, anchor: str | None = None) -> str:
    url = f"?tab=guide&doc={quote(page_id)}&lang={quote(lang)}"
    return f"{url}#{anchor}" if anchor else url


def _inline_text(token) -> str:
    return "".join(child.content for child in (token.children or []) if child.type in ("text", "code_inline"))


def _headings_and_links(body: str) -> tuple[tuple[Heading, ...], tuple[Link, ...]]:
    tokens = _MD.parse(body)
    headings: list[Heading] = []
    links: list[Link] = []
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            inline = tokens[i + 1]
            raw = inline.content
            match = _ANCHOR_SUFFIX.search(raw)
            text = raw[: match.start()] if match else raw
            headings.append(Heading(int(token.tag[1]), text.strip(), match.group(1) if match else None,
                                    token.map[0]))
        if token.type == "inline":
            children = token.children or []
            for j, child in enumerate(children):
                if child.type == "link_open":
                    text_parts = []
                    for inner in children[j + 1:]:
                        if inner.type == "link_close":
                            break
                        text_parts.append(inner.content)
                    links.append(Link("".join(text_parts), child.attrGet("href") or ""))
    return tuple(headings), tuple(links)


def _expand_tables(body: str, path: Path, lang: str) -> str:
    def table(match: re.Match) -> str:
        if match.group(1) not in TABLES:
            raise ValueError(f"{path}: unknown table {match.group(1)!r}; tables: {', '.join(TABLES)}")
        return TABLES[match.group(1)](lang)

    return _TABLE_LINE.sub(table, body)


def parse_page(text: str, path: Path, lang: str) -> Page:
    match = _FRONT_MATTER.match(text)
    if not match:
        raise ValueError(f"{path}: missing '---' front matter")
    meta = yaml.safe_load(match.group(1)) or {}
    missing = [key for key in _REQUIRED_KEYS if key not in meta]
    if missing:
        raise ValueError(f"{path}: front matter lacks {', '.join(missing)}")
    if meta["id"] != path.stem:
        raise ValueError(f"{path}: front matter id {meta['id']!r} differs from the file name")
    body = _expand_tables(text[match.end():], path, lang)
    headings, links = _headings_and_links(body)
    return Page(id=str(meta["id"]), lang=lang, title=str(meta["title"]), nav=str(meta["nav"]),
                order=int(meta["order"]),
                updated=str(meta["updated"]), summary=str(meta["summary"]).strip(), body=body,
                headings=headings, links=links, path=path)


@lru_cache(maxsize=4)
def load_pages(root: Path = CONTENT_DIR) -> dict[str, dict[str, Page]]:
    """All pages as ``{lang: {page_id: Page}}``, each language sorted by the front-matter order."""
    result: dict[str, dict[str, Page]] = {}
    for lang in LANGS:
        found = [parse_page(p.read_text(encoding="utf-8"), p, lang) for p in sorted((root / lang).glob("*.md"))]
        result[lang] = {page.id: page for page in sorted(found, key=lambda page: (page.order, page.id))}
    return result


def page_ids(lang: str = DEFAULT_LANG) -> list[str]:
    return list(load_pages()[lang])


def list_pages(lang: str) -> list[Page]:
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; expected one of {', '.join(LANGS)}")
    return list(load_pages()[lang].values())


def get_page(page_id: str, lang: str) -> Page:
    pages = {page.id: page for page in list_pages(lang)}
    if page_id not in pages:
        raise ValueError(f"unknown guide page {page_id!r}; pages: {', '.join(pages)}")
    return pages[page_id]


_UI_TEXT = {
    "zh": {"contents": "本页目录", "updated": "更新于", "permalink": "本页链接", "other": "English version",
           "measured": "本页的实测数字从哪里来",
           "measured_intro": "带上标的数字由页面渲染时从本项目提交的结果文件读取：",
           "no_device": "未记录设备", "commit": "提交"},
    "en": {"contents": "On this page", "updated": "Updated", "permalink": "Link to this page", "other": "中文版",
           "measured": "Where this page's measured numbers come from",
           "measured_intro": "Numbers with a superscript are read, when the page is rendered, from the project's "
                             "committed results files:",
           "no_device": "device not recorded", "commit": "commit"},
}
MEASURED_ANCHOR = "measured-sources"


def _measured_marker(measurement: measured.Measurement, number: int) -> str:
    return f'<sup>[{number}](#{MEASURED_ANCHOR})</sup>'


def _measured_notes(used: list[measured.Measurement], lang: str) -> str:
    """The closing note: one line per results file, with what it measured, on which device, when."""
    if not used:
        return ""
    ui = _UI_TEXT[lang]
    lines = [f'## <a id="{MEASURED_ANCHOR}"></a>{ui["measured"]}', "", ui["measured_intro"], ""]
    for number, m in enumerate(measured.sources_by_file(used), start=1):
        commit = f", {ui['commit']} {m.commit}" if m.commit else ""
        what = m.what_zh if lang == "zh" else m.what
        lines.append(f"{number}. `{measured.relative(m.path)}`: {what}; {m.device or ui['no_device']}; "
                     f"{m.date}{commit}")
    return "\n".join(lines)


# Wide tables (prices, GPUs) scroll sideways inside their own box instead of widening the whole page on a phone;
# the blank lines keep the table Markdown outside the HTML block, so it is still parsed as a table.
_TABLE_OPEN = '<div class="guide-table" style="overflow-x:auto">\n\n'
_TABLE_CLOSE = "\n\n</div>\n"


def _wrap_tables(body: str, lines: list[str]) -> None:
    """Put each top-level table of the body (as lines) inside a horizontally scrolling box, in place."""
    for token in _MD.parse(body):
        if token.type == "table_open" and token.level == 0 and token.map:
            start, end = token.map
            lines[start] = _TABLE_OPEN + lines[start]
            lines[end - 1] = lines[end - 1] + _TABLE_CLOSE


def render(page: Page) -> str:
    """Markdown for display: title, summary, a contents list, the body with HTML anchors, a footer.

    ``## Title {#x}`` becomes ``## <a id="x"></a>Title`` so that ``#x`` links scroll to it in the browser.
    ``{{measured:key}}`` placeholders become the value from the project's results files plus a note number;
    the notes (file, device, date) close the page. An unresolvable placeholder raises ValueError.
    """
    ui = _UI_TEXT[page.lang]
    lines = page.body.split("\n")
    for heading in page.headings:
        if heading.anchor:
            lines[heading.line] = f'{"#" * heading.level} <a id="{heading.anchor}"></a>{heading.text}'
    _wrap_tables(page.body, lines)
    contents = [f"- [{h.text}](#{h.anchor})" for h in page.headings if h.level == 2 and h.anchor]
    other = "en" if page.lang == "zh" else "zh"
    body, used = measured.fill("\n".join(lines).strip(), _measured_marker)
    parts = [
        f"# {page.title}",
        f"*{page.summary}* — {ui['updated']} {page.updated}",
        f"**{ui['contents']}**\n\n" + "\n".join(contents) if contents else "",
        body,
        _measured_notes(used, page.lang),
        "---",
        f"[{ui['permalink']}]({guide_url(page.id, page.lang)}) · [{ui['other']}]({guide_url(page.id, other)})",
    ]
    return "\n\n".join(part for part in parts if part)

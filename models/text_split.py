"""Split long input into short chunks for a small translation model, and put the translations back together.

A 0.5B model translates one or two sentences well and drifts, skips or repeats on long inputs, so the
Translate tab sends short chunks and reassembles them:

1. Blocks: the text is cut at every line break. Runs of line breaks (blank lines, whitespace-only lines)
   are kept verbatim, so paragraphs, blank-line structure and line-per-item lists survive. A leading list
   marker or heading marker ("- ", "* ", "1. ", "2) ", "一、", "# ", "> ") and indentation are kept
   verbatim too and not sent to the model. Consequence: hard-wrapped prose (a sentence broken across
   lines) is translated line by line; pasted text rarely is wrapped, lists and line-per-item text are.
2. Sentences: after . ! ? … followed by whitespace (or by a CJK character), and after 。！？；
   (no whitespace needed), with closing quotes/brackets kept on the sentence they close. A period does
   NOT end a sentence after a known abbreviation (e.g., i.e., Mr., Dr., z.B., ...), after a single-letter
   initial ("J. K. Rowling"), or when the next word starts in lower case ("approx. five", "U.S. economy").
   Decimals (3.14) and version numbers never split because no whitespace follows the period.
3. Chunks: consecutive sentences of one block are packed greedily into chunks of at most max_chars
   characters (original spacing inside a chunk kept). A single sentence longer than max_chars is cut at
   the last clause punctuation (，、；：,;:) that fits, else at the last space, else (unbroken CJK or a
   very long token) hard at max_chars. Nothing is ever dropped and no chunk is empty or blank.

`join_translations` emits each block's verbatim prefix, then its translated chunks. Between two chunks
of one block it puts nothing when the left translation ends in a CJK character or full-width punctuation
and a single space otherwise, so the glue suits the target language, not the source.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_MAX_CHARS = 200
MIN_MAX_CHARS = 10  # below this, word-boundary splitting degenerates into cutting words apart

# Abbreviations whose period never ends a sentence (lower case, without the final period).
ABBREVIATIONS = frozenset(
    """
    e.g i.e cf vs etc approx incl esp dept est fig figs no nos nr vol vols pp p ch sec art ed eds
    mr mrs ms dr prof sr jr st mt ave inc ltd co corp jan feb mar apr jun jul aug sep sept oct nov dec
    mon tue wed thu fri sat sun a.m p.m u.s u.k u.n ph.d
    z.b bzw usw ca evtl ggf d.h u.a s.o hr frau
    m mme mlle p.ex env
    sra srta dña ud uds pág
    """.split()
)
# Abbreviations that end a sentence when the next word is capitalised ("... and so on, etc. The next").
_SENTENCE_FINAL_ABBREVIATIONS = frozenset({"etc", "usw", "inc", "ltd", "co", "corp"})

_CLOSERS = "\"'”’»›)]}」』）】》〉"
_CJK_TERMINATORS = "。！？；"
_SENTENCE_END = re.compile(rf"(?:[{_CJK_TERMINATORS}]+|[.!?…]+)[{re.escape(_CLOSERS)}]*")
_LINE_BREAKS = re.compile(r"(?:[ \t\f\v]*(?:\r\n|\r|\n))+")
_BLOCK_MARKER = re.compile(
    r"[ \t]*(?:(?:[-*+•·]|\d{1,3}[.)]|\(\d{1,3}\)|#{1,6}|>)[ \t]+|(?:\d{1,3}|[一二三四五六七八九十]{1,3})、)?[ \t]*"
)
_TOKEN_BEFORE = re.compile(r"(\S+)$")
# Han, kana, hangul and CJK/full-width punctuation: no space is needed after these.
_CJK_CHAR = re.compile(
    r"[\u3000-\u303f\u3041-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]"
)


@dataclass(frozen=True)
class Segment:
    text: str  # what the model translates: stripped, never empty
    block: int  # index of the line/paragraph block it comes from
    first_in_block: bool
    before: str = ""  # emitted verbatim before this segment's translation (line breaks, indent, list marker)
    after: str = ""  # emitted verbatim after it (only the text's trailing whitespace, on the last segment)


def split_for_translation(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[Segment]:
    """Cut text into Segments of at most max_chars characters each (see module doc); [] for blank text."""
    if not isinstance(text, str):
        raise ValueError("text must be a string")
    if max_chars < MIN_MAX_CHARS:
        raise ValueError(f"max_chars must be at least {MIN_MAX_CHARS}, got {max_chars}")
    segments: list[Segment] = []
    pending = ""  # verbatim text (line breaks, markers) waiting for the next block's first segment
    block_index = 0
    position = 0
    for line_break in [*_LINE_BREAKS.finditer(text), None]:
        end = line_break.start() if line_break else len(text)
        line = text[position:end]
        position = line_break.end() if line_break else len(text)
        separator = line_break.group() if line_break else ""
        marker = _BLOCK_MARKER.match(line).group()
        body = line[len(marker):]
        core = body.strip()
        chunks = _pack(core, max_chars)
        if not chunks:  # blank or marker-only line: keep it verbatim
            pending += line + separator
            continue
        lead = body[: len(body) - len(body.lstrip())]
        for i, chunk in enumerate(chunks):
            before = pending + marker + lead if i == 0 else ""
            segments.append(Segment(chunk, block_index, i == 0, before=before))
            pending = ""
        pending = body[len(body.rstrip()):] + separator
        block_index += 1
    if segments and pending:
        last = segments[-1]
        segments[-1] = Segment(last.text, last.block, last.first_in_block, last.before, pending)
    return segments


def join_translations(segments: list[Segment], translations: list[str]) -> str:
    """Reassemble translated segments with the original line/paragraph structure (see module doc)."""
    if len(segments) != len(translations):
        raise ValueError(f"got {len(translations)} translations for {len(segments)} segments")
    parts: list[str] = []
    previous = ""
    for segment, translation in zip(segments, translations):
        translation = translation.strip()
        if not segment.first_in_block and previous and translation:
            parts.append("" if _CJK_CHAR.match(previous[-1]) else " ")
        parts.append(segment.before + translation + segment.after)
        if segment.first_in_block or translation:
            previous = translation
    return "".join(parts)


def split_sentences(text: str) -> list[str]:
    """The sentences of one line of text, stripped (step 2 of the module doc)."""
    return [text[start:end] for start, end in _sentences(text)]


def _sentences(line: str) -> list[tuple[int, int]]:
    """(start, end) spans of the sentences in one line, whitespace excluded."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(line):
        if _is_boundary(line, start, match):
            spans.append((start, match.end()))
            start = match.end()
    spans.append((start, len(line)))
    stripped = []
    for begin, end in spans:
        piece = line[begin:end]
        if piece.strip():
            begin += len(piece) - len(piece.lstrip())
            stripped.append((begin, begin + len(piece.strip())))
    return stripped


def _is_boundary(line: str, start: int, match: re.Match[str]) -> bool:
    punctuation = match.group()
    rest = line[match.end():]
    if any(char in _CJK_TERMINATORS for char in punctuation):
        return True
    next_text = rest.lstrip()
    if not next_text:
        return True
    if rest[0] not in " \t\u3000\u00a0" and not _CJK_CHAR.match(rest[0]):
        return False  # "3.14", "v2.0", "example.com", "Yahoo!Japan"
    if punctuation[0] in "!?":
        return True
    token_match = _TOKEN_BEFORE.search(line[start:match.start()])
    token = token_match.group(1).casefold().strip("".join(_CLOSERS) + "(\"'“‘«") if token_match else ""
    next_char = next_text[0]
    if token in ABBREVIATIONS:
        return token in _SENTENCE_FINAL_ABBREVIATIONS and next_char.isupper()
    if len(token) == 1 and token.isalpha() and line[match.start() - 1].isupper():
        return False  # an initial: "J. K. Rowling"
    return not next_char.islower()


def _pack(core: str, max_chars: int) -> list[str]:
    """Chunks of at most max_chars from one stripped line: whole sentences where they fit, greedily packed."""
    pieces: list[tuple[int, int]] = []
    for start, end in _sentences(core):
        pieces.extend(_cut_long(core, start, end, max_chars))
    chunks: list[str] = []
    chunk_start = chunk_end = -1
    for start, end in pieces:
        if chunk_start >= 0 and end - chunk_start <= max_chars:
            chunk_end = end
            continue
        if chunk_start >= 0:
            chunks.append(core[chunk_start:chunk_end])
        chunk_start, chunk_end = start, end
    if chunk_start >= 0:
        chunks.append(core[chunk_start:chunk_end])
    return chunks


# Where an over-long sentence may be cut: after clause punctuation (a Latin comma only before a space, so
# "1,000" stays whole), else at a space.
_CLAUSE_END = re.compile(r"[，、；：,;:](?=\s)|[，、；：]")
_SPACE = re.compile(r"\s")


def _cut_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Split text[start:end] (a stripped sentence) into stripped spans of at most max_chars characters."""
    spans: list[tuple[int, int]] = []
    while end - start > max_chars:
        limit = start + max_chars
        cut = _last_cut(text, start, limit, max_chars)
        piece_end = cut
        while piece_end > start and text[piece_end - 1].isspace():
            piece_end -= 1
        spans.append((start, piece_end))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        spans.append((start, end))
    return spans


def _last_cut(text: str, start: int, limit: int, max_chars: int) -> int:
    """End index (exclusive) of the first piece of an over-long sentence starting at start."""
    # Prefer a cut in the later part of the window so the pieces are not tiny; accept an early one if
    # that is all there is.
    for earliest in (start + max_chars // 3, start + 1):
        for pattern, offset in ((_CLAUSE_END, 1), (_SPACE, 0)):
            cuts = [m.start() + offset for m in pattern.finditer(text, earliest, limit + 1)]
            cuts = [cut for cut in cuts if start < cut <= limit]
            if cuts:
                return cuts[-1]
    return limit

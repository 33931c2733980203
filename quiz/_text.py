"""Text clean-up shared by the quiz parsers: line endings, odd spaces, smart quotes, Markdown emphasis."""

from __future__ import annotations

import re

# Characters models (and copy-paste) put into text that break simple patterns: non-breaking and
# thin spaces become spaces, zero-width characters and the byte-order mark disappear.
_SPACES = {ord(c): " " for c in "\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
           "\u2009\u200a\u202f\u205f\u3000\t"}
_INVISIBLE = {ord(c): None for c in "\u200b\u200c\u200d\u2060\ufeff\u00ad"}
_QUOTES = {ord("\u2018"): "'", ord("\u2019"): "'", ord("\u201a"): "'", ord("\u201b"): "'",
           ord("\u2032"): "'", ord("\u201c"): '"', ord("\u201d"): '"', ord("\u201e"): '"',
           ord("\u201f"): '"', ord("\u2033"): '"', ord("\uff08"): "(", ord("\uff09"): ")",
           ord("\uff1a"): ":"}
_BASIC = {**_SPACES, **_INVISIBLE}
_ALL = {**_BASIC, **_QUOTES}

# Bold/italic only when the markers hug non-space text, so "2 ** 3" and "a * b" in code survive;
# markers glued to a word ("x**2") are code, not emphasis; underscores are left alone because
# they are part of identifiers like __init__. Spans are bounded so a line full of stray markers
# stays linear.
_BOLD = re.compile(r"(?<![\w)\]*])\*\*(?=\S)(.{1,400}?)(?<=\S)\*\*(?![\w(*])")
_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]{1,400}?)(?<=[^\s*])\*(?![\w*])")
_LEAD = re.compile(r"^\s*(?:>\s*)*(?:#{1,6}\s+)?")
_FENCE = re.compile(r"^\s*(?:```|~~~)")


def normalize(text: str, *, quotes: bool = True) -> str:
    """Unify line endings, spaces and (unless ``quotes=False``) curly quotes."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.translate(_ALL if quotes else _BASIC)


def strip_markup(line: str) -> str:
    """Remove Markdown heading/quote markers and emphasis from one line, and trim it."""
    line = _LEAD.sub("", line, count=1)
    if "*" in line:
        line = _BOLD.sub(r"\1", line)
        line = _ITALIC.sub(r"\1", line)
        line = line.replace("****", "")
    return line.strip()


def is_fence(line: str) -> bool:
    """True for a Markdown code-fence line (```python, ~~~)."""
    return bool(_FENCE.match(line))


def squash(text: str) -> str:
    """A comparison key: case-folded letters and digits separated by single spaces."""
    return " ".join(re.findall(r"[^\W_]+", text.casefold()))

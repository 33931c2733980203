"""From an answer a model wrote ("B", "(c)", "B) Paris", "Paris", "The answer is 2") to an option index."""

from __future__ import annotations

import re

from quiz._text import normalize, squash, strip_markup

# A label at the start of an answer: "B", "(c)", "[2]", "D.", "B) text". What may follow decides
# whether a lone letter is a label ("a)" yes, "a cat" no).
_LEAD_LABEL = re.compile(r"^(?:\(\s*([A-Ha-h]|\d{1,2})\s*\)|\[\s*([A-Ha-h]|\d{1,2})\s*\]|([A-Ha-h]|\d{1,2}))"
                         r"(?=[).:\]\-,;/]|\s|$)")
_PREFIX = re.compile(r"^(?:(?:the|correct|right|answer|option|choice|letter|is|would\s+be)\b\s*[:\-=]?\s*)+",
                     re.IGNORECASE)
_TRAIL = " \t.;,!"

# A label inside free text: "(B)", "[b]", "B" (capital, alone) or "b)". A bare lower-case letter is
# an English word too often ("a") to count.
_LABEL = r"(?:\(\s*([A-Za-z]|\d{1,2})\s*\)|\[\s*([A-Za-z]|\d{1,2})\s*\]|([A-Z]|\d{1,2})(?![\w'])|([a-z])\))"
_FINAL = re.compile(r"(?i:final\s+answer)\s*(?i:is)?\s*[:\-=]?\s*(?i:option|choice)?\s*" + _LABEL)
_STATED = re.compile(r"(?i:answer|option|choice)\s*(?i:is|would\s+be|should\s+be|:|=|-)\s*"
                     r"(?i:option|choice|letter)?\s*[:\-]?\s*" + _LABEL)
_START = re.compile(r"^\s*" + _LABEL + r"(?=[\s).:,;\]]|$)")


def label_index(label: str, n_options: int, labels: list[str] | None = None, number_base: int = 1
                ) -> int | None:
    """Index of the option a label names, or None when it names none.

    ``labels`` are the labels the options were written with ("A".."D" or "1".."4", upper case);
    without them letters count from A and numbers from ``number_base``.
    """
    key = label.strip().upper()
    if labels and key in labels:
        return labels.index(key)
    if key.isalpha() and len(key) == 1:
        index = ord(key) - ord("A")
    elif key.isdigit():
        index = int(key) - number_base
    else:
        return None
    return index if 0 <= index < n_options else None


def _text_index(text: str, options: list[str]) -> int | None:
    """Index of the option the text names: equal to it, or the one option it mentions."""
    key = squash(text)
    if not key:
        return None
    keys = [squash(o) for o in options]
    if key in keys and keys.count(key) == 1:
        return keys.index(key)
    inside = [i for i, k in enumerate(keys) if k and f" {k} " in f" {key} "]
    if len(inside) == 1:
        return inside[0]
    if len(inside) > 1:
        # "Paris, Texas" mentions both "Paris" and "Paris, Texas": the longest one is meant.
        longest = max(inside, key=lambda i: len(keys[i]))
        if all(keys[i] in keys[longest] for i in inside):
            return longest
        return None
    around = [i for i, k in enumerate(keys) if len(key) >= 4 and f" {key} " in f" {k} "]
    return around[0] if len(around) == 1 else None


def resolve_answer(raw: str, options: list[str], labels: list[str] | None = None) -> int | None:
    """Turn the text of an ``Answer:`` line (or a key entry) into an option index, or None."""
    text = " ".join(strip_markup(normalize(raw)).split()).strip(_TRAIL)
    if not text or not options:
        return None
    bare = text.strip("()[]").upper()
    if labels and bare in labels:
        return labels.index(bare)  # "3" under options labelled 1)-4) is a label, even if an option reads "3"
    by_text = _text_index(text, options)
    if by_text is not None and squash(text) == squash(options[by_text]):
        return by_text
    text = _PREFIX.sub("", text).strip(_TRAIL)
    match = _LEAD_LABEL.match(text)
    if match:
        label = next(g for g in match.groups() if g)
        bare_word = match.group(3) and label.islower() and text[match.end():match.end() + 1].isspace()
        index = label_index(label, len(options), labels)
        rest = text[match.end():].strip(" ).:]-,;/")
        if index is not None and (not bare_word or _text_index(rest, options) == index):
            return index
    return by_text if by_text is not None else _text_index(text, options)


def _matched_label(match: re.Match[str]) -> str:
    return next(g for g in match.groups() if g)


def extract_choice(text: str, n_options: int, *, options: list[str] | None = None,
                   number_base: int = 1) -> int | None:
    """Find the option a free-form answer picks ("The answer is (B)", "**Final Answer:** 1", "B) Paris").

    Letters count from A; numbers count from ``number_base`` (1 for "1)-4)" choices, 0 for "0.-3.").
    The last "final answer" wins, then the last "answer is X", then a label that opens the text, then
    (given ``options``) the one option text the answer mentions; an opening "A " followed by an
    option's text counts as that text. None when nothing valid is found.
    """
    try:
        lines = [strip_markup(line) for line in normalize(text).split("\n")]
    except (AttributeError, TypeError):
        return None
    # Single spaces keep the patterns linear: several "\s*" in a row backtrack badly on long runs.
    flat = " ".join(" ".join(lines).split())

    def pick(matches: list[re.Match[str]]) -> int | None:
        for match in reversed(matches):
            index = label_index(_matched_label(match), n_options, number_base=number_base)
            if index is not None:
                return index
        return None

    for pattern in (_FINAL, _STATED):
        index = pick(list(pattern.finditer(flat)))
        if index is not None:
            return index
    by_text = _text_index(flat, options) if options else None
    start = _START.match(flat)
    if start:
        index = label_index(_matched_label(start), n_options, number_base=number_base)
        # A bare capital followed by words may be the article: "A chloroplast." names an option by text.
        article = start.group(3) is not None and flat[start.end():start.end() + 1] == " "
        if index is not None and not (article and by_text is not None):
            return index
    return by_text

"""Reading a quiz written as JSON, tolerantly: code fences, chatter around it, trailing commas, smart
quotes used as string delimiters, raw newlines in strings, and a reply cut off mid-list.

Standard library only: a small scanner repairs the text, then ``json`` (or, for Python-style
single-quoted dicts, ``ast.literal_eval``) reads it.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from typing import Any

from quiz._answers import resolve_answer
from quiz._lines import options as split_option_label
from quiz._quotes import Sourced
from quiz._text import normalize, squash
from quiz.question import Question

_SMART_QUOTES = "\u201c\u201d"
_CONTROL_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_START = re.compile(r"[\[{]\s*[{\"'\u201c\u201d]")
_MAX_STARTS = 8

_STEM_KEYS = ("question", "q", "stem", "prompt", "text", "query", "title")
_OPTION_KEYS = ("options", "choices", "answers", "alternatives", "answeroptions", "possibleanswers")
_ANSWER_KEYS = ("answer", "correctanswer", "correct", "correctoption", "correctchoice", "answerindex",
                "correctindex", "key", "solution", "rightanswer", "correctanswerindex", "correctletter")
_EXPLANATION_KEYS = ("explanation", "rationale", "reason", "reasoning", "why", "justification")
_QUOTE_KEYS = ("quote", "quotation", "sourcequote", "passage", "citation", "evidence", "source")
_LIST_KEYS = ("questions", "quiz", "items", "mcqs", "data", "results")


def repair(src: str) -> tuple[str, str | None]:
    """Repair the JSON value that starts ``src``; return it and, when ``src`` ends inside that
    value, a version cut after its last complete object inside a list, with brackets closed."""
    out: list[str] = []
    stack: list[str] = []
    cut: tuple[int, list[str]] | None = None
    quote: str | None = None  # '"' inside a normal string, "curly" inside one opened by a smart quote
    i = 0
    while i < len(src):
        c = src[i]
        i += 1
        if quote is not None:
            if c == "\\" and i < len(src):
                out += [c, src[i]]
                i += 1
            elif (quote == '"' and c == '"') or (quote == "curly" and c in _SMART_QUOTES):
                out.append('"')
                quote = None
            elif c == '"':
                out.append('\\"')  # a plain quote inside a string opened by a smart quote
            elif c < " ":  # a raw newline, tab or other control character: JSON wants it escaped
                out.append(_CONTROL_ESCAPES.get(c) or f"\\u{ord(c):04x}")
            else:
                out.append(c)
            continue
        if c == '"' or c in _SMART_QUOTES:
            quote = '"' if c == '"' else "curly"
            out.append('"')
        elif c in "[{":
            stack.append(c)
            out.append(c)
        elif c in "]}":
            _drop_trailing_comma(out)
            if stack:
                stack.pop()
            out.append(c)
            if c == "}" and stack and stack[-1] == "[":
                cut = (len(out), list(stack))
            if not stack:
                break
        else:
            out.append(c)
    repaired = "".join(out)
    if not stack or cut is None:
        return repaired, None
    length, open_brackets = cut
    closers = "".join("]" if b == "[" else "}" for b in reversed(open_brackets))
    return repaired, "".join(out[:length]) + closers


def _drop_trailing_comma(out: list[str]) -> None:
    j = len(out) - 1
    while j >= 0 and out[j].isspace():
        j -= 1
    if j >= 0 and out[j] == ",":
        del out[j]


def _load(text: str) -> Any:
    """The first JSON-like value in ``text``, or None."""
    for candidate in text, _python_literals(text):
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError):
            pass
    try:
        with warnings.catch_warnings():  # "invalid escape sequence" for JSON escapes such as \/
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, OverflowError):
        return None


def _python_literals(text: str) -> str:
    return re.sub(r"\b(True|False|None)\b", lambda m: {"True": "true", "False": "false"}.get(m[1], "null"), text)


def _values(text: str) -> list[Any]:
    """JSON-looking values in the text: from each of the first few "[{" / "{"" starts."""
    found = []
    for match in list(_START.finditer(text))[:_MAX_STARTS]:
        repaired, truncated = repair(text[match.start():])
        for candidate in (repaired, truncated):
            value = _load(candidate) if candidate else None
            if value is not None:
                found.append(value)
                break
    return found


def _keyed(obj: dict) -> dict[str, Any]:
    return {squash(str(k)).replace(" ", ""): v for k, v in obj.items()}


def _pick(obj: dict[str, Any], names: tuple[str, ...]) -> Any:
    return next((obj[n] for n in names if n in obj), None)


def _looks_like_question(obj: Any) -> bool:
    if not isinstance(obj, dict):
        return False
    keys = _keyed(obj)
    return _pick(keys, _STEM_KEYS) is not None and isinstance(_pick(keys, _OPTION_KEYS), (list, dict))


def _question_list(value: Any, depth: int = 0) -> list[dict]:
    """The list of question objects inside a parsed value (a list, {"questions": [...]}, ...)."""
    if depth > 4:
        return []
    if _looks_like_question(value):
        return [value]
    if isinstance(value, list):
        if any(_looks_like_question(item) for item in value):
            return [item for item in value if isinstance(item, dict)]
        children = value
    elif isinstance(value, dict):
        keys = _keyed(value)
        children = [keys[k] for k in _LIST_KEYS if k in keys] + list(value.values())
    else:
        return []
    for child in children:
        found = _question_list(child, depth + 1)
        if found:
            return found
    return []


def _options(raw: Any) -> tuple[list[str], list[str] | None, int | None]:
    """Option texts, their labels (when given) and a marked-correct index, from a list or dict."""
    if isinstance(raw, dict):
        labels = [str(k).strip().upper() for k in raw]
        return [str(v).strip() for v in raw.values()], labels, None
    texts, marked = [], None
    for item in raw:
        if isinstance(item, dict):
            keys = _keyed(item)
            if keys.get("correct") is True or keys.get("iscorrect") is True:
                marked = len(texts)
            item = _pick(keys, ("text", "option", "value", "content", "answer", "label"))
        texts.append("" if item is None else str(item).strip())
    split = [split_option_label(t, numbers=True) for t in texts]
    if all(not prefix and len(found) == 1 for prefix, found in split) and texts:
        labels = [found[0].label for _, found in split]
        if len(set(labels)) == len(labels):
            return [found[0].text.strip() for _, found in split], labels, marked
    return texts, None, marked


def _answer(raw: Any, texts: list[str], labels: list[str] | None) -> int | None:
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int):  # an index is 0-based, as in the Question contract
        return raw if 0 <= raw < len(texts) else None
    if isinstance(raw, dict):
        keys = _keyed(raw)
        raw = _pick(keys, ("label", "letter", "text", "option", "value"))
        return _answer(raw, texts, labels)
    if isinstance(raw, str):
        return resolve_answer(raw, texts, labels)
    return None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _to_question(obj: dict) -> Sourced | None:
    keys = _keyed(obj)
    stem = _pick(keys, _STEM_KEYS)
    raw_options = _pick(keys, _OPTION_KEYS)
    if not isinstance(stem, str) or not stem.strip() or not isinstance(raw_options, (list, dict)):
        return None
    texts, labels, marked = _options(raw_options)
    if len(texts) < 2:
        return None
    answer = _answer(_pick(keys, _ANSWER_KEYS), texts, labels)
    question = Question(stem.strip(), texts, marked if answer is None else answer,
                        _text(_pick(keys, _EXPLANATION_KEYS)))
    return Sourced(question, _text(_pick(keys, _QUOTE_KEYS)))


def parse_json(text: str) -> list[Sourced]:
    """Questions (with their quotes) from the first JSON quiz in ``text``; [] when there is none."""
    text = normalize(text, quotes=False)
    for value in _values(text):
        questions = [q for q in map(_to_question, _question_list(value)) if q is not None]
        if questions:
            return questions
    return []

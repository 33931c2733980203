"""What one line of a model-written quiz is: a question header, options, an answer, an explanation...

Lines arrive already cleaned by ``quiz._text.strip_markup`` with runs of spaces squeezed to one,
which keeps every pattern here linear in the line length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from quiz import _words as words

# "Question 3", "Q1:", "QUESTION 1", "Question #2 of 10 - ...", "Q1) ...", "Frage 3:", "Pregunta n.º 2"
_QUESTION = words.alternatives(words.QUESTION)
_HEADER_NUMBERED = re.compile(
    rf"^(?i:{_QUESTION})\s?(?:(?i:{words.NUMBER_SIGN})\s?|#\s?)?(\d{{1,3}})"
    r"(?:\s(?i:of|de|von|di|van|sur)\s\d{1,3})?(?:\s?[:.)\]\-]|\s|$)\s?(.*)$")
# "(Easy): " after "Question 1": a tag, not part of the question
_HEADER_TAG = re.compile(r"^\([^()]{1,30}\)\s?[:.\-]\s?")
# "Question: ...", "Q: ...", "Pregunta: ..."
_HEADER_LABEL = re.compile(rf"^(?i:{_QUESTION})\s?[:.\-]\s?(.*)$")
# "1. ...", "12) ..." but not "1.5 m/s ..."
_HEADER_NUMBER = re.compile(r"^(\d{1,3})\s?([.)])(?:\s|(?=[^\d\s])|$)\s?(.*)$")

# "A) x", "a. x", "(A) x", "[b] x", "- A. x", "Option A: x". A bullet or the word "Option" only
# goes with letters: "- Choice 0: ..." in a chain of thought is not a choice list.
_OPTION_LETTER = re.compile(
    r"^(?:[-*\u2022+]\s)?(?:(?i:option|choice)\s)?"
    r"(?:\(([A-Ha-h])\)|\[([A-Ha-h])\]|([A-Ha-h])(?:([)\]])|([.:])(?=\s|$)|\s(-)\s))\s?(.*)$")
_OPTION_NUMBER = re.compile(r"^(?:\(([0-9])\)|([0-9])(?:([)\]])|([.:])(?=\s|$)))\s?(.*)$")
# Labels inside a line, for options written on one line: "A) x B) y C) z D) w".
_INLINE = re.compile(r"(?:^|(?<=\s))(?:\(([A-Ha-h0-9])\)|([A-Ha-h0-9])([).:]))(?=\s|$)")

# "Answer: B", "Correct answer is B", "Réponse : B", "La respuesta correcta es B", "Lösung: B", "(Answer: B)"
_ANSWER = re.compile(
    rf"^(?:(?i:{words.ARTICLE})\s)?(?:(?i:{words.alternatives(words.ANSWER)})"
    rf"|(?i:{words.alternatives(words.ANSWER_WITH_COLON)})(?=\s?[:=]))"
    rf"(?:\s?[:\-=]|\s(?i:{words.alternatives(words.COPULA)})(?![^\W\d_])\s?[:\-=]?|\s?(?=\())\s?(.*)$")
_ANSWER_KEY = re.compile(
    rf"^(?i:{words.alternatives(words.ANSWER_KEY)})"
    r"(?:\s(?i:and|with|et|avec|y|con|und|mit|e|com|en|met)\s(?i:explanations?|explications?|explicaciones"
    r"|erkl(?:ä|ae)rungen|spiegazioni|explica[cç](?:õ|o)es|uitleg))?\s?(?::\s?(.*)|$)")
_EXPLANATION = re.compile(rf"^(?i:{words.alternatives(words.EXPLANATION)})\s?(?:[:\-]\s?|$)(.*)$")
_QUOTE = re.compile(rf"^(?i:{words.alternatives(words.QUOTE)})\s?:\s?(.*)$")
_SEPARATOR = re.compile(r"^(?:[-*_#~]{3,}|={3,}.*|(?i:end)(?:\s(?i:of\s)?(?i:question)(?:\s\d{1,3})?)?\.?)$")
# An answer written at the end of an option's line: "Paris Answer: B", "Lille (Answer: B)", "Lille - Réponse : B"
_ANSWER_INSIDE = re.compile(
    rf"\s(?:[-\u2013\u2014]\s)?([(\[])?(?i:{words.alternatives(words.ANSWER_INSIDE)})\s?[:\-]\s?")
_EXPLANATION_INSIDE = re.compile(
    r"[\s.]?\s?(?i:explanation|explication|explicaci[oó]n|erkl(?:ä|ae)rung|spiegazione|explica[cç][aã]o|uitleg|"
    + "|".join(words.BECAUSE) + r")\s?[:\-,]?\s")
_MARK_WORDS = words.alternatives(words.CORRECT_MARK)
_MARKERS = re.compile(
    rf"\s?(?:\u2705|\u2714\ufe0f?|\u2713|\u2611\ufe0f?|\((?i:{_MARK_WORDS})\)"
    rf"|\[(?i:{_MARK_WORDS}|x)\]|(?:<-+|\u2190)\s?(?i:correct)\w*)\s?")
_NOISE_LINE = re.compile(rf"^(?i:{words.alternatives(words.OPTIONS_LINE)})\s?:?$")
_META_LINE = re.compile(
    r"^(?i:subject|theme|topic|difficulty|category|level|type|sujet|thème|difficulté|catégorie|niveau|tema"
    r"|dificultad|categoría|nivel|thema|schwierigkeit|kategorie|difficoltà|categoria|livello|dificuldade"
    r"|moeilijkheid|onderwerp)\s?:")
_LEADING_MARK = re.compile(r"^(?:\u2705|\u2714\ufe0f?|\u2713|\u2611\ufe0f?)\s?")


@dataclass
class Option:
    label: str  # upper-case letter or a digit
    style: str  # the punctuation around the label, to tell one list from the next
    text: str


def header(line: str) -> tuple[int | None, str] | None:
    """(number, stem text) for a word header ("Question 3: ...", "Q1.", "Question: ...")."""
    match = _HEADER_NUMBERED.match(line)
    if match:
        return int(match.group(1)), _HEADER_TAG.sub("", match.group(2), count=1)
    match = _HEADER_LABEL.match(line)
    return (None, match.group(1)) if match else None


def numbered(line: str) -> tuple[int, str, str] | None:
    """(number, delimiter, text) for "1. ..." or "1) ...": a question or an option, by context."""
    match = _HEADER_NUMBER.match(line)
    return (int(match.group(1)), match.group(2), match.group(3)) if match else None


def _first(*groups: str | None) -> str:
    return next((g for g in groups if g), "")


def options(line: str, *, numbers: bool) -> tuple[str, list[Option]]:
    """Options on this line and any text before them: ("", [A) x]) or ("Stem?", [A) .., D) ..]).

    ``numbers`` allows "1)"-style labels at the start of the line (the caller knows when a
    number is an option rather than the next question).
    """
    match = _OPTION_LETTER.match(line)
    if match:
        label = _first(match.group(1), match.group(2), match.group(3))
        style = ("()" if match.group(1) else "[]" if match.group(2)
                 else _first(match.group(4), match.group(5), match.group(6)))
        first = Option(label.upper(), style + ("a" if label.islower() else "A"), match.group(7))
        return "", _continue_inline(first)
    match = _OPTION_NUMBER.match(line) if numbers else None
    if match:
        label = _first(match.group(1), match.group(2))
        style = "()" if match.group(1) else _first(match.group(3), match.group(4))
        return "", _continue_inline(Option(label, style + "1", match.group(5)))
    return inline_options(line)


def _tokens(text: str) -> list[tuple[int, int, str, str]]:
    found = []
    for match in _INLINE.finditer(text):
        label = _first(match.group(1), match.group(2))
        kind = "1" if label.isdigit() else "a" if label.islower() else "A"
        found.append((match.start(), match.end(), label.upper(), ("()" if match.group(1) else match.group(3)) + kind))
    return found


def _next_label(label: str) -> str:
    return chr(ord(label) + 1)


def _split(text: str, start_label: str, style: str, tokens: list) -> list[tuple[int, int, str]]:
    """Positions of labels that follow ``start_label`` in order, in the same style."""
    run, expected = [], _next_label(start_label)
    for begin, end, label, token_style in tokens:
        if label == expected and token_style == style:
            run.append((begin, end, label))
            expected = _next_label(label)
    return run


def _continue_inline(first: Option) -> list[Option]:
    """Split "x B) y C) z" off the first option's text when the labels continue in its style."""
    run = _split(first.text, first.label, first.style, _tokens(first.text))
    if not run:
        return [first]
    result = [Option(first.label, first.style, first.text[: run[0][0]])]
    for i, (begin, end, label) in enumerate(run):
        stop = run[i + 1][0] if i + 1 < len(run) else len(first.text)
        result.append(Option(label, first.style, first.text[end:stop]))
    return result


def inline_options(line: str) -> tuple[str, list[Option]]:
    """Options that start mid-line ("Stem? A) x B) y C) z"); three labels at least, so prose
    that mentions "(a) and (b)" stays prose."""
    tokens = _tokens(line)
    starts = [i for i, token in enumerate(tokens) if token[2] in ("A", "0", "1") and token[0] > 0]
    for i in starts[:8]:  # a few candidates: a line of "A) A) A) ..." must stay linear
        begin, end, label, style = tokens[i]
        run = _split(line, label, style, tokens[i + 1:])
        if len(run) >= 2:
            first = Option(label, style, line[end:])
            return line[:begin].strip(), _continue_inline(first)
    return line, []


def answer(line: str) -> str | None:
    """The text after "Answer:", "Correct answer:", "Correct option:" ... ("" when on the next line)."""
    if len(line) > 2 and line[0] in "([" and line[-1] in ")]":
        line = line[1:-1].strip()  # "(Answer: B)"
    match = _ANSWER.match(line)
    return match.group(1).strip() if match else None


def split_explanation(text: str) -> tuple[str, str | None]:
    """"B. Explanation: because ..." -> ("B", "because ...")."""
    match = _EXPLANATION_INSIDE.search(text)
    if not match or match.start() == 0:
        return text, None
    return text[: match.start()].strip(), text[match.end():].strip() or None


def split_answer(text: str) -> tuple[str, str | None]:
    """"Paris Answer: B" or "Lille (Answer: B)" (a key written on an option's line) -> ("Paris", "B")."""
    match = _ANSWER_INSIDE.search(text)
    if not match:
        return text, None
    rest = text[match.end():].strip()
    if match.group(1) and rest[-1:] in ")]":
        rest = rest[:-1].strip()  # the bracket opened before "Answer"
    return text[: match.start()].strip(), rest


def answer_key(line: str) -> str | None:
    """The rest of an "Answer Key:" / "Answers:" line ("" when the entries follow below)."""
    match = _ANSWER_KEY.match(line)
    return (match.group(1) or "").strip() if match else None


def explanation(line: str) -> str | None:
    """The text after "Explanation:", "Explication :", "Erklärung:" ... ("" when it follows below)."""
    match = _EXPLANATION.match(line)
    return match.group(1).strip() if match else None


def quote(line: str) -> str | None:
    """The text after "Quote:" / "Citation :" / "Zitat:": the passage of the material a question is about."""
    match = _QUOTE.match(line)
    return match.group(1).strip() if match else None


def starts_question(line: str) -> bool:
    """A header, a separator, an answer-key heading or a numbered question ("3. Why ...?")."""
    number = numbered(line)
    return (header(line) is not None or is_separator(line) or answer_key(line) is not None
            or bool(number and number[2].endswith("?")))


def is_separator(line: str) -> bool:
    """"---", "***", "===== Cluster 3 =====", "END": the current question is over."""
    return bool(_SEPARATOR.match(line))


def take_marker(line: str) -> tuple[str, bool]:
    """Remove a "this one is right" marker (a check mark, "(Correct)") and say whether one was there."""
    cleaned, count = _MARKERS.subn(" ", line)
    return (" ".join(cleaned.split()), True) if count else (line, False)


def take_leading_marker(line: str) -> tuple[str, bool]:
    """"✅ C) Paris" -> ("C) Paris", True): a check mark in front of the label."""
    match = _LEADING_MARK.match(line)
    return (line[match.end():], True) if match else (line, False)


def is_noise(line: str) -> bool:
    """Label lines that belong to no field: "Options:", "Choices:"."""
    return bool(_NOISE_LINE.match(line))


def is_meta(line: str) -> bool:
    """"Subject: ...", "Topic: ...": metadata models put between the question and its options."""
    return bool(_META_LINE.match(line))

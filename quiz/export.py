"""Download a quiz as JSON, CSV, Moodle GIFT or a printable HTML page.

    name, data = export_quiz(quiz, "gift", with_key=True)    # ("photosynthesis-gift.txt", b"...")
    name, data = export_quiz(quiz, "html", with_key=False)   # the student's copy: questions only

Two audiences. ``with_key=True`` is the teacher's file: the answer and the explanation of every
question. ``with_key=False`` is the student's: the questions and their options in the order the quiz
shows them, and nothing the key can be derived from (no answer, no explanation, no seed). GIFT is a
teacher-only format: Moodle needs the key to grade, so a GIFT file without it would be useless.

Every text is written stripped of surrounding whitespace. The teacher's JSON reads back through
``quiz.parse.parse_quiz`` and the CSV through ``import_csv`` to the same questions, options, keys and
explanations. Standard library only.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import unicodedata

from quiz.question import LETTERS, Question, Quiz

FORMATS = ("json", "csv", "gift", "html")
STUDENT_FORMATS = ("json", "csv", "html")
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv", "gift": "text/plain", "html": "text/html"}
# Moodle's import page accepts GIFT as a plain-text file, so the file ends in .txt.
_SUFFIXES = {"json": ".json", "csv": ".csv", "gift": "-gift.txt", "html": ".html"}
_MIN_OPTIONS = 2


def export_quiz(quiz: Quiz, fmt: str, *, with_key: bool) -> tuple[str, bytes]:
    """The file name (from the topic, ``[a-z0-9-]`` only) and the bytes of ``quiz`` as ``fmt``.

    ``fmt`` is one of ``FORMATS``; without the key only ``STUDENT_FORMATS``. Raises ValueError for
    an unknown format, GIFT without the key, or a quiz that cannot be written (no questions, fewer
    than 2 or more than 8 options, an empty text, a question without a key in a teacher's GIFT).
    """
    fmt = fmt.strip().lower() if isinstance(fmt, str) else fmt
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "gift" and not with_key:
        raise ValueError("GIFT is the teacher's export (Moodle grades with the key it carries): "
                         "use with_key=True, or json, csv or html for a student's copy")
    if fmt == "json":
        content = to_json(quiz, with_key=with_key).encode("utf-8")
    elif fmt == "csv":
        # Excel opens a UTF-8 CSV without a byte-order mark as the local code page and garbles every
        # accented letter; with the mark it reads UTF-8. Python reads it back with "utf-8-sig".
        content = to_csv(quiz, with_key=with_key).encode("utf-8-sig")
    elif fmt == "gift":
        content = to_gift(quiz).encode("utf-8")
    else:
        content = to_html(quiz, with_key=with_key).encode("utf-8")
    audience = "" if fmt == "gift" else "-teacher" if with_key else "-student"
    return f"{file_stem(quiz.topic)}{audience}{_SUFFIXES[fmt]}", content


def file_stem(topic: str) -> str:
    """A file-name stem from the topic: ASCII letters, digits and hyphens, at most 60; "quiz" if none."""
    ascii_text = unicodedata.normalize("NFKD", topic or "").encode("ascii", "ignore").decode("ascii")
    stem = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60].rstrip("-")
    return stem or "quiz"


def _checked(quiz: Quiz) -> list[Question]:
    """The questions with every text stripped; ValueError for what no format can write."""
    if not quiz.questions:
        raise ValueError("the quiz has no questions: generate or join a quiz before exporting it")
    cleaned = []
    for n, q in enumerate(quiz.questions, 1):
        if not q.question.strip():
            raise ValueError(f"question {n} has no text: remove it or write its question before exporting")
        if not _MIN_OPTIONS <= len(q.options) <= len(LETTERS):
            raise ValueError(f"question {n} has {len(q.options)} options: export needs "
                             f"{_MIN_OPTIONS} to {len(LETTERS)} (labelled A-{LETTERS[-1]})")
        options = [str(o).strip() for o in q.options]
        if not all(options):
            raise ValueError(f"question {n} has an empty option ({LETTERS[options.index('')]}): "
                             f"write it or remove it before exporting")
        explanation = (q.explanation or "").strip() or None
        cleaned.append(Question(q.question.strip(), options, q.answer, explanation))
    return cleaned


def _letter(question: Question) -> str:
    return "" if question.answer is None else LETTERS[question.answer]


# --- JSON -------------------------------------------------------------------------------------------

# Characters quiz.parse removes or turns into plain spaces before reading JSON (zero-width and odd
# spaces that break its line patterns). Written as \u escapes they survive the round trip.
_NORMALIZED = re.compile("[\u00a0\u00ad\u2000-\u200d\u202f\u205f\u2060\u3000\ufeff]")


def to_json(quiz: Quiz, *, with_key: bool) -> str:
    """``{"topic", "difficulty", "questions": [{"question", "options": {"A": ...}, "answer": "B",
    "explanation"}]}``; the student's copy has no ``answer`` and no ``explanation``.

    Options are an object keyed by letter, so "answer" names its option by label and an option text
    that looks like a label ("1) 5 N") is read back as written.
    """
    items = []
    for q in _checked(quiz):
        item: dict = {"question": q.question, "options": dict(zip(LETTERS, q.options))}
        if with_key:
            item["answer"] = _letter(q) or None
            item["explanation"] = q.explanation
        items.append(item)
    document = {"topic": quiz.topic, "difficulty": quiz.difficulty,
                "audience": "teacher" if with_key else "student", "questions": items}
    text = json.dumps(document, ensure_ascii=False, indent=2)
    # Outside strings the document is ASCII, so these characters can only be inside strings.
    return _NORMALIZED.sub(lambda m: f"\\u{ord(m[0]):04x}", text) + "\n"


# --- CSV --------------------------------------------------------------------------------------------

# A cell starting with one of these is a formula to Excel and LibreOffice ("=HYPERLINK(...)" from a
# model's text would run); a leading apostrophe makes it text. A cell that already starts with an
# apostrophe gets one too, so import_csv can remove exactly the one it added.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def _uncell(text: str) -> str:
    return text[1:] if len(text) > 1 and text[0] == "'" and text[1:].startswith(_FORMULA_START) else text


def to_csv(quiz: Quiz, *, with_key: bool) -> str:
    """One row per question: ``question, A, B, C, D[, answer, explanation]`` (as many option columns
    as the longest question needs; shorter questions leave the last ones empty)."""
    questions = _checked(quiz)
    width = max(len(q.options) for q in questions)
    header = ["question", *LETTERS[:width]] + (["answer", "explanation"] if with_key else [])
    out = io.StringIO(newline="")
    writer = csv.writer(out)  # RFC 4180: CRLF rows, fields with commas, quotes or newlines quoted
    writer.writerow(header)
    for q in questions:
        row = [q.question, *q.options, *[""] * (width - len(q.options))]
        if with_key:
            row += [_letter(q), q.explanation or ""]
        writer.writerow([_cell(cell) for cell in row])
    return out.getvalue()


def import_csv(data: bytes | str) -> list[Question]:
    """Questions from a CSV in ``to_csv``'s layout (a header ``question,A,B,...`` and optionally
    ``answer`` and ``explanation``); ValueError naming the row when something does not fit."""
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data.removeprefix("\ufeff")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = [h.strip().lower() for h in rows[0]] if rows else []
    width = 0
    while 1 + width < len(header) and width < len(LETTERS) and header[1 + width] == LETTERS[width].lower():
        width += 1
    if not header or header[0] != "question" or width < _MIN_OPTIONS:
        raise ValueError(f"the CSV header is {rows[0] if rows else []!r}: expected 'question', then option "
                         f"columns 'A', 'B', ... and optionally 'answer' and 'explanation'")
    answer_col = header.index("answer") if "answer" in header else None
    explanation_col = header.index("explanation") if "explanation" in header else None
    questions = []
    for line, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue
        cells = [_uncell(c).strip() for c in row] + [""] * (len(header) - len(row))
        options = cells[1:1 + width]
        while options and not options[-1]:
            options.pop()
        if not cells[0] or len(options) < _MIN_OPTIONS or not all(options):
            raise ValueError(f"CSV row {line} needs a question and at least {_MIN_OPTIONS} options "
                             f"without gaps, got {row[:1 + width]!r}")
        letter = cells[answer_col].upper() if answer_col is not None else ""
        if letter and (len(letter) != 1 or letter not in LETTERS[:len(options)]):
            raise ValueError(f"CSV row {line}: the answer {letter!r} is not one of its option letters "
                             f"{', '.join(LETTERS[:len(options)])}")
        explanation = cells[explanation_col] if explanation_col is not None else ""
        questions.append(Question(cells[0], options, LETTERS.index(letter) if letter else None,
                                  explanation or None))
    return questions


# --- Moodle GIFT ------------------------------------------------------------------------------------

# Moodle's own GIFT writer escapes exactly these; "\n" is its line-break escape (a raw line break
# could leave a blank line, which ends a question) and carriage returns are dropped.
_GIFT_ESCAPES = {"\\": "\\\\", "~": "\\~", "=": "\\=", "#": "\\#", "{": "\\{", "}": "\\}", ":": "\\:",
                 "\n": "\\n"}
_GIFT_SPECIAL = re.compile(r"[\\~=#{}:\n]")


def gift_escape(text: str) -> str:
    """``text`` with GIFT's special characters backslash-escaped and line breaks written as ``\\n``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _GIFT_SPECIAL.sub(lambda m: _GIFT_ESCAPES[m[0]], text)


def _gift_part(text: str) -> str:
    # Moodle reads a leading "[html]"-like tag as the text's format and a leading "%50%" on a wrong
    # answer as a partial-credit weight; an explicit "[plain]" in front keeps such text literal.
    escaped = gift_escape(text)
    return "[plain]" + escaped if escaped.startswith(("[", "%")) else escaped


def to_gift(quiz: Quiz) -> str:
    """The quiz as Moodle GIFT: one multiple-choice question per block, the right option ``=``, the
    others ``~``, the explanation as general feedback ``####``. Texts are plain text (``[plain]``),
    so Moodle shows "<b>" or "*" as written. Every question needs a key."""
    questions = _checked(quiz)
    for n, q in enumerate(questions, 1):
        if q.answer is None:
            raise ValueError(f"question {n} has no answer key, and Moodle cannot grade a GIFT question "
                             f"without one: export it as json, csv or html, or add its key")
    topic = " ".join(quiz.topic.split()) or "Quiz"
    header = f"// {topic} ({' '.join(quiz.difficulty.split())}), {len(questions)} questions, from Llama Tutor"
    blocks = []
    for n, q in enumerate(questions, 1):
        lines = [f"::{gift_escape(topic[:80].rstrip())} Q{n:02d}::[plain]{gift_escape(q.question)} {{"]
        for i, option in enumerate(q.options):
            lines.append(f"\t{'=' if i == q.answer else '~'}{_gift_part(option)}")
        if q.explanation:
            lines.append(f"\t####{_gift_part(q.explanation)}")
        lines.append("}")
        blocks.append("\n".join(lines))
    # The comment sits on the first block: a block of comments alone would be an empty question.
    return header + "\n" + "\n\n".join(blocks) + "\n"


# --- printable HTML ---------------------------------------------------------------------------------

_STYLE = """\
body { font-family: Georgia, "Times New Roman", serif; max-width: 46rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.45; color: #000; background: #fff; }
.text { white-space: pre-wrap; }
.meta { color: #444; }
.name { margin: 1.5rem 0; }
ol.questions > li { margin-bottom: 1.2rem; break-inside: avoid; page-break-inside: avoid; }
ol.options { list-style-type: upper-alpha; }
.key { margin-top: 3rem; border-top: 2px solid #000; padding-top: 1rem; }
.key li { margin-bottom: 0.6rem; }
@media print {
  body { margin: 0; max-width: none; }
  .key { break-before: page; page-break-before: always; border-top: none; margin-top: 0; }
}"""


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def to_html(quiz: Quiz, *, with_key: bool) -> str:
    """A self-contained page (no scripts, links or images) to print: the questions, and for the
    teacher the answer key after them, starting on a new printed page."""
    questions = _checked(quiz)
    topic = _esc(quiz.topic.strip() or "Quiz")
    parts = [
        "<!DOCTYPE html>", "<html>", "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{topic}{' (answer key included)' if with_key else ''}</title>",
        f"<style>\n{_STYLE}\n</style>", "</head>", "<body>",
        f"<h1>{topic}</h1>",
        f'<p class="meta">{len(questions)} questions · {_esc(quiz.difficulty)}</p>',
        '<p class="name">Name: ______________________________</p>',
        '<ol class="questions">',
    ]
    for q in questions:
        options = "".join(f'<li class="text">{_esc(o)}</li>' for o in q.options)
        parts.append(f'<li><p class="text">{_esc(q.question)}</p><ol class="options" type="A">{options}</ol></li>')
    parts.append("</ol>")
    if with_key:
        parts += ['<section class="key">', "<h2>Answer key</h2>", '<ol class="answers">']
        for q in questions:
            if q.answer is None:
                line = "<strong>—</strong> no key"
            else:
                line = f'<strong>{_letter(q)}</strong> <span class="text">{_esc(q.options[q.answer])}</span>'
            if q.explanation:
                line += f'<p class="text">{_esc(q.explanation)}</p>'
            parts.append(f"<li>{line}</li>")
        parts += ["</ol>", "</section>"]
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"

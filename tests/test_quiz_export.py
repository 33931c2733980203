"""Quiz export: teacher and student files in JSON, CSV, Moodle GIFT and printable HTML.

The GIFT files are read back by a strict reader written here from Moodle's GIFT grammar (its
importer's rules: backslash escapes for ~ = # { } : and the backslash, ``\\n`` for a line break,
``::title::``, ``[format]`` prefixes, ``=right ~wrong #feedback ####general feedback``); it rejects
any special character left unescaped, so a file it accepts imports as written.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest

from quiz.export import FORMATS, STUDENT_FORMATS, export_quiz, file_stem, import_csv, to_gift
from quiz.parse import parse_quiz
from quiz.question import Question, Quiz


@pytest.fixture
def geography() -> Quiz:
    return Quiz("Geography", "easy", [
        Question("What is the capital of France?", ["Berlin", "Paris", "Rome", "Madrid"], 1,
                 "Paris has been the capital since 987."),
        Question("2 + 2 = ?", ["3", "4", "5", "22"], 1),
    ], seed=424242, raw_outputs=["1. What is the capital of France?\nAnswer: B (SECRET-RAW)"])


# Text that breaks naive writers: every GIFT special, backslashes, line breaks (a blank line ends a
# GIFT question), format tags and weights at the start of a part, spreadsheet formulas, odd spaces
# the quiz parser would normalise, HTML, and text in other scripts.
TRICKY = [
    Question("Which set is {x : x > 0} ∩ {x : x < 2} for x ∈ ℤ?\nPick one.",
             ["{1}", "∅", "{0, 1}", "=1"], 0, "Only 1 is an integer with 0 < x < 2 # strictly."),
    Question("Which GIFT character starts a wrong answer: ~ or =?", ["~", "=", "#", "::"], 0,
             "A tilde (~) marks a wrong answer; = marks the right one.\n\nSee the Moodle docs."),
    Question("Café, naïve, 東京 — which word has a diaeresis?", ["café", "naïve", "東京", "Ærø"], 1, None),
    Question("C:\\new\\table has backslashes; what does \\n mean in GIFT?",
             ["[html] a tag", "%50% half a mark", "-1 + 2", "a line break"], 3,
             "[1] A backslash escapes the next character: \\~ \\= \\# \\{ \\} \\:"),
    Question("Spaces:\u00a0non-breaking, zero\u200bwidth, tab\tand <b>bold</b> & 'quotes' \"too\"",
             ["@SUM(A1:A3)", "+1", "'quoted", "''twice"], 2, "Excel reads =, +, -, @ as formulas."),
]


@pytest.fixture
def tricky() -> Quiz:
    return Quiz("Escapes: {GIFT} & CSV = fun #1", "hard", list(TRICKY), seed=7)


def as_tuples(questions: list[Question]) -> list[tuple]:
    return [(q.question, q.options, q.answer, q.explanation) for q in questions]


# --- file names and formats ---------------------------------------------------------------------


def test_file_names_come_from_the_topic_with_safe_characters_only(geography: Quiz) -> None:
    assert export_quiz(geography, "json", with_key=True)[0] == "geography-teacher.json"
    assert export_quiz(geography, "csv", with_key=False)[0] == "geography-student.csv"
    assert export_quiz(geography, "html", with_key=True)[0] == "geography-teacher.html"
    assert export_quiz(geography, "GIFT ", with_key=True)[0] == "geography-gift.txt"
    assert file_stem("Photosynthèse: le cycle de Calvin / C3!") == "photosynthese-le-cycle-de-calvin-c3"
    assert file_stem("../../etc/passwd") == "etc-passwd"
    assert file_stem("東京の歴史") == "quiz"
    assert file_stem("x" * 100) == "x" * 60
    assert (FORMATS, STUDENT_FORMATS) == (("json", "csv", "gift", "html"), ("json", "csv", "html"))


def test_unknown_format_and_student_gift_are_refused(geography: Quiz) -> None:
    with pytest.raises(ValueError, match=r"unknown export format 'pdf': use one of json, csv, gift, html"):
        export_quiz(geography, "pdf", with_key=True)
    with pytest.raises(ValueError, match=r"GIFT is the teacher's export .*use with_key=True, or json, csv or html"):
        export_quiz(geography, "gift", with_key=False)


def test_quizzes_that_cannot_be_written_say_why(geography: Quiz) -> None:
    with pytest.raises(ValueError, match="the quiz has no questions"):
        export_quiz(Quiz("Empty", "easy", []), "json", with_key=True)
    one_option = Quiz("T", "easy", [Question("Q?", ["only"], 0)])
    with pytest.raises(ValueError, match="question 1 has 1 options: export needs 2 to 8"):
        export_quiz(one_option, "csv", with_key=False)
    blank = Quiz("T", "easy", [Question("Q?", ["a", "  ", "c"], 0)])
    with pytest.raises(ValueError, match=r"question 1 has an empty option \(B\)"):
        export_quiz(blank, "html", with_key=True)
    unkeyed = Quiz("T", "easy", [geography.questions[0], Question("Q?", ["a", "b"], None)])
    with pytest.raises(ValueError, match="question 2 has no answer key, and Moodle cannot grade"):
        export_quiz(unkeyed, "gift", with_key=True)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("with_key", [True, False])
def test_no_export_carries_the_seed_or_the_models_raw_reply(geography: Quiz, fmt: str, with_key: bool) -> None:
    if fmt == "gift" and not with_key:
        return
    _, data = export_quiz(geography, fmt, with_key=with_key)
    assert b"424242" not in data and b"SECRET-RAW" not in data and b"seed" not in data


@pytest.mark.parametrize("fmt", STUDENT_FORMATS)
def test_student_files_hold_nothing_of_the_key(tricky: Quiz, fmt: str) -> None:
    _, data = export_quiz(tricky, fmt, with_key=False)
    text = data.decode("utf-8-sig")
    for q in tricky.questions:
        if q.explanation:
            first_words = q.explanation.split("\n")[0][:25]
            assert first_words not in text and first_words.replace("&", "&amp;") not in text
    assert "explanation" not in text.lower() and '"answer"' not in text and "Answer key" not in text
    assert "answer" not in text.splitlines()[0]  # the CSV header


# --- JSON -----------------------------------------------------------------------------------------


def test_teacher_json_has_this_shape(geography: Quiz) -> None:
    _, data = export_quiz(geography, "json", with_key=True)
    assert json.loads(data) == {
        "topic": "Geography", "difficulty": "easy", "audience": "teacher",
        "questions": [
            {"question": "What is the capital of France?",
             "options": {"A": "Berlin", "B": "Paris", "C": "Rome", "D": "Madrid"},
             "answer": "B", "explanation": "Paris has been the capital since 987."},
            {"question": "2 + 2 = ?", "options": {"A": "3", "B": "4", "C": "5", "D": "22"},
             "answer": "B", "explanation": None},
        ]}


def test_teacher_json_reads_back_through_the_quiz_parser(tricky: Quiz) -> None:
    _, data = export_quiz(tricky, "json", with_key=True)
    text = data.decode("utf-8")
    assert "東京" in text and "naïve" in text  # readable UTF-8, not \u escapes
    assert "\\u00a0" in text and "\\u200b" in text  # the parser would turn these into plain spaces
    assert as_tuples(parse_quiz(text)) == as_tuples(TRICKY)


def test_label_like_options_read_back_as_written() -> None:
    quiz = Quiz("Physics", "easy", [Question("Net force?", ["1) 5 N", "2) 10 N", "3) 0 N", "4) 2 N"], 2)])
    _, data = export_quiz(quiz, "json", with_key=True)
    assert as_tuples(parse_quiz(data.decode())) == [("Net force?", ["1) 5 N", "2) 10 N", "3) 0 N", "4) 2 N"], 2, None)]


def test_student_json_has_questions_and_options_only(tricky: Quiz) -> None:
    _, data = export_quiz(tricky, "json", with_key=False)
    document = json.loads(data)
    assert document["audience"] == "student"
    assert [set(item) for item in document["questions"]] == [{"question", "options"}] * 5
    assert as_tuples(parse_quiz(data.decode())) == [(q.question, q.options, None, None) for q in TRICKY]


# --- CSV ------------------------------------------------------------------------------------------


def test_teacher_csv_is_excel_friendly_utf8_with_these_rows(geography: Quiz) -> None:
    _, data = export_quiz(geography, "csv", with_key=True)
    assert data == (
        b"\xef\xbb\xbfquestion,A,B,C,D,answer,explanation\r\n"
        b"What is the capital of France?,Berlin,Paris,Rome,Madrid,B,Paris has been the capital since 987.\r\n"
        b"2 + 2 = ?,3,4,5,22,B,\r\n")


def test_csv_round_trips_tricky_text_and_guards_formulas(tricky: Quiz) -> None:
    _, data = export_quiz(tricky, "csv", with_key=True)
    assert as_tuples(import_csv(data)) == as_tuples(TRICKY)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0] == ["question", "A", "B", "C", "D", "answer", "explanation"]
    assert rows[1][4] == "'=1"  # a spreadsheet shows it as text instead of computing it
    assert rows[4][2:4] == ["%50% half a mark", "'-1 + 2"]
    assert rows[5][1:5] == ["'@SUM(A1:A3)", "'+1", "''quoted", "'''twice"]
    assert rows[1][0] == TRICKY[0].question  # the line break stays inside the quoted cell


def test_student_csv_has_no_answer_columns(tricky: Quiz) -> None:
    _, data = export_quiz(tricky, "csv", with_key=False)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0] == ["question", "A", "B", "C", "D"] and all(len(row) == 5 for row in rows)
    assert as_tuples(import_csv(data)) == [(q.question, q.options, None, None) for q in TRICKY]


def test_csv_with_fewer_options_in_some_questions() -> None:
    quiz = Quiz("Mixed", "easy", [Question("Yes or no?", ["Yes", "No"], 0),
                                  Question("Pick C", ["a", "b", "c", "d", "e"], 2, "C is c.")])
    _, data = export_quiz(quiz, "csv", with_key=True)
    assert data.decode("utf-8-sig").splitlines()[:2] == ["question,A,B,C,D,E,answer,explanation",
                                                          "Yes or no?,Yes,No,,,,A,"]
    assert as_tuples(import_csv(data)) == as_tuples(quiz.questions)


def test_import_csv_names_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="the CSV header is \\['q', 'x'\\]: expected 'question'"):
        import_csv("q,x\r\nwhat,a\r\n")
    with pytest.raises(ValueError, match="CSV row 2: the answer 'E' is not one of its option letters A, B, C"):
        import_csv("question,A,B,C,answer\r\nWhat?,x,y,z,E\r\n")
    with pytest.raises(ValueError, match="CSV row 3 needs a question and at least 2 options without gaps"):
        import_csv("question,A,B,C\r\nWhat?,x,y,z\r\nWhy?,x,,z\r\n")


# --- Moodle GIFT ----------------------------------------------------------------------------------


class GiftError(ValueError):
    pass


@dataclass
class GiftAnswer:
    right: bool
    weight: str | None
    text: str
    feedback: str | None


@dataclass
class GiftQuestion:
    title: str
    text_format: str | None
    text: str
    answers: list[GiftAnswer]
    general_feedback: str | None


_SPECIAL = "~=#{}:"
_FORMATS = {"html", "moodle", "plain", "markdown"}


def _unescape(raw: str) -> str:
    """One text part: ``\\X`` for a special X, ``\\\\`` and ``\\n``; anything else unescaped is an error."""
    out, i = [], 0
    while i < len(raw):
        c = raw[i]
        if c == "\\":
            nxt = raw[i + 1] if i + 1 < len(raw) else ""
            if nxt and nxt in _SPECIAL + "\\":
                out.append(nxt)
            elif nxt == "n":
                out.append("\n")
            else:
                raise GiftError(f"unknown escape '\\{nxt}' in {raw!r}")
            i += 2
            continue
        if c in _SPECIAL:
            raise GiftError(f"unescaped {c!r} in {raw!r}")
        if c in "\r\n":
            raise GiftError(f"raw line break inside {raw!r}")
        out.append(c)
        i += 1
    return "".join(out)


def _unescaped_at(text: str, start: int, tokens: tuple[str, ...]) -> tuple[int, str]:
    """Position and token of the first unescaped token at or after ``start``; (len, "") if none."""
    i = start
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        for token in tokens:
            if text.startswith(token, i):
                return i, token
        i += 1
    return len(text), ""


def _part(raw: str) -> tuple[str | None, str]:
    raw = raw.strip()
    match = re.match(r"\[(\w+)\]", raw)
    if match and match[1] in _FORMATS:
        return match[1], _unescape(raw[match.end():].strip())
    return None, _unescape(raw)


def _answers(section: str) -> tuple[list[GiftAnswer], str | None]:
    answers, general, i = [], None, 0
    while True:
        i, marker = _unescaped_at(section, i, ("####", "=", "~", "#", "{", "}"))
        if section[:i].strip() and not answers:
            raise GiftError(f"text before the first answer: {section[:i]!r}")
        if marker == "":
            return answers, general
        if marker == "####":
            general = _part(section[i + 4:])[1]
            return answers, general
        if marker not in "=~" or general is not None:
            raise GiftError(f"unexpected {marker!r} in the answers {section!r}")
        end, _ = _unescaped_at(section, i + 1, ("=", "~", "#", "{", "}"))
        raw = section[i + 1:end].strip()
        weight = None
        if marker == "~" and (w := re.match(r"%(-?\d{1,3}(?:\.\d+)?)%", raw)):
            weight, raw = w[1], raw[w.end():]
        feedback = None
        if section.startswith("#", end) and not section.startswith("####", end):
            fb_end, _ = _unescaped_at(section, end + 1, ("####", "=", "~", "#", "{", "}"))
            if section.startswith("#", fb_end) and not section.startswith("####", fb_end):
                raise GiftError(f"a second '#' after the feedback in {section!r}")
            feedback, end = _part(section[end + 1:fb_end])[1], fb_end
        answers.append(GiftAnswer(marker == "=", weight, _part(raw)[1], feedback))
        i = end


def read_gift(text: str) -> list[GiftQuestion]:
    """Multiple-choice questions from a GIFT file, strictly: one question per block of lines."""
    questions = []
    for block in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")):
        lines = [line for line in block.split("\n") if not line.strip().startswith("//")]
        body = "\n".join(lines).strip()
        if not body:
            continue
        if not body.startswith("::"):
            raise GiftError(f"a question without a ::title:: {body[:40]!r}")
        title_end, token = _unescaped_at(body, 2, ("::",))
        if not token:
            raise GiftError(f"unclosed title in {body[:40]!r}")
        open_at, token = _unescaped_at(body, title_end + 2, ("{", "}"))
        close_at, closing = _unescaped_at(body, open_at + 1, ("{", "}"))
        if token != "{" or closing != "}" or body[close_at + 1:].strip():
            raise GiftError(f"the answers must be one {{...}} at the end of the question: {body[:60]!r}")
        text_format, question_text = _part(body[title_end + 2:open_at])
        answers, general = _answers(body[open_at + 1:close_at])
        if len(answers) < 2 or sum(a.right for a in answers) != 1:
            raise GiftError(f"a multiple-choice question needs one '=' and at least one '~': {body[:60]!r}")
        questions.append(GiftQuestion(_unescape(body[2:title_end].strip()), text_format, question_text,
                                      answers, general))
    return questions


def gift_to_questions(text: str) -> list[Question]:
    return [Question(g.text, [a.text for a in g.answers], next(i for i, a in enumerate(g.answers) if a.right),
                     g.general_feedback) for g in read_gift(text)]


def test_the_strict_reader_reads_moodles_own_example_and_rejects_unescaped_specials() -> None:
    example = ("// from the GIFT documentation\n::Q2:: What's between orange and green in the spectrum?\n"
               "{ =yellow # right; good! ~red # wrong, it's yellow ~%50%blue # half right }")
    [q] = read_gift(example)
    assert (q.title, q.text, q.general_feedback) == ("Q2", "What's between orange and green in the spectrum?", None)
    assert q.answers == [GiftAnswer(True, None, "yellow", "right; good!"),
                         GiftAnswer(False, None, "red", "wrong, it's yellow"),
                         GiftAnswer(False, "50", "blue", "half right")]
    for bad in ("::t::1 + 1 = 2? {=yes ~no}", "::t::Time: now? {=yes ~no}", "::t::Q {=a{b} ~no}",
                "::t::Q {=yes ~no: never}", "::t::Q {=yes ~no} trailing", "::t::Q {=yes ~n\\o}",
                "::t::Q {=yes ~no #a #b}", "::t::Q {=yes =also ~no}", "::t::Q {=yes}"):
        with pytest.raises(GiftError):
            read_gift(bad)


def test_gift_file_is_exactly_this(geography: Quiz) -> None:
    _, data = export_quiz(geography, "gift", with_key=True)
    assert data.decode("utf-8") == (
        "// Geography (easy), 2 questions, from Llama Tutor\n"
        "::Geography Q01::[plain]What is the capital of France? {\n"
        "\t~Berlin\n\t=Paris\n\t~Rome\n\t~Madrid\n"
        "\t####Paris has been the capital since 987.\n"
        "}\n\n"
        "::Geography Q02::[plain]2 + 2 \\= ? {\n"
        "\t~3\n\t=4\n\t~5\n\t~22\n"
        "}\n")


def test_gift_round_trips_tricky_text_through_the_grammar(tricky: Quiz) -> None:
    text = to_gift(tricky)
    parsed = read_gift(text)
    assert [g.title for g in parsed] == [f"Escapes: {{GIFT}} & CSV = fun #1 Q0{n}" for n in range(1, 6)]
    assert {g.text_format for g in parsed} == {"plain"}
    assert all(a.weight is None and a.feedback is None for g in parsed for a in g.answers)
    assert as_tuples(gift_to_questions(text)) == as_tuples(TRICKY)
    # No raw blank line inside a question: each question is one block of lines.
    assert text.count("\n\n") == 4
    assert "\t~[plain]%50% half a mark\n" in text and "\t####[plain][1] A backslash" in text
    assert "C\\:\\\\new\\\\table" in text and "\\{x \\: x > 0\\}" in text


# --- printable HTML -------------------------------------------------------------------------------


class _Page(HTMLParser):
    """Tags seen, and the text of each list item of the questions and of the key."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.stack: list[str] = []
        self.key_items: list[str] = []
        self.option_items: list[str] = []
        self.stems: list[str] = []
        self._in_key = False
        self._buffer: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "section" and attrs.get("class") == "key":
            self._in_key = True
        if tag in ("li", "p") and self._buffer is None and (self._in_key or attrs.get("class") == "text"):
            self._buffer, self._kind = [], ("key" if self._in_key else tag)
        if tag not in ("meta", "br"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self.stack.pop()
        if tag == "section":
            self._in_key = False
        if self._buffer is not None and tag == ("li" if self._kind == "key" else self._kind):
            text = "".join(self._buffer)
            {"key": self.key_items, "li": self.option_items, "p": self.stems}[self._kind].append(text)
            self._buffer = None

    def handle_data(self, data: str) -> None:
        if self._buffer is not None:
            self._buffer.append(data)


def _page(data: bytes) -> _Page:
    page = _Page()
    page.feed(data.decode("utf-8"))
    page.close()
    assert page.stack == []  # every element closed
    return page


def test_teacher_page_has_the_questions_then_the_key_on_a_new_printed_page(tricky: Quiz) -> None:
    _, data = export_quiz(tricky, "html", with_key=True)
    page = _page(data)
    assert page.stems == [q.question for q in TRICKY]
    assert page.option_items == [o for q in TRICKY for o in q.options]
    assert page.key_items == [
        "A {1}Only 1 is an integer with 0 < x < 2 # strictly.",
        "A ~A tilde (~) marks a wrong answer; = marks the right one.\n\nSee the Moodle docs.",
        "B naïve",
        "D a line break[1] A backslash escapes the next character: \\~ \\= \\# \\{ \\} \\:",
        "C 'quotedExcel reads =, +, -, @ as formulas.",
    ]
    text = data.decode("utf-8")
    assert text.index('<ol class="questions">') < text.index('<section class="key">')
    assert re.search(r"@media print \{[^}]*\}\s*\.key \{ break-before: page; page-break-before: always;", text)


@pytest.mark.parametrize("with_key", [True, False])
def test_page_escapes_text_and_loads_nothing_from_outside(tricky: Quiz, with_key: bool) -> None:
    _, data = export_quiz(tricky, "html", with_key=with_key)
    text = data.decode("utf-8")
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &#x27;quotes&#x27; &quot;too&quot;" in text
    assert "<b>" not in text
    page = _page(data)
    assert {tag for tag, _ in page.tags} <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p",
                                            "ol", "li", "section", "strong", "span"}
    assert not any(name in ("src", "href") for _, attrs in page.tags for name in attrs)
    assert "url(" not in text and "@import" not in text and "http" not in text


def test_student_page_has_the_questions_only(tricky: Quiz) -> None:
    _, data = export_quiz(tricky, "html", with_key=False)
    page = _page(data)
    assert page.stems == [q.question for q in TRICKY]
    assert page.option_items == [o for q in TRICKY for o in q.options]
    assert page.key_items == [] and b'class="key"' not in data
    # Every option is written the same way: nothing marks the right one.
    assert {tuple(sorted(attrs.items())) for tag, attrs in page.tags if tag == "li"} == {(("class", "text"),), ()}

"""Reading a quiz written as text: a line-by-line state machine over the classes of ``quiz._lines``.

A question is a stem, then options, then optional answer, quote and explanation lines. A question ends
at the next header, a separator ("---", "END"), or options that start again at "A)". Text that belongs
to no question (chatter, chains of thought) is kept aside and dropped unless options follow it, in
which case it is the stem of an unnumbered question. A Markdown table with a question column gives
one question per row. An answer key or solutions section after the questions ("Answers: 1-B, 2-C",
"Solutions" then "1. B – because ...") fills in the keys and explanations.
"""

from __future__ import annotations

from quiz import _lines as lines
from quiz import _table as table
from quiz._answers import resolve_answer
from quiz._drafts import Draft, clean_option, drop_truncated, key_entries, last_paragraph, to_sourced
from quiz._keys import AnswerKey
from quiz._quotes import Sourced
from quiz._text import is_fence, normalize, strip_markup


class _Reader:
    """Feeds lines, collects drafts; ``finish`` turns them into questions."""

    def __init__(self) -> None:
        self.drafts: list[Draft] = []  # closed drafts that have options, in order
        self.cur: Draft | None = None
        self.pending: list[str] = []  # text outside any question
        self.key: AnswerKey | None = None  # while reading an answer key or solutions section
        self.table: table.Columns | None = None
        self.in_code = False

    # -- dispatch ---------------------------------------------------------------------------
    def feed(self, raw: str) -> None:
        if is_fence(raw):
            # A fence inside a stem holds code; fences around the whole quiz are just dropped.
            self.in_code = not self.in_code and self.cur is not None and self.cur.stage == "stem"
            return
        line = " ".join(strip_markup(raw).split())
        # An unclosed fence must not swallow the options that follow it.
        if self.in_code and not line.startswith(("A)", "A.", "(A)", "a)", "a.", "(a)")):
            if self.cur is not None:
                self.cur.stem.append(raw.rstrip())
            return
        self.in_code = False
        if self._table_row(line):
            return
        if not line:
            self._blank()
        elif not (self.key is not None and self.key.read(line)):
            self.key = None
            self._line(line)

    def _line(self, line: str) -> None:
        cur = self.cur
        if cur is not None and cur.stage == "answer_next" and not lines.starts_question(line):
            cur.answers.append(line)
            cur.stage = "done"
            return
        for handler in (self._answer_key, self._answer, self._explanation, self._quote, self._separator,
                        self._header, self._options):
            if handler(line):
                return
        self._text(line)

    # -- handlers ---------------------------------------------------------------------------
    def _blank(self) -> None:
        cur = self.cur
        if self.key is not None:
            self.key.blank()
        if cur is None:
            self.pending.append("")
        elif cur.stage in ("explanation", "quote"):
            cur.stage = "done"
        elif cur.stage != "stem":
            cur.pending.append("")

    def _text(self, line: str) -> None:
        cur = self.cur
        if lines.is_noise(line):
            return
        if cur is None:
            self.pending.append(line)
        elif cur.stage == "stem":
            cur.stem.append(line)
        elif cur.stage == "explanation":
            cur.explanation.append(line)
        elif cur.stage == "quote":
            cur.quote.append(line)
        else:
            cur.pending.append(line)

    def _separator(self, line: str) -> bool:
        if not lines.is_separator(line):
            return False
        self._close()
        self.pending.clear()
        return True

    def _header(self, line: str) -> bool:
        word = lines.header(line)
        if word is not None:
            self._start(word[0], None, word[1])
            return True
        number = lines.numbered(line)
        if number is None or self._numeric_is_option(number[0], number[1]):
            return False
        self._start(*number)
        return True

    def _start(self, number: int | None, delim: str | None, text: str) -> None:
        cur = self.cur
        if cur is not None and not cur.stem and not cur.options and (number is None or cur.number is None):
            # "QUESTION 1" followed by "Question: ..." is one question.
            cur.number = number if cur.number is None else cur.number
        else:
            self._close()
            cur = self.cur = Draft(number=number, header_delim=delim)
        self.pending.clear()
        if text:
            prefix, found = lines.inline_options(text)
            if prefix:
                cur.stem.append(prefix)
            if found:
                self._add(found, leading_mark=False)

    def _numeric_is_option(self, number: int, delim: str) -> bool:
        """Is "2) ..." the next option of the current question rather than the next question?"""
        cur = self.cur
        if cur is None or cur.stage not in ("stem", "options") or not cur.stem:
            return False
        if delim == cur.header_delim:
            # "5. Do this" then "1. First step" is a numbered list, not a question with options:
            # numbered options never share the question's own numbering style.
            return False
        labels = cur.labels()
        if not labels:
            return number in (0, 1)
        last = labels[-1]
        return last.isdigit() and number == int(last) + 1 and delim == cur.options[-1].style[0]

    def _options(self, line: str) -> bool:
        body, leading_mark = lines.take_leading_marker(line)
        prefix, found = lines.options(body, numbers=True)
        if not found:
            return False
        first = found[0]
        if not prefix and first.label.isdigit() and not self._numeric_is_option(int(first.label), first.style[0]):
            return False
        cur = self.cur
        restart = bool(cur and cur.options and first.label == cur.options[0].label)
        if cur is None:
            stem = [prefix] if prefix else last_paragraph(self.pending)
            self.pending.clear()
            self.cur = Draft(stem=stem)
        elif cur.options and (restart or cur.stage != "options"):
            if not restart:
                return True  # a stray option after the answer: nothing to attach it to
            stem = [prefix] if prefix else last_paragraph(cur.pending) or self._steal_stem(cur)
            self._close()
            self.cur = Draft(stem=stem)
        elif cur.options and cur.pending and "" not in cur.pending:
            cur.options[-1].text += " " + " ".join(cur.pending)  # an option wrapped onto a new line
        elif prefix:
            cur.stem.append(prefix)
        self._add(found, leading_mark)
        return True

    @staticmethod
    def _steal_stem(cur: Draft) -> list[str]:
        # "Explanation: ...\nNext question?\nA) ..." without a blank line: the last line is a stem.
        if cur.stage == "explanation" and len(cur.explanation) > 1:
            return [cur.explanation.pop()]
        return []

    def _add(self, found: list[lines.Option], leading_mark: bool) -> None:
        cur = self.cur
        assert cur is not None
        for i, option in enumerate(found):
            text, marked = lines.take_marker(option.text)
            if i == len(found) - 1:
                text, glued = lines.split_answer(text)
                if glued:
                    cur.answers.append(glued)
            if marked or (leading_mark and i == 0):
                cur.marked = len(cur.options)
            cur.options.append(lines.Option(option.label, option.style, clean_option(text)))
        cur.pending.clear()
        cur.stage = "done" if cur.answers else "options"

    def _answer(self, line: str) -> bool:
        rest = lines.answer(line)
        if rest is None:
            return False
        rest, why = lines.split_explanation(rest)
        target = self.cur
        if target is None or not target.options:
            # Reasoning steps between the options and the answer ("1. First, ...") read as new
            # questions without options; the answer still belongs to the last real question.
            last = self.drafts[-1] if self.drafts else None
            if (last is None or last.answers or last.marked is not None
                    or resolve_answer(rest, last.texts(), last.labels()) is None):
                return True
            target = last
        if rest:
            target.answers.append(rest)
        if why:
            target.explanation.append(why)
        if target is self.cur:
            target.stage = "done" if rest else "answer_next"
        return True

    def _explanation(self, line: str) -> bool:
        rest = lines.explanation(line)
        cur = self.cur
        if rest is None or cur is None or not cur.options:
            return False
        if rest:
            cur.explanation.append(rest)
        cur.stage = "explanation"
        return True

    def _quote(self, line: str) -> bool:
        rest = lines.quote(line)
        cur = self.cur
        if rest is None or cur is None or not cur.options:
            return False  # "Quote: ..." before the options is part of the question
        if rest:
            cur.quote.append(rest)
        cur.stage = "quote"
        return True

    # -- Markdown tables ----------------------------------------------------------------------
    def _table_row(self, line: str) -> bool:
        row = table.cells(line)
        if row is None:
            self.table = None
            return False
        if self.table is None:
            columns = table.columns(row)
            if columns is None:
                return False
            self._close()
            self.pending.clear()
            self.table = columns
        elif not table.is_rule(row):
            found = table.draft(self.table, row)
            if found is not None:
                self.drafts.append(found)
        return True

    # -- answer keys at the end (read on by quiz._keys) -----------------------------------------
    def _answer_key(self, line: str) -> bool:
        rest = lines.answer_key(line)
        if rest is None:
            return False
        entries = key_entries(rest)
        if rest and not entries:
            cur = self.cur  # "Answers: B" / "Key: A" under one question is a plain answer
            if cur is None or not cur.options:
                return False
            cur.answers.append(rest)
            cur.stage = "done"
            return True
        self._close()
        self.key = AnswerKey(self.drafts)
        for number, raw in entries:
            self.key.apply(number, raw)
        return True

    # -- results ---------------------------------------------------------------------------
    def _close(self) -> None:
        if self.cur is not None and self.cur.options:
            self.drafts.append(self.cur)
        self.cur = None

    def finish(self) -> list[Sourced]:
        self._close()
        found = [q for q in map(to_sourced, self.drafts) if q is not None]
        return drop_truncated(found)


def parse_text(text: str) -> list[Sourced]:
    """Every question (with its quote) a text-layout quiz holds, in order (see ``quiz.parse.parse_quiz``)."""
    reader = _Reader()
    for raw in normalize(text).split("\n"):
        reader.feed(raw)
    return reader.finish()

"""An answer key or solutions section after all the questions: "Answer Key: 1. A 2. B", "Answers: 1-B, 2-C",
or "Solutions" followed by entries with explanations ("1. B – because ...", "**1. B) Paris**" with the
explanation on the lines below, or an "Explanation:" line)."""

from __future__ import annotations

from quiz import _lines as lines
from quiz._answers import resolve_answer
from quiz._drafts import Draft, key_entries, split_entry


class AnswerKey:
    """Reads the entries of one key section into the questions read before it."""

    def __init__(self, drafts: list[Draft]) -> None:
        # Numbers restart in some outputs ("Cluster 2: Q1 ..."): the last question with a number wins;
        # unnumbered questions are counted in order.
        self.targets = {d.number: d for d in drafts if d.number is not None}
        if not self.targets:
            self.targets = dict(enumerate(drafts, start=1))
        self.last: Draft | None = None  # the question of the last entry: notes below it are its explanation
        self.note_open = False  # whether plain text right below continues that entry (no blank line between)

    def apply(self, number: int, raw: str, single: bool = False) -> bool:
        """Give question ``number`` the key ``raw`` (and, for an entry on its own line, the explanation
        after it) unless it has a key of its own; whether ``raw`` named one of its options."""
        target = self.targets.get(number)
        if target is None:
            return False
        answer, why = split_entry(raw, target.texts(), target.labels()) if single else (raw, None)
        if resolve_answer(answer, target.texts(), target.labels()) is None:
            return False
        if not target.answers:
            target.answers.append(answer)
        if why:
            target.key_explanation.append(why)
        self.last, self.note_open = target, True
        return True

    def read(self, line: str) -> bool:
        """Take one line of the section; False when it is not part of it (the section is then over)."""
        entries = key_entries(line)
        if any([self.apply(number, raw, single=len(entries) == 1) for number, raw in entries]):
            return True
        return self._note(line)

    def blank(self) -> None:
        self.note_open = False

    def _note(self, line: str) -> bool:
        """An explanation under an entry: an "Explanation:" line, or text right below the entry."""
        if self.last is None:
            return False
        why = lines.explanation(line)
        if why is None:
            if (not self.note_open or lines.starts_question(line) or lines.answer(line) is not None
                    or lines.numbered(line) is not None):
                return False
            why = line
        if why:
            self.last.key_explanation.append(why)
        self.note_open = True
        return True

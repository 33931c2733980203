"""The quiz data model: a question with its options and key, and a quiz of several questions.

Standard library only, like everything ``import quiz`` loads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

LETTERS = "ABCDEFGH"


@dataclass
class Question:
    """One multiple-choice question.

    ``answer`` is the 0-based index of the correct option, ``None`` when the source text gave no key.
    """

    question: str
    options: list[str]
    answer: int | None
    explanation: str | None = None

    def __post_init__(self) -> None:
        self.options = list(self.options)
        if self.answer is not None and not 0 <= self.answer < len(self.options):
            raise ValueError(
                f"answer index {self.answer} is outside the {len(self.options)} options of "
                f"{self.question[:60]!r}: use a 0-based index or None"
            )

    @property
    def correct_option(self) -> str | None:
        """The text of the correct option, or None when the question has no key."""
        return None if self.answer is None else self.options[self.answer]

    def with_answer_at(self, position: int, rng: random.Random) -> Question:
        """Return a copy whose correct option sits at ``position``; the distractors are shuffled.

        Models put the right answer in the same slot far too often (one real 150-question sample
        has 122 keys "D"), so generated quizzes place it themselves.
        """
        if self.answer is None:
            raise ValueError(f"cannot move the key of {self.question[:60]!r}: it has none")
        if not 0 <= position < len(self.options):
            raise ValueError(f"position {position} is outside the {len(self.options)} options")
        distractors = [o for i, o in enumerate(self.options) if i != self.answer]
        rng.shuffle(distractors)
        options = distractors[:position] + [self.options[self.answer]] + distractors[position:]
        return Question(self.question, options, position, self.explanation)


def balanced_positions(count: int, n_options: int, rng: random.Random) -> list[int]:
    """Key positions for ``count`` questions: every slot equally likely and evenly spread.

    Positions come in shuffled blocks of ``n_options`` (one of each slot per block), so a quiz of
    10 never has six "B" keys, and across quizzes each slot is hit with probability 1/n_options.
    """
    positions: list[int] = []
    while len(positions) < count:
        block = list(range(n_options))
        rng.shuffle(block)
        positions.extend(block)
    return positions[:count]


@dataclass
class Quiz:
    """A quiz on one topic: the questions (all keyed when generated) and how it was made.

    ``seed`` is the sampling seed (the whole quiz, key positions included, only when it was passed
    in explicitly; a generated quiz's key positions otherwise come from a secret source). It stays
    on the server: never show it to a quiz-taker.
    ``raw_outputs`` keeps the model's replies for debugging.
    """

    topic: str
    difficulty: str
    questions: list[Question]
    seed: int | None = None
    raw_outputs: list[str] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.questions)

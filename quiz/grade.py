"""Grade a quiz, show the result in Markdown, and build a "retry my mistakes" quiz.

    result = grade(quiz, [1, 0, None, ...])   # one chosen option index (or None) per question
    result.score, result.total                # 7, 10
    panel = result.to_markdown()              # "### Score: 7/10 (70%)" then feedback per question
    again = retry_quiz(quiz, result)          # the wrong and unanswered questions, reshuffled
"""

from __future__ import annotations

import html
import random
import re
import secrets
from dataclasses import dataclass

from quiz.question import LETTERS, Quiz, balanced_positions

CORRECT, INCORRECT, UNANSWERED = "correct", "incorrect", "unanswered"


@dataclass(frozen=True)
class QuestionFeedback:
    """How one question went: what was chosen, what was right, and why."""

    index: int
    question: str
    status: str  # "correct" | "incorrect" | "unanswered"
    chosen: int | None
    chosen_text: str | None
    correct: int
    correct_text: str
    explanation: str | None


@dataclass(frozen=True)
class QuizResult:
    """The score and the per-question feedback of one attempt."""

    score: int
    total: int
    feedback: list[QuestionFeedback]

    @property
    def percent(self) -> int:
        return round(100 * self.score / self.total) if self.total else 0

    @property
    def mistakes(self) -> list[int]:
        """Indices of the questions answered wrongly or left unanswered."""
        return [f.index for f in self.feedback if f.status != CORRECT]

    def to_markdown(self) -> str:
        return render_markdown(self)


def _check_choice(choice: object, i: int, n_options: int) -> int | None:
    if choice is None:
        return None
    if isinstance(choice, bool) or not isinstance(choice, int):
        raise ValueError(f"answer {i + 1} must be an option index or None, got {choice!r}")
    if not 0 <= choice < n_options:
        raise ValueError(f"answer {i + 1} is {choice}, but question {i + 1} has options 0-{n_options - 1}")
    return choice


def grade(quiz: Quiz, answers: list[int | None]) -> QuizResult:
    """Score ``answers`` (one 0-based option index or None per question) against ``quiz``."""
    if len(answers) != len(quiz.questions):
        raise ValueError(f"got {len(answers)} answers for a {len(quiz.questions)}-question quiz: "
                         f"pass one entry per question, None for an unanswered one")
    feedback = []
    for i, (question, choice) in enumerate(zip(quiz.questions, answers)):
        if question.answer is None:
            raise ValueError(f"question {i + 1} has no answer key, so it cannot be graded: "
                             f"grade quizzes from generate_quiz or keyed questions only")
        choice = _check_choice(choice, i, len(question.options))
        status = UNANSWERED if choice is None else CORRECT if choice == question.answer else INCORRECT
        feedback.append(QuestionFeedback(
            index=i, question=question.question, status=status, chosen=choice,
            chosen_text=None if choice is None else question.options[choice],
            correct=question.answer, correct_text=question.options[question.answer],
            explanation=question.explanation))
    score = sum(f.status == CORRECT for f in feedback)
    return QuizResult(score=score, total=len(feedback), feedback=feedback)


def retry_quiz(quiz: Quiz, result: QuizResult, *, seed: int | None = None) -> Quiz:
    """A quiz of the questions answered wrongly or not at all, with their options reshuffled so
    the retry tests the answer rather than its position.

    Without ``seed`` the new positions come from the operating system's secret random source (as in
    ``generate_quiz``); an explicit ``seed`` reproduces them, for tests.
    """
    if result.total != len(quiz.questions):
        raise ValueError(f"the result covers {result.total} questions but the quiz has {len(quiz.questions)}: "
                         f"pass the result of grading this quiz")
    if not result.mistakes:
        raise ValueError("nothing to retry: every question was answered correctly")
    rng: random.Random = secrets.SystemRandom() if seed is None else random.Random(seed)
    wrong = [quiz.questions[i] for i in result.mistakes]
    positions = balanced_positions(len(wrong), min(len(q.options) for q in wrong), rng)
    questions = [q.with_answer_at(p, rng) for q, p in zip(wrong, positions)]
    return Quiz(quiz.topic, quiz.difficulty, questions, seed=seed)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]#+|~!])")


def escape(text: str) -> str:
    """Model text made inert for Markdown: HTML escaped, Markdown syntax backslashed."""
    escaped = html.escape(text, quote=False)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", escaped)


_LIST_START = re.compile(r"^(\s*)(-|\d+(?=[.)]))")


def _line(text: str) -> str:
    # A line that starts like a list item ("- x", "1. x") would render as a list.
    return _LIST_START.sub(lambda m: m[1] + ("\\-" if m[2] == "-" else m[2] + "\\"), escape(text))


def _block(text: str) -> str:
    # Keep the model's line breaks (a code line in a stem) as Markdown hard breaks.
    return "  \n".join(_line(line) for line in text.strip().split("\n"))


def _option(index: int | None, text: str | None) -> str:
    return "—" if index is None or text is None else f"{LETTERS[index]}) {_block(text)}"


def render_markdown(result: QuizResult) -> str:
    """The result panel: a ``Score: X/N`` heading, then each question with ✓/✗, the chosen and
    the right answer, and the explanation where there is one."""
    parts = [f"### Score: {result.score}/{result.total} ({result.percent}%)"]
    for f in result.feedback:
        mark = "✓" if f.status == CORRECT else "✗"
        lines = [f"**{f.index + 1}. {mark}** {_block(f.question)}"]
        if f.status == UNANSWERED:
            lines.append("Your answer: not answered")
        else:
            lines.append(f"Your answer: {_option(f.chosen, f.chosen_text)}")
        if f.status != CORRECT:
            lines.append(f"Right answer: **{_option(f.correct, f.correct_text)}**")
        if f.explanation:
            lines.append(f"*Why:* {_block(f.explanation)}")
        parts.append("  \n".join(lines))
    return "\n\n".join(parts) + "\n"

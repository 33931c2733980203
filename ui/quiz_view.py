"""What the quiz tab shows, as plain functions of a quiz and its result (no event wiring here).

The per-user session lives in a ``gr.State``; these helpers turn it into component updates for the
browser and into JSON-friendly dicts for API clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from quiz import Question, Quiz, QuizResult
from quiz.grade import CORRECT, escape
from quiz.question import LETTERS

N_QUESTIONS = 10
DIFFICULTIES = ("easy", "medium", "hard")


@dataclass
class QuizSession:
    """One user's quiz and, once submitted, its result (kept in a gr.State, never shared)."""

    quiz: Quiz
    result: QuizResult | None = None
    retry: bool = False  # a "retry mistakes" quiz rather than a freshly written one


def status_markdown(session: QuizSession) -> str:
    quiz = session.quiz
    what = "Retry of your mistakes" if session.retry else "Quiz"
    count = f"{len(quiz)} question{'s' if len(quiz) != 1 else ''}"
    return (f"**{what}: {escape(quiz.topic)}** · {quiz.difficulty} · {count}. "
            "Pick one answer per question, then press **Submit answers**.")


def question_update(i: int, question: Question, keep_answer: bool = False) -> dict[str, Any]:
    """Show question ``i`` in its slot, answerable; unanswered unless ``keep_answer``."""
    update = gr.update(visible=True, interactive=True, choices=list(question.options),
                       label=f"{i + 1}. {question.question}")
    if not keep_answer:
        update["value"] = None
    return update


def question_updates(session: QuizSession) -> list[dict[str, Any]]:
    """One update per question slot: the quiz's questions shown and unanswered, the rest hidden."""
    return [question_update(i, session.quiz.questions[i]) if i < len(session.quiz.questions)
            else gr.update(visible=False, value=None, choices=[], label=None) for i in range(N_QUESTIONS)]


def graded_updates(session: QuizSession) -> list[dict[str, Any]]:
    """After grading: each shown question gets ✓ or ✗ and keeps its chosen answer, no longer changeable."""
    assert session.result is not None, "grade the quiz before showing its marks"
    updates: list[dict[str, Any]] = []
    for i in range(N_QUESTIONS):
        if i < len(session.quiz.questions):
            mark = "✓" if session.result.feedback[i].status == CORRECT else "✗"
            updates.append(gr.update(interactive=False,
                                     label=f"{i + 1}. {mark} {session.quiz.questions[i].question}"))
        else:
            updates.append(gr.skip())
    return updates


def answer_index(session: QuizSession, i: int, answer: object) -> int | None:
    """An API answer (0-based index, option text or letter A-D; None = unanswered) as an option index."""
    if answer is None or answer == "":
        return None
    options = session.quiz.questions[i].options
    if isinstance(answer, str):
        text = answer.strip()
        for j, option in enumerate(options):
            if text.casefold() == option.strip().casefold():
                return j
        if len(text) == 1 and text.upper() in LETTERS[: len(options)]:
            return LETTERS.index(text.upper())
        raise ValueError(f"answer {i + 1} ({answer!r}) is neither an option of question {i + 1} nor a letter "
                         f"A-{LETTERS[len(options) - 1]}")
    return answer  # type: ignore[return-value]  # grade() checks indices and names a bad one


def public_quiz(session: QuizSession) -> dict[str, Any]:
    """The quiz as an API client sees it: questions and options — nothing the key can be derived
    from (no seed, no explanation, no raw model text)."""
    quiz = session.quiz
    return {"topic": quiz.topic, "difficulty": quiz.difficulty, "retry": session.retry,
            "questions": [{"question": q.question, "options": list(q.options)} for q in quiz.questions]}


def public_result(result: QuizResult) -> dict[str, Any]:
    """The graded attempt for API clients: score, Markdown panel and per-question feedback."""
    return {"score": result.score, "total": result.total, "markdown": result.to_markdown(),
            "feedback": [{"question": f.question, "status": f.status, "chosen": f.chosen,
                          "correct": f.correct, "correct_text": f.correct_text,
                          "explanation": f.explanation} for f in result.feedback]}

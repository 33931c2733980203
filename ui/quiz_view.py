"""What the quiz tab shows, as plain functions of a quiz and its result (no event wiring here).

The per-user session lives in a ``gr.State``; these helpers turn it into component updates for the
browser and into JSON-friendly dicts for API clients.
"""

from __future__ import annotations

import time
from typing import Any

import gradio as gr

from quiz import Question, QuizResult
from quiz.grade import CORRECT, UNANSWERED, escape
from quiz.question import LETTERS
from quiz.store import ClassResults
from ui.quiz_actions import N_QUESTIONS, QuizSession


def status_markdown(session: QuizSession) -> str:
    quiz = session.quiz
    what = ("Review of your missed questions" if session.review else "Retry of your mistakes" if session.retry
            else f"Class quiz {session.class_code}" if session.class_code else "Quiz")
    count = f"{len(quiz)} question{'s' if len(quiz) != 1 else ''}"
    return (f"**{what}: {escape(quiz.topic)}** · {quiz.difficulty} · {count}. "
            "Pick one answer per question, then press **Submit answers**.")


def question_update(i: int, question: Question, keep_answer: bool = False) -> dict[str, Any]:
    """Show question ``i`` in its slot, answerable; unanswered unless ``keep_answer``."""
    update = gr.update(visible=True, interactive=True, choices=list(question.options),
                       label=f"{i + 1}. {question.question}", elem_classes=["quiz-question"])
    if not keep_answer:
        update["value"] = None
    return update


def question_updates(session: QuizSession) -> list[dict[str, Any]]:
    """One update per question slot: the quiz's questions shown and unanswered, the rest hidden."""
    return [question_update(i, session.quiz.questions[i]) if i < len(session.quiz.questions)
            else gr.update(visible=False, value=None, choices=[], label=None) for i in range(N_QUESTIONS)]


def graded_updates(session: QuizSession) -> list[dict[str, Any]]:
    """After grading, each question shows its result in place: the right option marked right, a wrong
    choice marked wrong (in the text and in colour), the answer kept and no longer changeable."""
    assert session.result is not None, "grade the quiz before showing its marks"
    updates: list[dict[str, Any]] = []
    for i in range(N_QUESTIONS):
        if i >= len(session.quiz.questions):
            updates.append(gr.skip())
            continue
        f = session.result.feedback[i]
        choices = []
        for j, option in enumerate(session.quiz.questions[i].options):
            mark = " ✓ right answer" if j == f.correct else " ✗ your answer" if j == f.chosen else ""
            choices.append((option + mark, j))
        mark = "✓" if f.status == CORRECT else "✗"
        classes = ["quiz-question", "graded", f"right-{f.correct}"] + (
            [f"wrong-{f.chosen}"] if f.status != CORRECT and f.chosen is not None else [])
        updates.append(gr.update(interactive=False, choices=choices, value=f.chosen, elem_classes=classes,
                                 label=f"{i + 1}. {mark} {session.quiz.questions[i].question}"))
    return updates


def explanation_updates(session: QuizSession | None) -> list[dict[str, Any]]:
    """Under each graded question, why its right answer is right; hidden before grading."""
    if session is None or session.result is None:
        return [gr.update(value="", visible=False) for _ in range(N_QUESTIONS)]
    updates = []
    for i in range(N_QUESTIONS):
        f = session.result.feedback[i] if i < len(session.result.feedback) else None
        if f is None:
            updates.append(gr.update(value="", visible=False))
            continue
        verdict = ("**Right.**" if f.status == CORRECT else "**Not answered.**" if f.status == UNANSWERED
                   else "**Not quite.**")
        answer = f"The answer is {LETTERS[f.correct]}) {escape(f.correct_text)}."
        why = f" {escape(f.explanation)}" if f.explanation else ""
        updates.append(gr.update(value=f"{verdict} {answer}{why}", visible=True))
    return updates


def key_updates(session: QuizSession) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The teacher's view of a shared quiz: every question with its right option marked and why, locked."""
    questions, explanations = [], []
    for i in range(N_QUESTIONS):
        if i >= len(session.quiz.questions):
            questions.append(gr.update(visible=False, value=None))
            explanations.append(gr.update(value="", visible=False))
            continue
        q = session.quiz.questions[i]
        choices = [(option + (" ✓ right answer" if j == q.answer else ""), j) for j, option in enumerate(q.options)]
        questions.append(gr.update(visible=True, interactive=False, choices=choices, value=None,
                                   label=f"{i + 1}. {q.question}", elem_classes=["quiz-question", f"right-{q.answer}"]))
        why = f" {escape(q.explanation)}" if q.explanation else ""
        answer = f"The answer is {LETTERS[q.answer]}) {escape(q.options[q.answer])}." if q.answer is not None else ""
        explanations.append(gr.update(value=f"{answer}{why}", visible=True))
    return questions, explanations


def score_markdown(result: QuizResult) -> str:
    """The result panel: the score, then where to look."""
    missed = len(result.mistakes)
    tail = ("Every answer right!" if not missed else
            f"{missed} to review: each question above shows the right answer and why.")
    return f"### Score: {result.score}/{result.total} ({result.percent}%)\n{tail}"


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


def share_markdown(shared: dict[str, str]) -> str:
    """What the teacher sees after sharing: the code, the student link, the secret teacher link."""
    return (f"### Class code: `{shared['code']}`\n"
            f"Students open **{shared['student_link']}** (or type the code under *Join a class quiz*); "
            "everyone gets these questions.\n\n"
            f"Your teacher link, for the class results — keep it to yourself: {shared['teacher_link']}")


def class_results_markdown(results: ClassResults) -> str:
    """The teacher's view: participants, score distribution, and per question who got it right and
    which wrong options were picked."""
    n = len(results.participants)
    lines = [f"### Class {results.code}: {escape(results.topic)} · {n} participant{'s' if n != 1 else ''}"]
    if not n:
        return lines[0] + "\nNo answers yet. Press **Refresh** when your students have submitted."
    lines += ["", "| participant | score | submitted (UTC) |", "|---|---|---|"]
    lines += [f"| {escape(p.name)} | {p.score}/{p.total} | {p.submitted_at:%Y-%m-%d %H:%M} |"
              for p in results.participants]
    width = max(results.distribution.values()) or 1
    lines += ["", "**Scores**", "", "| score | students | |", "|---|---|---|"]
    lines += [f"| {score}/{results.total} | {count} | {'█' * round(12 * count / width)} |"
              for score, count in sorted(results.distribution.items(), reverse=True) if count]
    lines += ["", "**Questions**", "", "| # | question | right | wrong picks |", "|---|---|---|---|"]
    for q in results.questions:
        share = "—" if q.correct_share is None else f"{round(100 * q.correct_share)}%"
        picks = ", ".join(f"{LETTERS[i]}) {escape(q.options[i])}: {c}" for i, c in q.wrong_picks.items() if c)
        if q.unanswered:
            picks = f"{picks}, unanswered: {q.unanswered}" if picks else f"unanswered: {q.unanswered}"
        lines.append(f"| {q.index + 1} | {escape(q.question)} (answer {LETTERS[q.answer]}) | {share} | {picks or '—'} |")
    return "\n".join(lines)


def progress_markdown(history: list | None) -> str:
    """The quizzes taken in this browser, newest first, and how many missed questions are saved."""
    entries = [e for e in history or [] if isinstance(e, dict) and isinstance(e.get("total"), int)]
    if not entries:
        return "No quizzes taken in this browser yet. Your scores and missed questions are kept here, on this device."
    # A question missed in a quiz and again in its review is one question to review (as Review counts it).
    missed = len({m.get("question") for e in entries for m in e.get("missed") or [] if isinstance(m, dict)})
    lines = [f"**{len(entries)} quiz{'zes' if len(entries) != 1 else ''} taken**, {missed} missed question"
             f"{'s' if missed != 1 else ''} saved for review.", "", "| when | topic | score |", "|---|---|---|"]
    for e in entries[:20]:
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(e.get("time") or 0))
        kind = {"review": " (review)", "retry": " (retry)", "class": " (class)"}.get(e.get("kind"), "")
        lines.append(f"| {when} | {escape(str(e.get('topic', '')))}{kind} | {e.get('score')}/{e['total']} |")
    return "\n".join(lines)

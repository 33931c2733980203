"""What the quiz tab can do, one function per action: generate, share, join, grade, retry, review,
export and the class results. The page's handlers and the API endpoints (``ui/quiz.py``) are thin
wrappers around these, so both do the same thing, and the rules about the answer key live here once:

- a quiz-taker's session holds the key only server-side (a ``gr.State``); a class quiz joined by code
  holds no key at all until the store grades it;
- an export carries the key only once it is no secret to this session: after grading, or for the
  teacher who shared the quiz.

No Gradio here: the functions raise ``ValueError`` (or ``LookupError``/``PermissionError`` from the
store) with messages worth showing, and the wrappers turn them into one-line errors.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quiz import Question, Quiz, QuizResult, generate_quiz, grade, retry_quiz
from quiz.export import export_quiz
from quiz.grade import CORRECT
from quiz.material import clean_material, material_title, read_material
from quiz.question import balanced_positions
from quiz.store import ClassResults, ClassStore, Share, normalize_code, open_class_store

N_QUESTIONS = 10
DIFFICULTIES = ("easy", "medium", "hard")
# Kept in the browser: the newest quizzes and the questions missed in them (the page's local storage).
MAX_HISTORY = 50
MAX_MISSED = 100
MAX_MATERIAL_FILE_BYTES = 10 * 2**20


@dataclass
class QuizSession:
    """One user's quiz and, once submitted, its result (kept in a gr.State, never shared).

    ``class_code``: the quiz was joined by code, so it holds no key and is graded by the store under
    ``attempt`` (one id per attempt: a double submit is stored once). ``share``: this user shared it
    (the teacher's code and secret token). ``review``: a quiz of missed questions from past quizzes.
    """

    quiz: Quiz
    result: QuizResult | None = None
    retry: bool = False
    class_code: str | None = None
    name: str | None = None
    attempt: str = field(default_factory=lambda: uuid.uuid4().hex)
    share: Share | None = None
    review: bool = False


class Classroom:
    """The class-quiz store, opened on first use (a chat-only app never creates the data folder)."""

    def __init__(self, data_dir: str | Path | None = None, store: ClassStore | None = None) -> None:
        self.data_dir, self._store, self._lock = data_dir, store, threading.Lock()

    @property
    def store(self) -> ClassStore:
        with self._lock:
            if self._store is None:
                if self.data_dir is None:
                    raise ValueError("sharing quizzes is off: start the app with --data-dir DIR")
                try:
                    self._store = open_class_store(self.data_dir)
                except OSError as exc:
                    raise ValueError(f"{exc} (the class quizzes cannot be stored)") from None
            return self._store


# -- generate --------------------------------------------------------------------------------------

def material_text(files: list[str] | str | None, notes: str | None,
                  notes_name: str = "the pasted notes") -> tuple[str | None, str | None]:
    """The material for a quiz from uploaded file paths and/or pasted notes, and a title for it.

    Returns ``(None, None)`` when there is none. Raises ``MaterialError`` (a ValueError) naming the file.
    """
    paths = [files] if isinstance(files, str) else list(files or [])
    parts, title = [], None
    for path in paths:
        file = Path(path)
        if file.stat().st_size > MAX_MATERIAL_FILE_BYTES:
            raise ValueError(f"{file.name} is larger than {MAX_MATERIAL_FILE_BYTES // 2**20} MB: upload a "
                             "shorter document or paste the part the quiz should cover")
        text = read_material(file.name, file.read_bytes())
        title = title or material_title(text, file.name)
        parts.append(text)
    if notes and notes.strip():
        text = clean_material(notes, notes_name)
        title = title or material_title(text)
        parts.append(text)
    return ("\n\n".join(parts), title) if parts else (None, None)


def generate(backend: Any, topic: str, difficulty: str, *, material: str | None = None,
             language: str | None = None, on_question: Any = None, on_progress: Any = None) -> QuizSession:
    """A fresh quiz for one user (about ``material`` when given); raises with a message worth showing."""
    language = None if not language or language.strip().lower() in ("auto", "") else language.strip()
    quiz = generate_quiz(backend, topic or "", n=N_QUESTIONS, difficulty=difficulty or "", material=material,
                         language=language, on_progress=on_progress, on_question=on_question)
    return QuizSession(quiz)


# -- share and join --------------------------------------------------------------------------------

def share(classroom: Classroom, session: QuizSession | None) -> QuizSession:
    """Store the session's quiz for a class (once: sharing again gives the same code)."""
    if session is None:
        raise ValueError("Generate a quiz first, then share it.")
    if session.class_code is not None:
        raise ValueError(f"This quiz came from class {session.class_code}: only its teacher can share it.")
    if session.share is None:
        session = dataclasses.replace(session, share=classroom.store.share(session.quiz))
    return session


def links(base_url: str, shared: Share) -> dict[str, str]:
    """The student link (anyone with it joins) and the teacher link (it carries the secret token)."""
    base = base_url.rstrip("/")
    return {"code": shared.code, "student_link": f"{base}/?class={shared.code}",
            "teacher_link": f"{base}/?class={shared.code}&teacher={shared.teacher_token}"}


def join(classroom: Classroom, code: str, name: str | None = None) -> QuizSession:
    """The class quiz with this code, without its key, ready to answer; LookupError for a bad code."""
    if not isinstance(code, str) or not code.strip():
        raise ValueError("Type the class code your teacher gave you (6 letters and digits).")
    quiz = classroom.store.load(code)
    return QuizSession(quiz, class_code=normalize_code(code), name=(name or "").strip() or None)


# -- grade, retry, review --------------------------------------------------------------------------

def keyed_quiz(session: QuizSession) -> Quiz:
    """The session's quiz with its key: the quiz itself, or for a graded class quiz the key the
    store's grading revealed."""
    if session.class_code is None:
        return session.quiz
    if session.result is None:
        raise ValueError("Submit your answers first: the key of a class quiz stays with the teacher until then.")
    questions = [Question(q.question, q.options, f.correct, f.explanation)
                 for q, f in zip(session.quiz.questions, session.result.feedback)]
    return Quiz(session.quiz.topic, session.quiz.difficulty, questions)


def grade_answers(classroom: Classroom, session: QuizSession, answers: list[int | None]) -> QuizSession:
    """Grade one attempt; a class quiz is graded and stored by the store (once per attempt)."""
    if session.result is not None:
        return session  # already graded: a second click changes nothing
    if session.class_code is not None:
        result = classroom.store.submit(session.class_code, session.attempt, session.name, list(answers)).result
    else:
        result = grade(session.quiz, list(answers))
    return dataclasses.replace(session, result=result)


def retry(session: QuizSession | None) -> QuizSession:
    """A quiz of this attempt's wrong and unanswered questions, options reshuffled."""
    if session is None or session.result is None:
        raise ValueError("Submit your answers first.")
    if not session.result.mistakes:
        raise ValueError("Nothing to retry: every answer was right.")
    return QuizSession(retry_quiz(keyed_quiz(session), session.result), retry=True)


def progress_entry(session: QuizSession, now: float | None = None) -> dict[str, Any]:
    """What the browser keeps of a graded quiz: topic, score, and the missed questions with their key."""
    assert session.result is not None, "grade the quiz first"
    quiz = keyed_quiz(session)
    missed = [{"question": q.question, "options": list(q.options), "answer": q.answer,
               "explanation": q.explanation or ""}
              for q, f in zip(quiz.questions, session.result.feedback) if f.status != CORRECT]
    return {"topic": quiz.topic, "difficulty": quiz.difficulty, "score": session.result.score,
            "total": session.result.total, "time": int(now if now is not None else time.time()),
            "kind": "review" if session.review else "retry" if session.retry else
            "class" if session.class_code else "quiz", "missed": missed}


def _valid_missed(item: Any) -> Question | None:
    """A missed question from the browser's storage, or None for anything malformed (a user may edit it)."""
    try:
        options = [str(o) for o in item["options"]]
        question = Question(str(item["question"]), options, int(item["answer"]), str(item.get("explanation") or ""))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return question if question.question.strip() and len(options) >= 2 else None


def record(history: list | None, session: QuizSession) -> list[dict[str, Any]]:
    """The browser's progress with this graded attempt added (newest first, bounded). Questions of a
    review answered right leave the missed lists."""
    entries = [e for e in (history or []) if isinstance(e, dict)]
    entry = progress_entry(session)
    if session.review:
        learned = {f.question for f in session.result.feedback if f.status == CORRECT}  # type: ignore[union-attr]
        for e in entries:
            e["missed"] = [m for m in e.get("missed") or [] if not (isinstance(m, dict) and m.get("question") in learned)]
    entries = [entry, *entries][:MAX_HISTORY]
    kept = 0
    for e in entries:  # keep the newest MAX_MISSED missed questions in all
        e["missed"] = (e.get("missed") or [])[: max(0, MAX_MISSED - kept)]
        kept += len(e["missed"])
    return entries


def review(history: list | None, rng: Any = None) -> QuizSession:
    """A quiz of up to ``N_QUESTIONS`` questions missed in past quizzes (newest first, no repeats),
    their options reshuffled."""
    rng = rng or secrets.SystemRandom()
    seen, questions = set(), []
    for entry in history or []:
        for item in (entry.get("missed") or []) if isinstance(entry, dict) else []:
            question = _valid_missed(item)
            if question is not None and question.question not in seen:
                seen.add(question.question)
                questions.append(question)
    if not questions:
        raise ValueError("No missed questions saved in this browser yet: take a quiz first.")
    questions = questions[:N_QUESTIONS]
    positions = balanced_positions(len(questions), min(len(q.options) for q in questions), rng)
    moved = [q.with_answer_at(p, rng) for q, p in zip(questions, positions)]
    return QuizSession(Quiz("Review of my mistakes", "mixed", moved), review=True)


# -- export and the teacher's view -----------------------------------------------------------------

def export(session: QuizSession | None, fmt: str) -> tuple[str, bytes]:
    """The quiz as a file: with the key once it is no secret to this session (graded, or shared by this
    user as the teacher), else the student's copy (questions only; GIFT needs the key)."""
    if session is None:
        raise ValueError("Generate or join a quiz first.")
    with_key = session.result is not None or session.share is not None
    if not with_key and fmt == "gift":
        raise ValueError("A GIFT file carries the answer key: submit your answers first, or share the quiz "
                         "and download it from the teacher's page.")
    return export_quiz(keyed_quiz(session) if with_key else session.quiz, fmt, with_key=with_key)


def teacher_session(classroom: Classroom, code: str, token: str) -> QuizSession:
    """The teacher's own copy of a shared quiz (with its key); PermissionError for a wrong token."""
    quiz = classroom.store.teacher_quiz(code, token)
    return QuizSession(quiz, share=Share(normalize_code(code), token))


def class_results(classroom: Classroom, session: QuizSession | None) -> ClassResults:
    """The results of the class this session's teacher shared the quiz with."""
    if session is None or session.share is None:
        raise ValueError("Share a quiz first (or open your teacher link): results belong to a shared quiz.")
    return classroom.store.class_results(session.share.code, session.share.teacher_token)

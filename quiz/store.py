"""Class quizzes: one quiz shared under a short code, answers graded from the stored key, and a
teacher's view of the results behind a secret token. SQLite by default, standard library only.

    store = open_class_store("data")                   # data/classes.sqlite3 (the app's --data-dir)
    share = store.share(quiz)                          # Share(code="K7P3QX", teacher_token=<secret>)
    quiz_for_students = store.load("k7p 3qx")          # the questions without the key
    done = store.submit("K7P3QX", submission_id, "Ada", [1, 0, None, 3])   # graded, stored once
    results = store.class_results("K7P3QX", share.teacher_token)         # the teacher's view

``ClassStore`` is the interface the app uses; ``SQLiteClassStore`` implements it on one SQLite file
that several threads and processes may use at once (WAL journal, a busy timeout, one connection per
call, writes in ``BEGIN IMMEDIATE`` transactions). Only a SHA-256 hash of the teacher token is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sqlite3
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol, runtime_checkable

from quiz.grade import QuizResult, grade
from quiz.question import LETTERS, Question, Quiz

logger = logging.getLogger(__name__)

DB_FILENAME = "classes.sqlite3"
# Join codes: no 0/O or 1/I, which read alike when a code is written on a board.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
ANONYMOUS = "Anonymous"

MAX_QUESTIONS = 50
MAX_OPTIONS = len(LETTERS)
MAX_TOPIC_CHARS = 200
MAX_DIFFICULTY_CHARS = 40
MAX_QUESTION_CHARS = 2000
MAX_OPTION_CHARS = 500
MAX_EXPLANATION_CHARS = 4000
MAX_NAME_CHARS = 60
MAX_SUBMISSIONS_PER_CLASS = 2000

SCHEMA_VERSION = 1
_MIGRATIONS = {  # version -> statements that bring the previous version up to it
    1: [
        """CREATE TABLE quizzes (
               code TEXT PRIMARY KEY,
               token_hash TEXT NOT NULL,
               topic TEXT NOT NULL,
               difficulty TEXT NOT NULL,
               questions TEXT NOT NULL,
               created_at REAL NOT NULL)""",
        """CREATE TABLE submissions (
               id INTEGER PRIMARY KEY,
               code TEXT NOT NULL REFERENCES quizzes(code),
               submission_id TEXT NOT NULL,
               name TEXT,
               answers TEXT NOT NULL,
               score INTEGER NOT NULL,
               total INTEGER NOT NULL,
               submitted_at REAL NOT NULL,
               UNIQUE (code, submission_id))""",
    ],
}
_SUBMISSION_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_BUSY_TIMEOUT_S = 30.0
_CODE_ATTEMPTS = 20


class UnknownCodeError(LookupError):
    """No shared quiz has this code."""


@dataclass(frozen=True)
class Share:
    """What sharing gives the teacher: the code for the class and the secret for the results."""

    code: str
    teacher_token: str = field(repr=False)  # a secret: never logged, never shown to students


@dataclass(frozen=True)
class Submission:
    """One stored attempt, graded from the stored key. ``duplicate`` is True when this submission
    id had already been stored: the stored attempt is returned and nothing new is written."""

    code: str
    submission_id: str
    name: str | None
    answers: list[int | None]
    submitted_at: datetime
    result: QuizResult
    duplicate: bool = False

    @property
    def score(self) -> int:
        return self.result.score

    @property
    def total(self) -> int:
        return self.result.total


@dataclass(frozen=True)
class Participant:
    name: str  # ANONYMOUS when none was given
    score: int
    total: int
    submitted_at: datetime


@dataclass(frozen=True)
class QuestionStats:
    """How the class did on one question. Shares are of all participants; None when there are none."""

    index: int
    question: str
    options: list[str]
    answer: int
    correct: int
    unanswered: int
    correct_share: float | None
    wrong_picks: dict[int, int]  # every wrong option's index -> how many picked it


@dataclass(frozen=True)
class ClassResults:
    code: str
    topic: str
    total: int  # questions in the quiz
    participants: list[Participant]  # in the order they submitted
    distribution: dict[int, int]  # every score 0..total -> how many participants got it
    questions: list[QuestionStats]


@runtime_checkable
class ClassStore(Protocol):
    """Storage for class quizzes; a server database can replace SQLite behind this."""

    def share(self, quiz: Quiz) -> Share: ...

    def load(self, code: str) -> Quiz: ...

    def teacher_quiz(self, code: str, teacher_token: str) -> Quiz: ...

    def submit(self, code: str, submission_id: str, name: str | None,
               answers: list[int | None]) -> Submission: ...

    def class_results(self, code: str, teacher_token: str) -> ClassResults: ...


def normalize_code(code: str) -> str:
    """``" k7p-3qx "`` -> ``"K7P3QX"``; UnknownCodeError when it cannot be a share code."""
    cleaned = re.sub(r"[\s-]+", "", code).upper() if isinstance(code, str) else ""
    if len(cleaned) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in cleaned):
        shown = code[:40] if isinstance(code, str) else code
        raise UnknownCodeError(f"{shown!r} is not a quiz code: a code is {CODE_LENGTH} letters and "
                               f"digits such as 'K7P3QX'; ask your teacher for it")
    return cleaned


def _token_hash(token: str) -> str:
    # The token carries 192 random bits, so one SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_text(text: object, what: str, limit: int) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{what} is empty: write it before sharing the quiz")
    if len(text) > limit:
        raise ValueError(f"{what} is {len(text)} characters long: shorten it to at most {limit}")
    return text.strip()


def _quiz_json(quiz: Quiz) -> str:
    """The quiz as stored, after checking it fits the limits and every question has a key."""
    if not 1 <= len(quiz.questions) <= MAX_QUESTIONS:
        raise ValueError(f"the quiz has {len(quiz.questions)} questions: share 1 to {MAX_QUESTIONS}")
    _check_text(quiz.topic, "the topic", MAX_TOPIC_CHARS)
    _check_text(quiz.difficulty, "the difficulty", MAX_DIFFICULTY_CHARS)
    items = []
    for n, q in enumerate(quiz.questions, 1):
        if not 2 <= len(q.options) <= MAX_OPTIONS:
            raise ValueError(f"question {n} has {len(q.options)} options: use 2 to {MAX_OPTIONS}")
        if q.answer is None:
            raise ValueError(f"question {n} has no answer key, so the class could not be graded: "
                             f"share a generated quiz or add the key")
        items.append({
            "question": _check_text(q.question, f"question {n}", MAX_QUESTION_CHARS),
            "options": [_check_text(o, f"option {LETTERS[i]} of question {n}", MAX_OPTION_CHARS)
                        for i, o in enumerate(q.options)],
            "answer": q.answer,
            "explanation": _check_text(q.explanation, f"the explanation of question {n}",
                                       MAX_EXPLANATION_CHARS) if (q.explanation or "").strip() else None,
        })
    return json.dumps(items, ensure_ascii=False)


def _questions(stored: str, *, with_key: bool) -> list[Question]:
    return [Question(item["question"], item["options"], item["answer"] if with_key else None,
                     item["explanation"] if with_key else None) for item in json.loads(stored)]


def clean_name(name: str | None) -> str | None:
    """A participant's name with line breaks and control characters as spaces, spaces squeezed; None if blank."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise ValueError(f"a name must be text or None, got {type(name).__name__}")
    # Line breaks and other control characters become spaces; invisible format characters go.
    visible = "".join(" " if unicodedata.category(c) == "Cc" else c for c in name
                      if not unicodedata.category(c).startswith(("Cf", "Cs", "Co", "Cn")))
    cleaned = " ".join(visible.split())
    if len(cleaned) > MAX_NAME_CHARS:
        raise ValueError(f"the name is {len(cleaned)} characters long: use at most {MAX_NAME_CHARS}")
    return cleaned or None


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)


class SQLiteClassStore:
    """``ClassStore`` on one SQLite file; safe to share between threads and processes.

    ``clock`` gives the time stored with each submission (seconds since the epoch); tests pass a
    fixed one.
    """

    def __init__(self, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"the folder {str(self.path.parent)!r} for the class database does not "
                                    f"exist: create it or choose another --data-dir")
        self._clock = clock
        self._migrate()

    def __repr__(self) -> str:
        return f"SQLiteClassStore({str(self.path)!r})"

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One connection for one call, inside one transaction (``BEGIN IMMEDIATE`` for writes, so
        a writer waits for the lock up front instead of failing when it upgrades a read)."""
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def _migrate(self) -> None:
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            # WAL lets students' reads go on while one submission is written; it stays set in the file.
            conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()
        with self._connect(write=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            version = row[0] if row else 0
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} holds class data of schema version {version}, newer than "
                                   f"this app's {SCHEMA_VERSION}: update the app or use another --data-dir")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target]:
                    conn.execute(statement)
            if row is None:
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif version < SCHEMA_VERSION:
                conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def share(self, quiz: Quiz) -> Share:
        stored = _quiz_json(quiz)
        token = secrets.token_urlsafe(24)
        with self._connect(write=True) as conn:
            for _ in range(_CODE_ATTEMPTS):
                code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO quizzes (code, token_hash, topic, difficulty, questions, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (code, _token_hash(token), quiz.topic.strip(), quiz.difficulty.strip(), stored, self._clock()))
                if inserted.rowcount == 1:
                    break
            else:
                raise RuntimeError(f"no free quiz code after {_CODE_ATTEMPTS} tries: the database "
                                   f"{self.path} holds too many quizzes; archive it and start a new one")
        logger.info("shared a %d-question quiz as %s", len(quiz.questions), code)
        return Share(code, token)

    def _quiz_row(self, conn: sqlite3.Connection, code: str) -> tuple[str, str, str, str, str]:
        row = conn.execute("SELECT code, token_hash, topic, difficulty, questions FROM quizzes WHERE code = ?",
                           (code,)).fetchone()
        if row is None:
            raise UnknownCodeError(f"no shared quiz has the code {code!r}: check the code with your teacher")
        return row

    def load(self, code: str) -> Quiz:
        """The shared quiz as students get it: questions and options, no answers, no explanations."""
        with self._connect() as conn:
            code, _, topic, difficulty, stored = self._quiz_row(conn, normalize_code(code))
        return Quiz(topic, difficulty, _questions(stored, with_key=False))

    def _authorized_row(self, conn: sqlite3.Connection, code: str, teacher_token: str) -> tuple:
        row = self._quiz_row(conn, normalize_code(code))
        given = _token_hash(teacher_token) if isinstance(teacher_token, str) else ""
        if not hmac.compare_digest(given, row[1]):
            raise PermissionError(f"this teacher link does not open class {row[0]}: use the teacher link "
                                  f"you were given when you shared the quiz")
        return row

    def teacher_quiz(self, code: str, teacher_token: str) -> Quiz:
        """The shared quiz with its key, for the teacher who shared it; PermissionError otherwise."""
        with self._connect() as conn:
            _, _, topic, difficulty, stored = self._authorized_row(conn, code, teacher_token)
        return Quiz(topic, difficulty, _questions(stored, with_key=True))

    def submit(self, code: str, submission_id: str, name: str | None,
               answers: list[int | None]) -> Submission:
        """Grade ``answers`` (one option index or None per question) with the stored key and store them.

        ``submission_id`` identifies the attempt (16-64 letters, digits, "-" or "_"; a random UUID
        from the student's page): sending it again returns the stored attempt, never a second row,
        and sending it with other answers is a ValueError.
        """
        code = normalize_code(code)
        if not isinstance(submission_id, str) or not _SUBMISSION_ID.fullmatch(submission_id):
            raise ValueError("the submission id must be 16-64 letters, digits, '-' or '_' "
                             "(a random UUID per attempt)")
        name = clean_name(name)
        answers = list(answers)
        with self._connect(write=True) as conn:
            _, _, topic, difficulty, stored = self._quiz_row(conn, code)
            result = grade(Quiz(topic, difficulty, _questions(stored, with_key=True)), answers)
            count = conn.execute("SELECT COUNT(*) FROM submissions WHERE code = ?", (code,)).fetchone()[0]
            inserted = 0
            if count < MAX_SUBMISSIONS_PER_CLASS:
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO submissions (code, submission_id, name, answers, score, total, "
                    "submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (code, submission_id, name, json.dumps(answers), result.score, result.total,
                     self._clock())).rowcount
            row = conn.execute("SELECT name, answers, submitted_at FROM submissions "
                               "WHERE code = ? AND submission_id = ?", (code, submission_id)).fetchone()
        if row is None:
            raise ValueError(f"class {code} already has {MAX_SUBMISSIONS_PER_CLASS} submissions, the most "
                             f"one class can hold: ask your teacher to share the quiz again")
        stored_name, stored_answers, submitted_at = row[0], json.loads(row[1]), row[2]
        if not inserted and stored_answers != answers:
            raise ValueError(f"submission {submission_id} was already stored with other answers: "
                             f"a new attempt needs a new submission id")
        return Submission(code, submission_id, stored_name, stored_answers, _utc(submitted_at), result,
                          duplicate=not inserted)

    def class_results(self, code: str, teacher_token: str) -> ClassResults:
        """Participants, the score distribution and per-question statistics of one class, for the
        holder of its teacher token; PermissionError for any other token."""
        with self._connect() as conn:
            code, _, topic, _, stored = self._authorized_row(conn, code, teacher_token)
            rows = conn.execute("SELECT name, answers, score, total, submitted_at FROM submissions "
                                "WHERE code = ? ORDER BY submitted_at, id", (code,)).fetchall()
        questions = _questions(stored, with_key=True)
        total = len(questions)
        participants = [Participant(name or ANONYMOUS, score, n, _utc(at)) for name, _, score, n, at in rows]
        distribution = dict.fromkeys(range(total + 1), 0)
        for p in participants:
            distribution[p.score] += 1
        all_answers = [json.loads(answers) for _, answers, _, _, _ in rows]
        return ClassResults(code, topic, total, participants, distribution,
                            [_question_stats(i, q, [a[i] for a in all_answers]) for i, q in enumerate(questions)])


def _question_stats(index: int, question: Question, picks: list[int | None]) -> QuestionStats:
    correct = sum(p == question.answer for p in picks)
    wrong = {i: sum(p == i for p in picks) for i in range(len(question.options)) if i != question.answer}
    return QuestionStats(index, question.question, list(question.options), question.answer, correct,
                         sum(p is None for p in picks), correct / len(picks) if picks else None, wrong)


def open_class_store(data_dir: str | os.PathLike[str]) -> SQLiteClassStore:
    """The app's store: ``DB_FILENAME`` inside ``data_dir`` (created if missing)."""
    folder = Path(data_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"cannot create the data folder {str(folder)!r} ({error.strerror}): "
                      f"pass a writable --data-dir") from error
    return SQLiteClassStore(folder / DB_FILENAME)

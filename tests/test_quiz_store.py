"""Class quizzes in SQLite: share codes, teacher tokens, submissions stored once, class results,
and many clients (threads and processes) submitting at the same time."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

import quiz.store as store_module
from quiz.question import Question, Quiz
from quiz.store import (
    ANONYMOUS, CODE_ALPHABET, ClassStore, Participant, QuestionStats, SQLiteClassStore, UnknownCodeError,
    open_class_store,
)

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def geography() -> Quiz:
    return Quiz("Geography", "easy", [
        Question("What is the capital of France?", ["Berlin", "Paris", "Rome", "Madrid"], 1,
                 "Paris has been the capital since 987."),
        Question("Which is the largest ocean?", ["Atlantic", "Indian", "Arctic", "Pacific"], 3),
        Question("Which river flows through Cairo?", ["Nile", "Amazon", "Danube", "Volga"], 0,
                 "The Nile runs through Cairo."),
    ], seed=99)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> SQLiteClassStore:
    return SQLiteClassStore(tmp_path / "classes.sqlite3", clock=clock)


def sid(n: int) -> str:
    return f"submission-{n:08d}"


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, tz=timezone.utc)


# --- sharing and joining --------------------------------------------------------------------------


def test_share_gives_a_typeable_code_and_keeps_only_a_hash_of_the_token(store: SQLiteClassStore,
                                                                        tmp_path: Path) -> None:
    share = store.share(geography())
    assert len(share.code) == 6 and set(share.code) <= set(CODE_ALPHABET)
    assert not set(share.code) & set("0O1I")
    assert len(share.teacher_token) >= 32
    assert share.teacher_token not in repr(share) and share.code in repr(share)
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("classes.sqlite3"))
    assert share.code.encode() in stored and share.teacher_token.encode() not in stored
    assert isinstance(store, ClassStore)


def test_students_load_the_questions_without_the_key(store: SQLiteClassStore) -> None:
    share = store.share(geography())
    typed = f"  {share.code[:3].lower()} {share.code[3:]} "
    loaded = store.load(typed)
    assert (loaded.topic, loaded.difficulty, loaded.seed) == ("Geography", "easy", None)
    assert [(q.question, q.options, q.answer, q.explanation) for q in loaded.questions] == [
        (q.question, q.options, None, None) for q in geography().questions]
    assert store.load(share.code[:3] + "-" + share.code[3:]).questions == loaded.questions


def test_unknown_and_malformed_codes_say_so(store: SQLiteClassStore) -> None:
    store.share(geography())
    with pytest.raises(UnknownCodeError, match="no shared quiz has the code 'ZZZZZZ': check the code"):
        store.load("zzzzzz")
    with pytest.raises(LookupError, match="'HELLO' is not a quiz code: a code is 6 letters and digits"):
        store.load("HELLO")
    with pytest.raises(LookupError, match="is not a quiz code"):
        store.load("ABC0O1")  # 0, O and 1 never appear in a code


def test_a_taken_code_is_drawn_again(store: SQLiteClassStore, monkeypatch: pytest.MonkeyPatch) -> None:
    letters = iter("AAAAAA" + "AAAAAA" + "BBBBBB")
    monkeypatch.setattr(store_module.secrets, "choice", lambda alphabet: next(letters))
    first, second = store.share(geography()), store.share(geography())
    assert (first.code, second.code) == ("AAAAAA", "BBBBBB")
    assert first.teacher_token != second.teacher_token


def test_sharing_checks_the_quiz_fits(store: SQLiteClassStore) -> None:
    q = geography().questions[0]
    with pytest.raises(ValueError, match="the quiz has 51 questions: share 1 to 50"):
        store.share(Quiz("Big", "easy", [q] * 51))
    with pytest.raises(ValueError, match="the quiz has 0 questions"):
        store.share(Quiz("Empty", "easy", []))
    with pytest.raises(ValueError, match="question 2 has no answer key, so the class could not be graded"):
        store.share(Quiz("T", "easy", [q, Question("Q?", ["a", "b"], None)]))
    with pytest.raises(ValueError, match="option C of question 1 is 501 characters long: shorten it to at most 500"):
        store.share(Quiz("T", "easy", [Question("Q?", ["a", "b", "x" * 501], 0)]))
    with pytest.raises(ValueError, match="question 1 has 9 options: use 2 to 8"):
        store.share(Quiz("T", "easy", [Question("Q?", list("abcdefghi"), 0)]))
    with pytest.raises(ValueError, match="the topic is 201 characters long"):
        store.share(Quiz("t" * 201, "easy", [q]))


# --- submitting -----------------------------------------------------------------------------------


def test_submit_grades_with_the_stored_key(store: SQLiteClassStore, clock: Clock) -> None:
    code = store.share(geography()).code
    clock.now = T0 + 30
    done = store.submit(code.lower(), sid(1), "  Ada \n Lovelace\x00 ", [1, 0, None])
    assert (done.code, done.submission_id, done.name, done.answers) == (code, sid(1), "Ada Lovelace", [1, 0, None])
    assert (done.score, done.total, done.submitted_at, done.duplicate) == (1, 3, at(30), False)
    assert [(f.status, f.correct_text) for f in done.result.feedback] == [
        ("correct", "Paris"), ("incorrect", "Pacific"), ("unanswered", "Nile")]


def test_the_same_submission_sent_twice_is_stored_once(store: SQLiteClassStore, clock: Clock,
                                                       tmp_path: Path) -> None:
    share = store.share(geography())
    first = store.submit(share.code, sid(1), "Ada", [1, 3, 0])
    clock.now = T0 + 5
    again = store.submit(share.code, sid(1), "Someone else", [1, 3, 0])
    assert (again.duplicate, again.name, again.score, again.submitted_at) == (True, "Ada", 3, first.submitted_at)
    with pytest.raises(ValueError, match=f"submission {sid(1)} was already stored with other answers"):
        store.submit(share.code, sid(1), "Ada", [0, 3, 0])
    with sqlite3.connect(tmp_path / "classes.sqlite3") as conn:
        assert conn.execute("SELECT COUNT(*) FROM submissions").fetchone() == (1,)
    assert [p.name for p in store.class_results(share.code, share.teacher_token).participants] == ["Ada"]


def test_submissions_are_checked_before_anything_is_stored(store: SQLiteClassStore) -> None:
    share = store.share(geography())
    with pytest.raises(ValueError, match="got 2 answers for a 3-question quiz"):
        store.submit(share.code, sid(1), None, [1, 3])
    with pytest.raises(ValueError, match="answer 2 is 4, but question 2 has options 0-3"):
        store.submit(share.code, sid(1), None, [1, 4, 0])
    with pytest.raises(ValueError, match="the submission id must be 16-64 letters, digits"):
        store.submit(share.code, "1", None, [1, 3, 0])
    with pytest.raises(ValueError, match="the name is 61 characters long: use at most 60"):
        store.submit(share.code, sid(1), "n" * 61, [1, 3, 0])
    with pytest.raises(UnknownCodeError):
        store.submit("ZZZZZZ", sid(1), None, [1, 3, 0])
    assert store.class_results(share.code, share.teacher_token).participants == []
    assert store.submit(share.code, sid(1), "   ", [1, 3, 0]).name is None


def test_a_full_class_takes_no_more_submissions(store: SQLiteClassStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "MAX_SUBMISSIONS_PER_CLASS", 2)
    code = store.share(geography()).code
    store.submit(code, sid(1), None, [1, 3, 0])
    store.submit(code, sid(2), None, [1, 3, 0])
    with pytest.raises(ValueError, match=f"class {code} already has 2 submissions, the most one class can hold"):
        store.submit(code, sid(3), None, [1, 3, 0])
    assert store.submit(code, sid(2), None, [1, 3, 0]).duplicate  # a re-sent one still gets its result


# --- the teacher's view ---------------------------------------------------------------------------


def test_class_results_have_participants_distribution_and_per_question_picks(store: SQLiteClassStore,
                                                                            clock: Clock) -> None:
    share = store.share(geography())
    for seconds, n, name, answers in [(60, 1, "Ada", [1, 3, 0]), (120, 2, None, [0, 3, None]),
                                      (90, 3, "Bo", [2, 0, None])]:
        clock.now = T0 + seconds
        store.submit(share.code, sid(n), name, answers)
    results = store.class_results(share.code.lower(), share.teacher_token)
    assert (results.code, results.topic, results.total) == (share.code, "Geography", 3)
    assert results.participants == [Participant("Ada", 3, 3, at(60)), Participant("Bo", 0, 3, at(90)),
                                    Participant(ANONYMOUS, 1, 3, at(120))]
    assert results.distribution == {0: 1, 1: 1, 2: 0, 3: 1}
    q = geography().questions
    assert results.questions == [
        QuestionStats(0, q[0].question, q[0].options, 1, correct=1, unanswered=0, correct_share=1 / 3,
                      wrong_picks={0: 1, 2: 1, 3: 0}),
        QuestionStats(1, q[1].question, q[1].options, 3, correct=2, unanswered=0, correct_share=2 / 3,
                      wrong_picks={0: 1, 1: 0, 2: 0}),
        QuestionStats(2, q[2].question, q[2].options, 0, correct=1, unanswered=2, correct_share=1 / 3,
                      wrong_picks={1: 0, 2: 0, 3: 0}),
    ]


def test_a_class_without_submissions(store: SQLiteClassStore) -> None:
    share = store.share(geography())
    results = store.class_results(share.code, share.teacher_token)
    assert (results.participants, results.distribution) == ([], {0: 0, 1: 0, 2: 0, 3: 0})
    assert [(s.correct, s.correct_share, s.wrong_picks) for s in results.questions][0] == (0, None, {0: 0, 2: 0, 3: 0})


def test_a_wrong_token_reveals_nothing_and_classes_stay_apart(store: SQLiteClassStore) -> None:
    first, second = store.share(geography()), store.share(Quiz("Maths", "easy", [Question("1+1?", ["2", "3"], 0)]))
    store.submit(first.code, sid(1), "Ada", [1, 3, 0])
    store.submit(second.code, sid(2), "Bo", [1])
    for code, token in [(first.code, "guess"), (first.code, second.teacher_token), (second.code, first.teacher_token),
                        (first.code, ""), (first.code, None)]:
        with pytest.raises(PermissionError) as caught:
            store.class_results(code, token)
        message = str(caught.value)
        assert message == (f"this teacher link does not open class {code}: use the teacher link you were "
                           f"given when you shared the quiz")
        with pytest.raises(PermissionError):
            store.teacher_quiz(code, token)
    only_first = store.class_results(first.code, first.teacher_token)
    assert [(p.name, p.score, p.total) for p in only_first.participants] == [("Ada", 3, 3)]
    only_second = store.class_results(second.code, second.teacher_token)
    assert [(p.name, p.score, p.total) for p in only_second.participants] == [("Bo", 0, 1)]
    # The same submission id in another class is another submission.
    assert store.submit(second.code, sid(1), "Cy", [0]).duplicate is False


def test_the_teacher_gets_the_quiz_with_its_key(store: SQLiteClassStore) -> None:
    share = store.share(geography())
    keyed = store.teacher_quiz(share.code, share.teacher_token)
    assert [(q.question, q.options, q.answer, q.explanation) for q in keyed.questions] == [
        (q.question, q.options, q.answer, q.explanation) for q in geography().questions]


# --- the database file ----------------------------------------------------------------------------


def test_the_file_is_in_wal_mode_with_a_schema_version_and_survives_reopening(tmp_path: Path) -> None:
    store = open_class_store(tmp_path / "data" / "nested")
    path = tmp_path / "data" / "nested" / "classes.sqlite3"
    assert store.path == path and path.is_file()
    share = store.share(geography())
    store.submit(share.code, sid(1), "Ada", [1, 3, 0])
    reopened = SQLiteClassStore(path)
    assert [p.name for p in reopened.class_results(share.code, share.teacher_token).participants] == ["Ada"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]


def test_a_newer_schema_is_refused_and_a_missing_folder_named(tmp_path: Path) -> None:
    path = tmp_path / "classes.sqlite3"
    SQLiteClassStore(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = 7")
    with pytest.raises(RuntimeError, match="holds class data of schema version 7, newer than this app's 1"):
        SQLiteClassStore(path)
    with pytest.raises(FileNotFoundError, match="for the class database does not exist: create it or choose"):
        SQLiteClassStore(tmp_path / "missing" / "classes.sqlite3")


# --- many clients at once -------------------------------------------------------------------------

# Four questions; client i answers the first i % 5 right and the rest wrong (even i: the option after
# the key) or not at all (odd i), so every score 0-4 is reached by 6 of 30 clients.
KEY = [1, 3, 0, 2]
CLIENTS = 30


def class_quiz() -> Quiz:
    return Quiz("Class", "medium", [Question(f"Question {n}?", ["w", "x", "y", "z"], k) for n, k in enumerate(KEY)])


def client_answers(i: int) -> list[int | None]:
    return [k if q < i % 5 else None if i % 2 else (k + 1) % 4 for q, k in enumerate(KEY)]


def _send(path: str, code: str, i: int) -> tuple[int, str, int, bool]:
    done = SQLiteClassStore(path).submit(code, sid(i), f"Student {i:02d}", client_answers(i))
    return i, done.submission_id, done.score, done.duplicate


def _client_process(path: str, code: str, i: int, barrier, queue) -> None:
    """One client in its own process: opens the store, waits for all others, then sends its
    submission twice at once from two threads (a double click, a retry after a timeout)."""
    try:
        SQLiteClassStore(path)
        barrier.wait(timeout=60)
        sent: list = []
        together = threading.Barrier(2)

        def twice() -> None:
            together.wait(timeout=30)
            sent.append(_send(path, code, i))

        threads = [threading.Thread(target=twice) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        queue.put(sent)
    except BaseException as error:  # noqa: BLE001 - the parent reports it
        queue.put(repr(error))


def check_class(path: Path, code: str, token: str, sent: list[tuple[int, str, int, bool]]) -> None:
    assert len(sent) == 2 * CLIENTS
    assert sorted((i, s, score) for i, s, score, _ in sent) == sorted(
        (i, sid(i), i % 5) for i in range(CLIENTS) for _ in range(2))
    assert sorted(s for _, s, _, duplicate in sent if not duplicate) == sorted(sid(i) for i in range(CLIENTS))
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT submission_id, COUNT(*) FROM submissions GROUP BY submission_id").fetchall()
    assert sorted(rows) == [(sid(i), 1) for i in range(CLIENTS)]
    results = SQLiteClassStore(path).class_results(code, token)
    assert sorted(p.name for p in results.participants) == [f"Student {i:02d}" for i in range(CLIENTS)]
    assert results.distribution == {0: 6, 1: 6, 2: 6, 3: 6, 4: 6}
    assert [(s.correct, s.unanswered, s.correct_share, s.wrong_picks) for s in results.questions] == [
        (24, 3, 0.8, {0: 0, 2: 3, 3: 0}),
        (18, 6, 0.6, {0: 6, 1: 0, 2: 0}),
        (12, 9, 0.4, {1: 9, 2: 0, 3: 0}),
        (6, 12, 0.2, {0: 0, 1: 0, 3: 12}),
    ]


def test_thirty_clients_in_threads_each_sending_twice_are_stored_once_each(tmp_path: Path) -> None:
    path = tmp_path / "classes.sqlite3"
    share = SQLiteClassStore(path).share(class_quiz())
    barrier = threading.Barrier(2 * CLIENTS)
    sent: list = []
    errors: list = []

    def client(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            sent.append(_send(str(path), share.code, i))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    check_class(path, share.code, share.teacher_token, sent)


@pytest.mark.slow
def test_thirty_client_processes_each_sending_twice_are_stored_once_each(tmp_path: Path) -> None:
    path = tmp_path / "classes.sqlite3"
    share = SQLiteClassStore(path).share(class_quiz())
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    barrier, queue = context.Barrier(CLIENTS), context.Queue()
    processes = [context.Process(target=_client_process, args=(str(path), share.code, i, barrier, queue))
                 for i in range(CLIENTS)]
    for p in processes:
        p.start()
    replies = [queue.get(timeout=120) for _ in processes]
    for p in processes:
        p.join(timeout=60)
    assert [r for r in replies if isinstance(r, str)] == []
    assert [p.exitcode for p in processes] == [0] * CLIENTS
    check_class(path, share.code, share.teacher_token, [s for reply in replies for s in reply])

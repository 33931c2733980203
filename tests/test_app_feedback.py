"""The chat's feedback file: the record format, atomic appends from many threads and processes, what each
rating action writes, and a bad path failing at start-up. The page itself: test_app_feedback_browser.py."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import threading
from pathlib import Path

import gradio as gr
import pytest
from gradio_client import Client

import app
from inference.prompts import SYSTEM_PROMPT
from tests.browser import QUIET_GRADIO, free_port
from tests.scripted import ScriptedBackend
from ui.chat import EMPTY_REPLY, make_chat_fn
from ui.feedback import FEEDBACK_VERSION, FeedbackFileError, FeedbackLog, encode_line, feedback_record
from ui.rating import FeedbackSession, PromptLedger, Reply, reply_at

pytestmark = QUIET_GRADIO

TIME = "2026-12-02T10:00:00Z"
QUESTION = [{"role": "system", "content": "You are a tutor."}, {"role": "user", "content": "What is 7 x 8?"}]


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def without_time(records: list[dict]) -> list[dict]:
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["time"]) for r in records)
    return [{k: v for k, v in r.items() if k != "time"} for r in records]


def expected(reply: str, rating: str | None, better: str | None = None, source: str | None = None,
             conversation: list[dict] = QUESTION, model: str = "tiny") -> dict:
    return {"version": 1, "conversation": conversation, "reply": reply, "rating": rating, "better": better,
            "better_source": source, "model": model}


# -- the record and its line ---------------------------------------------------------------------

def test_a_record_has_exactly_the_documented_fields_in_order():
    record = feedback_record(QUESTION, "56.", "up", model="llama-3.2-3b (transformers)", time=TIME)
    assert record == {"version": 1, "time": TIME, "conversation": QUESTION, "reply": "56.", "rating": "up",
                      "better": None, "better_source": None, "model": "llama-3.2-3b (transformers)"}
    assert list(record) == ["version", "time", "conversation", "reply", "rating", "better", "better_source", "model"]
    assert FEEDBACK_VERSION == 1
    line = encode_line(record)
    assert line == (b'{"version": 1, "time": "2026-12-02T10:00:00Z", "conversation": [{"role": "system", "content": '
                    b'"You are a tutor."}, {"role": "user", "content": "What is 7 x 8?"}], "reply": "56.", "rating": '
                    b'"up", "better": null, "better_source": null, "model": "llama-3.2-3b (transformers)"}\n')


def test_the_time_is_utc_to_the_second():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", feedback_record(QUESTION, "56.", None)["time"])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"conversation": [], "reply": "x", "rating": "up"}, "conversation must be role/content messages"),
    ({"conversation": [{"role": "tool", "content": "x"}], "reply": "x", "rating": "up"}, "roles"),
    ({"conversation": QUESTION + [{"role": "assistant", "content": "56"}], "reply": "x", "rating": "up"},
     "must end with the user's message"),
    ({"conversation": QUESTION, "reply": "  ", "rating": "up"}, "reply must be non-empty text"),
    ({"conversation": QUESTION, "reply": "x", "rating": "meh"}, "rating must be 'up', 'down' or None, got 'meh'"),
    ({"conversation": QUESTION, "reply": "x", "rating": "down", "better": "y"}, "better and better_source go together"),
    ({"conversation": QUESTION, "reply": "x", "rating": "down", "better": "y", "better_source": "guess"},
     "better_source must be one of"),
])
def test_a_malformed_record_is_refused_naming_the_field(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        feedback_record(**kwargs)


def test_a_line_never_breaks_inside_and_reads_back_exactly():
    tricky = "Line one\nline two\r\u2028sep\u2029para\x85nel \"quoted\" é 数学 \U0001f999 \udc80 tab\t<b>"
    line = encode_line(feedback_record(QUESTION, tricky, "down", model="m", time=TIME))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    text = line.decode("utf-8")
    assert len(text.splitlines()) == 1  # str.splitlines() also splits on U+2028, U+2029 and U+0085
    assert "数学" in text and "é" in text  # readable, not \\u-escaped
    assert json.loads(text)["reply"] == tricky


# -- the file --------------------------------------------------------------------------------------

def test_records_are_appended_as_lines_to_a_new_private_file(tmp_path: Path):
    path = tmp_path / "feedback.jsonl"
    log = FeedbackLog(path)
    assert path.is_file() and path.stat().st_size == 0  # created at start, so a rating never finds it missing
    assert path.stat().st_mode & 0o777 == 0o600
    log.append([feedback_record(QUESTION, "56.", "up", model="m", time=TIME)])
    log.append([feedback_record(QUESTION, "54.", "down", model="m", time=TIME),
                feedback_record(QUESTION, "54.", "down", better="56.", better_source="edit", model="m", time=TIME)])
    log.append([])
    assert [(r["reply"], r["rating"], r["better"]) for r in read_lines(path)] == [
        ("56.", "up", None), ("54.", "down", None), ("54.", "down", "56.")]


def test_an_existing_file_is_appended_to_and_a_cut_off_last_line_is_closed(tmp_path: Path):
    path = tmp_path / "feedback.jsonl"
    first = encode_line(feedback_record(QUESTION, "56.", "up", time=TIME))
    path.write_bytes(first + b'{"version": 1, "time": "2026-')  # a write cut short by a full disk
    FeedbackLog(path).append([feedback_record(QUESTION, "54.", "down", time=TIME)])
    lines = path.read_bytes().split(b"\n")
    assert lines[0] + b"\n" == first and lines[1] == b'{"version": 1, "time": "2026-'
    assert json.loads(lines[2])["reply"] == "54." and lines[3] == b""


@pytest.mark.parametrize(("where", "message"), [
    (lambda tmp: tmp / "no-such-folder" / "feedback.jsonl",
     "cannot write the feedback file {tmp}/no-such-folder/feedback.jsonl: the folder {tmp}/no-such-folder does "
     "not exist (create it first, or choose another file)"),
    (lambda tmp: tmp,
     "cannot write the feedback file {tmp}: it is a folder; give a file in it, e.g. {tmp}/feedback.jsonl"),
    (lambda tmp: tmp / "notes.txt" / "feedback.jsonl",
     "cannot write the feedback file {tmp}/notes.txt/feedback.jsonl: {tmp}/notes.txt is not a folder"),
])
def test_a_path_that_cannot_be_written_is_one_clear_line(tmp_path: Path, where, message):
    (tmp_path / "notes.txt").write_text("not a folder")
    with pytest.raises(FeedbackFileError) as caught:
        FeedbackLog(where(tmp_path))
    assert str(caught.value) == message.format(tmp=tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_folder_without_write_permission_is_one_clear_line(tmp_path: Path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(FeedbackFileError, match=r"feedback.jsonl: permission denied \(choose a file in a folder"):
        FeedbackLog(locked / "feedback.jsonl")


def test_the_app_refuses_an_unwritable_feedback_file_before_loading_the_model(tmp_path, capsys, monkeypatch):
    loaded = []
    monkeypatch.setattr(app, "load_backend", lambda *a, **k: loaded.append(a) or ScriptedBackend())
    missing = tmp_path / "gone" / "feedback.jsonl"
    assert app.main(["--feedback-file", str(missing)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: cannot write the feedback file {missing}: the folder {missing.parent} does not exist " \
                  "(create it first, or choose another file)"
    assert loaded == []
    monkeypatch.setenv("TUTOR_FEEDBACK_FILE", str(missing))
    assert app.main([]) == 1 and loaded == []
    with pytest.raises(FeedbackFileError, match="does not exist"):
        app.build_demo(ScriptedBackend(), feedback_file=missing)


def _filler(writer: str, n: int) -> str:
    # From a few bytes to 150 KB: far over the 4 KB that pipes write atomically and the page size.
    size = [10, 5_000, 150_000, 700][n % 4]
    return (f"{writer}/{n} " * (size // (len(writer) + 8) + 1))[:size]


def _append_many(log: FeedbackLog, writer: str, count: int) -> None:
    for n in range(count):
        log.append([feedback_record(QUESTION, _filler(writer, n), "up", model=f"{writer}/{n}", time=TIME)])


def _threads(log: FeedbackLog, name: str, threads: int, count: int) -> None:
    """Like the app: one log shared by every user's thread."""
    workers = [threading.Thread(target=_append_many, args=(log, f"{name}-t{t}", count)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def _check_every_record(path: Path, writers: list[str], count: int) -> None:
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    assert lines[-1] == b""  # ends with a line break: no record cut short
    records = [json.loads(line) for line in lines[:-1]]  # each line is one whole record
    assert len(records) == len(writers) * count
    assert sorted(r["model"] for r in records) == sorted(f"{w}/{n}" for w in writers for n in range(count))
    for r in records:
        writer, n = r["model"].rsplit("/", 1)
        assert r["reply"] == _filler(writer, int(n))  # nothing of another record inside


def test_sixteen_threads_appending_at_once_lose_and_mix_nothing(tmp_path: Path):
    path = tmp_path / "feedback.jsonl"
    _threads(FeedbackLog(path), "p0", threads=16, count=40)
    _check_every_record(path, [f"p0-t{t}" for t in range(16)], 40)


def test_four_processes_of_four_threads_appending_at_once_lose_and_mix_nothing(tmp_path: Path):
    path = tmp_path / "feedback.jsonl"
    log = FeedbackLog(path)  # each app process opens its own log at start-up; here, before the writers begin
    fork = multiprocessing.get_context("fork")  # the children need the modules already imported, not a re-import
    processes = [fork.Process(target=_threads, args=(log, f"p{p}", 4, 30)) for p in range(4)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(120)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    _check_every_record(path, [f"p{p}-t{t}" for p in range(4) for t in range(4)], 30)


# -- what each action writes ---------------------------------------------------------------------

def test_dislike_regenerate_like_gives_the_down_up_and_better_records():
    session = FeedbackSession(model="tiny")
    first, second = Reply(QUESTION, "54."), Reply(QUESTION, "7 x 8 = 56: seven eights.")
    records = session.rate(first, "down")
    session.regenerate(first)
    records += session.rate(second, "up")
    assert without_time(records) == [
        expected("54.", "down"),
        expected("7 x 8 = 56: seven eights.", "up"),
        expected("54.", "down", "7 x 8 = 56: seven eights.", "regenerate")]
    # The thumb clicked again takes the rating back: a null record, and the pairs are not written twice.
    assert without_time(session.rate(second, None)) == [expected("7 x 8 = 56: seven eights.", None)]
    assert without_time(session.rate(second, "up")) == [expected("7 x 8 = 56: seven eights.", "up")]


def test_every_reply_regenerated_away_is_recorded_against_the_liked_one_once():
    session = FeedbackSession(model="tiny")
    a, b, c = (Reply(QUESTION, text) for text in ("54.", "Fifty-six.", "56: eight sevens."))
    session.regenerate(a)
    session.regenerate(b)
    records = session.rate(c, "up")
    assert [(r["reply"], r["rating"], r["better"], r["better_source"]) for r in records] == [
        ("56: eight sevens.", "up", None, None), ("54.", "down", "56: eight sevens.", "regenerate"),
        ("Fifty-six.", "down", "56: eight sevens.", "regenerate")]
    assert [r["reply"] for r in session.rate(c, "up")] == ["56: eight sevens."]  # the pairs are written once


def test_a_liked_reply_that_was_regenerated_is_not_recorded_as_worse():
    session = FeedbackSession(model="tiny")
    liked, again = Reply(QUESTION, "56."), Reply(QUESTION, "56, because 7 x 8 = 56.")
    session.rate(liked, "up")
    session.regenerate(liked)
    assert [r["reply"] for r in session.rate(again, "up")] == ["56, because 7 x 8 = 56."]


def test_a_regenerated_reply_in_another_conversation_is_not_paired():
    session = FeedbackSession(model="tiny")
    other = [{"role": "user", "content": "What is 7 x 8?"}]  # no system prompt: another conversation
    session.regenerate(Reply(other, "54."))
    assert [r["reply"] for r in session.rate(Reply(QUESTION, "56."), "up")] == ["56."]


def test_an_edit_records_the_original_as_worse_than_the_edited_text():
    session = FeedbackSession(model="tiny")
    first, second = Reply(QUESTION, "54."), Reply(QUESTION, "58.")
    session.regenerate(first)
    records = session.edit(second, "56: seven eights are fifty-six.")
    assert without_time(records) == [
        expected("58.", "down", "56: seven eights are fifty-six.", "edit"),
        expected("54.", "down", "56: seven eights are fifty-six.", "edit")]
    edited = Reply(QUESTION, "56: seven eights are fifty-six.")
    assert session.is_edit(edited) and not session.is_edit(second)
    # Editing the edit again: still the model's reply against the newest text.
    assert without_time(session.edit(edited, "56.")) == [expected("58.", "down", "56.", "edit")]
    session.regenerate(edited)  # the user's own text is never recorded as a model reply
    assert session.replaced == {}


def test_the_rated_reply_and_its_conversation_come_from_the_chat_history():
    history = [{"role": "user", "content": [{"type": "text", "text": "Hi"}]},
               {"role": "assistant", "content": "Hello! What shall we learn?"},
               {"role": "user", "content": "What is 7 x 8?"},
               {"role": "assistant", "content": [{"type": "text", "text": "56."}], "metadata": None}]
    ledger = PromptLedger()
    reply, better = reply_at(history, 3, "Current box text", ledger, edited=(3, "56: seven eights."))
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! What shall we learn?"},
             {"role": "user", "content": "What is 7 x 8?"}]
    assert reply == Reply([{"role": "system", "content": "Current box text"}, *turns], "56.")
    assert better == "56: seven eights."
    # The system prompt the reply was written under wins over what the box holds now; empty = none.
    ledger.remember(turns, "56.", "  You are a terse tutor. ")
    assert reply_at(history, [3, 0], "Current box text", ledger)[0].conversation[0] == {
        "role": "system", "content": "You are a terse tutor."}
    ledger.remember(turns, "56.", "")
    assert reply_at(history, 3, "Current box text", ledger)[0].conversation == turns


@pytest.mark.parametrize(("history", "index", "message"), [
    ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], 0, "not one of the tutor's"),
    ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], 5, "not one of the tutor's"),
    ([{"role": "assistant", "content": "Welcome!"}], 0, "answers no question of yours"),
    ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": EMPTY_REPLY}], 1,
     "the model returned nothing"),
])
def test_a_message_that_is_no_reply_cannot_be_rated(history, index, message):
    with pytest.raises(gr.Error, match=message):
        reply_at(history, index, SYSTEM_PROMPT, PromptLedger())


def test_the_chat_tells_the_ledger_which_system_prompt_each_reply_had():
    ledger = PromptLedger()
    chat = make_chat_fn(ScriptedBackend(["56."]), on_reply=ledger.remember)
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]}]
    assert list(chat("What is 7 x 8?", history, "Be terse.", 0.0, 64))[-1] == "56."
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
             {"role": "user", "content": "What is 7 x 8?"}]
    assert ledger.system_prompt(turns, "56.", "box") == "Be terse."
    assert ledger.system_prompt(turns, "57.", "box") == "box"


def test_the_ledger_forgets_the_oldest_replies_first():
    ledger = PromptLedger(size=2)
    for n in range(3):
        ledger.remember([{"role": "user", "content": "q"}], f"reply {n}", f"prompt {n}")
    assert [ledger.system_prompt([{"role": "user", "content": "q"}], f"reply {n}", None) for n in range(3)] == [
        None, "prompt 1", "prompt 2"]


# -- the app -------------------------------------------------------------------------------------

def _chatbot(demo: gr.Blocks) -> dict:
    return next(c for c in demo.config["components"] if c["props"].get("elem_id") == "chatbot")


def test_ratings_are_off_by_default_and_on_with_a_file(tmp_path: Path):
    off = app.build_demo(ScriptedBackend())
    props = _chatbot(off)["props"]
    assert props.get("feedback_options") is None and props.get("editable") is None and not props.get("likeable")
    assert not any(c["props"].get("elem_id") == "chat-feedback-note" for c in off.config["components"])
    on = app.build_demo(ScriptedBackend(), feedback_file=tmp_path / "feedback.jsonl")
    props = _chatbot(on)["props"]
    assert props["feedback_options"] == ["Like", "Dislike"] and props["editable"] == "all" and props["likeable"]
    note = next(c for c in on.config["components"] if c["props"].get("elem_id") == "chat-feedback-note")
    assert note["props"]["value"] == ("Your ratings 👍 👎 and edited answers are saved with the conversation to "
                                      "improve the tutor.")


def test_rating_events_are_page_actions_not_api_endpoints(tmp_path: Path):
    path = tmp_path / "feedback.jsonl"
    off, on = app.build_demo(ScriptedBackend()), app.build_demo(ScriptedBackend(default="56."), feedback_file=path)
    assert set(on.get_api_info()["named_endpoints"]) == set(off.get_api_info()["named_endpoints"])  # none added
    url = app.serve(on, port=free_port(), block=False)
    try:
        assert Client(url, verbose=False).predict("What is 7 x 8?", api_name="/chat") == "56."
    finally:
        on.close()
    assert path.read_text() == ""  # chatting writes nothing; only ratings do

"""Rating the tutor in a real headless Chromium with --feedback-file: the records the clicks write, exactly,
and DPO trained on the file they wrote."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

import app
from inference.prompts import SYSTEM_PROMPT
from tests.browser import QUIET_GRADIO, chromium, free_port, page, running_app  # noqa: F401
from tests.scripted import ScriptedBackend

pytestmark = [pytest.mark.slow, *QUIET_GRADIO]

ROOT = Path(__file__).resolve().parents[1]
INPUT = "#chat-input textarea"
BOT = '#chatbot [data-testid="bot"]'
USER = '#chatbot [data-testid="user"]'
NOTE = "Your ratings 👍 👎 and edited answers are saved with the conversation to improve the tutor."
MODEL = ScriptedBackend.description
QUESTION = "Why is the sky blue?"
ASKED = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": QUESTION}]
FIRST = "Because it is."
SECOND = ("Sunlight is scattered by the air, and blue light is scattered most (Rayleigh scattering). "
          "Why do you think sunsets look red?")
EDITED = "Air scatters blue light more than red, so blue reaches your eyes from every direction."


@contextmanager
def feedback_app(backend: ScriptedBackend, path: Path) -> Iterator[str]:
    """The real app with ``--feedback-file path``, launched as ``python app.py`` does."""
    demo = app.build_demo(backend, feedback_file=path)
    url = app.serve(demo, port=free_port(), block=False)
    try:
        yield url.rstrip("/")
    finally:
        demo.close()


def records(path: Path, count: int, timeout_s: float = 30) -> list[dict]:
    """The file's records once it holds ``count`` (a rating is written after the click returns)."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) >= count or time.monotonic() > deadline:
            assert len(lines) == count, lines
            return [json.loads(line) for line in lines]
        time.sleep(0.05)


def without_time(rows: list[dict]) -> list[dict]:
    for row in rows:
        assert len(row.pop("time")) == len("2026-12-02T10:00:00Z") and row is not None
    return rows


def record(reply: str, rating: str | None, better: str | None = None, source: str | None = None,
           conversation: list[dict] = ASKED) -> dict:
    return {"version": 1, "conversation": conversation, "reply": reply, "rating": rating, "better": better,
            "better_source": source, "model": MODEL}


def ask(page: Page, text: str) -> None:
    page.locator(INPUT).fill(text)
    page.locator(INPUT).press("Enter")
    expect(page.locator(INPUT)).to_be_enabled()  # the reply has finished


def bot_button(page: Page, label: str):
    page.locator(BOT).last.hover()
    return page.locator(f'#chatbot .message-buttons-left button[aria-label="{label}"]').last


def test_dislike_regenerate_like_writes_the_pair_records(page: Page, tmp_path: Path):
    path = tmp_path / "feedback.jsonl"
    with feedback_app(ScriptedBackend([FIRST, SECOND]), path) as url:
        page.goto(url)
        expect(page.get_by_text(NOTE)).to_be_visible()
        ask(page, QUESTION)
        expect(page.locator(BOT)).to_have_text([FIRST])
        bot_button(page, "Dislike").click()
        assert without_time(records(path, 1)) == [record(FIRST, "down")]
        bot_button(page, "Retry").click()
        expect(page.locator(BOT)).to_have_text([SECOND])
        expect(page.locator(INPUT)).to_be_enabled()
        assert len(records(path, 1)) == 1  # regenerating alone writes nothing
        bot_button(page, "Like").click()
        rows = without_time(records(path, 3))
    assert rows == [record(FIRST, "down"), record(SECOND, "up"), record(FIRST, "down", SECOND, "regenerate")]
    assert not page.page_errors


def test_editing_a_reply_writes_the_better_answer_and_the_chat_goes_on_from_it(page: Page, tmp_path: Path):
    path = tmp_path / "feedback.jsonl"
    backend = ScriptedBackend([FIRST, "Yes: shorter wavelengths scatter more."])
    with feedback_app(backend, path) as url:
        page.goto(url)
        ask(page, QUESTION)
        bot_button(page, "Edit").click()
        editor = page.locator("#chatbot textarea")
        editor.fill(EDITED)
        page.locator('#chatbot button[aria-label="Submit"]').click()
        expect(page.locator(BOT)).to_have_text([EDITED])
        assert without_time(records(path, 1)) == [record(FIRST, "down", EDITED, "edit")]
        ask(page, "So violet should win?")
        expect(page.locator(BOT)).to_have_text([EDITED, "Yes: shorter wavelengths scatter more."])
        bot_button(page, "Like").click()
        rows = without_time(records(path, 2))
    follow_up = [*ASKED, {"role": "assistant", "content": EDITED}, {"role": "user", "content": "So violet should win?"}]
    assert rows[1] == record("Yes: shorter wavelengths scatter more.", "up", conversation=follow_up)
    *_, (_, [seen], _) = backend.calls
    assert seen == follow_up  # the model was given the edited answer, not its own


def test_a_rating_taken_back_an_empty_edit_and_a_thumb_on_ones_own_edit(page: Page, tmp_path: Path):
    path = tmp_path / "feedback.jsonl"
    with feedback_app(ScriptedBackend([FIRST]), path) as url:
        page.goto(url)
        ask(page, QUESTION)
        bot_button(page, "Like").click()
        bot_button(page, "Liked").click()  # the chosen thumb again: the rating is taken back
        assert without_time(records(path, 2)) == [record(FIRST, "up"), record(FIRST, None)]
        bot_button(page, "Edit").click()
        page.locator("#chatbot textarea").fill("   ")
        page.locator('#chatbot button[aria-label="Submit"]').click()
        expect(page.get_by_text("An empty answer cannot replace the tutor's: write the better answer.")).to_be_visible()
        expect(page.locator(BOT)).to_have_text([FIRST])  # put back as it was
        bot_button(page, "Edit").click()
        page.locator("#chatbot textarea").fill(EDITED)
        page.locator('#chatbot button[aria-label="Submit"]').click()
        expect(page.locator(BOT)).to_have_text([EDITED])
        records(path, 3)
        bot_button(page, "Like").click()
        expect(page.get_by_text("That answer is your own edit: it is already saved as the better answer.")) \
            .to_be_visible()
        rows = without_time(records(path, 3))
    assert rows[2] == record(FIRST, "down", EDITED, "edit")


def test_editing_a_question_asks_it_again_and_writes_nothing(page: Page, tmp_path: Path):
    path = tmp_path / "feedback.jsonl"
    backend = ScriptedBackend(default=lambda messages: f"About: {messages[-1]['content']}")
    with feedback_app(backend, path) as url:
        page.goto(url)
        ask(page, "What is a prme?")
        page.locator(USER).last.hover()
        page.locator('#chatbot .message-buttons-right button[aria-label="Edit"]').last.click()
        page.locator("#chatbot textarea").fill("What is a prime?")
        page.locator('#chatbot button[aria-label="Submit"]').click()
        expect(page.locator(BOT)).to_have_text(["About: What is a prime?"])
        expect(page.locator(USER)).to_have_text(["What is a prime?"])
        expect(page.locator(INPUT)).to_be_enabled()
        ask(page, "And 9?")
        expect(page.locator(BOT)).to_have_text(["About: What is a prime?", "About: And 9?"])
    *_, (_, [seen], _) = backend.calls
    assert [m["content"] for m in seen[1:]] == ["What is a prime?", "About: What is a prime?", "And 9?"]
    assert path.read_text() == ""


def test_without_a_feedback_file_there_is_nothing_to_rate(page: Page):
    with running_app(ScriptedBackend(default=FIRST)) as url:
        page.goto(url)
        ask(page, QUESTION)
        page.locator(BOT).last.hover()
        expect(page.locator('#chatbot button[aria-label="Retry"]')).to_have_count(1)  # Gradio's own, kept
        expect(page.locator('#chatbot button[aria-label="Like"]')).to_have_count(0)
        expect(page.locator('#chatbot button[aria-label="Dislike"]')).to_have_count(0)
        expect(page.locator('#chatbot button[aria-label="Edit"]')).to_have_count(0)
        expect(page.get_by_text(NOTE)).to_have_count(0)


def test_dpo_trains_on_the_file_the_clicks_wrote(page: Page, tmp_path: Path, tiny_model_dir):
    feedback = pytest.importorskip("training.feedback", reason="the DPO trainer (training/feedback.py) is missing")
    pytest.importorskip("trl")
    path = tmp_path / "feedback.jsonl"
    with feedback_app(ScriptedBackend([FIRST, SECOND, FIRST]), path) as url:
        page.goto(url)
        ask(page, QUESTION)
        bot_button(page, "Dislike").click()
        records(path, 1)
        bot_button(page, "Retry").click()
        expect(page.locator(BOT)).to_have_text([SECOND])
        expect(page.locator(INPUT)).to_be_enabled()
        bot_button(page, "Like").click()
        records(path, 3)
        page.locator('#chatbot button[aria-label="Clear"]').click()
        ask(page, QUESTION)
        bot_button(page, "Edit").click()
        page.locator("#chatbot textarea").fill(EDITED)
        page.locator('#chatbot button[aria-label="Submit"]').click()
        rows = without_time(records(path, 4))
    assert rows == [record(FIRST, "down"), record(SECOND, "up"), record(FIRST, "down", SECOND, "regenerate"),
                    record(FIRST, "down", EDITED, "edit")]
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "training", "dpo", "--model", str(tiny_model_dir), "--dataset", str(path),
         "--max_steps", "2", "--output_dir", str(out), "--report_to", "none", "--logging_steps", "1",
         "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = next(line for line in done.stdout.splitlines() if line.startswith("feedback.jsonl:"))
    # The first reply disliked, the second liked, and the first again with the second as better: one pair
    # (chosen = the liked reply, rejected = the disliked one), found twice and kept once; the edit: another.
    assert summary.startswith("feedback.jsonl: 4 records gave 2 preference pairs (1 better reply, 1 liked vs "
                              "disliked)"), summary
    assert (out / "adapter_model.safetensors").is_file()
    data = json.loads((out / "metrics.json").read_text())["data"]
    assert data["train_pairs"] == 2 and data["pair_sources"] == {"liked vs disliked": 1, "better reply": 1}
    pairs = [(p.prompt, p.chosen, p.rejected) for p in feedback.read_feedback(path).pairs]
    assert pairs == [(ASKED, SECOND, FIRST), (ASKED, EDITED, FIRST)]

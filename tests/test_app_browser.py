"""The app in a real headless Chromium: chat streaming, stop, clear, HTML safety, the whole quiz flow.

Run with TUTOR_SCREENSHOTS=1 to (re)write docs/screenshots/chat.png and quiz.png.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from inference.backend import GenerationConfig
from tests.browser import (QUIET_GRADIO, QUIZ_BANK, RIGHT_ANSWER, TUTOR_QUESTION, chromium, page, running_app,  # noqa: F401
                           save_screenshot, tutor_backend)
from tests.scripted import ScriptedBackend

pytestmark = [pytest.mark.slow, *QUIET_GRADIO]

INPUT = "#chat-input textarea"
BOT = '#chatbot [data-testid="bot"]'
EXPLANATION = {question: explanation for question, _, _, explanation in QUIZ_BANK}


class GatedBackend(ScriptedBackend):
    """Streams the first chunk of a reply, then holds the rest until ``gate`` is set."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()

    def stream_chat(self, messages: list[dict], config: GenerationConfig | None = None) -> Iterator[str]:
        stream = super().stream_chat(messages, config)
        yield next(stream)
        assert self.gate.wait(60), "the test never opened the gate"
        yield from stream


class PacedBackend(ScriptedBackend):
    """Yields one chunk every 50 ms, like a model decoding tokens; records when a reader stops early."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stopped_early = threading.Event()

    def stream_chat(self, messages: list[dict], config: GenerationConfig | None = None) -> Iterator[str]:
        finished = False
        try:
            for chunk in super().stream_chat(messages, config):
                time.sleep(0.05)  # decoding time of the pretend model, not test synchronisation
                yield chunk
            finished = True
        finally:
            if not finished:
                self.stopped_early.set()


def send(page: Page, text: str) -> None:
    page.locator(INPUT).fill(text)
    page.locator(INPUT).press("Enter")


def test_chat_reply_streams_and_finishes(page: Page):
    backend = GatedBackend(["Plants catch light... and then they turn it into sugar."], chunk_size=20)
    with running_app(backend) as url:
        page.goto(url)
        send(page, "How do plants eat?")
        expect(page.locator(BOT).last).to_have_text("Plants catch light..")
        expect(page.locator(INPUT)).to_be_disabled()  # still streaming
        backend.gate.set()
        expect(page.locator(BOT).last).to_have_text("Plants catch light... and then they turn it into sugar.")
        expect(page.locator(INPUT)).to_be_enabled()
    assert not page.page_errors


def test_tutor_answer_renders_markdown_and_maths(page: Page):
    with running_app(tutor_backend()) as url:
        page.goto(url)
        send(page, TUTOR_QUESTION)
        expect(page.locator(INPUT)).to_be_enabled()
        reply = page.locator(BOT).last
        expect(reply.locator("strong", has_text="Photosynthesis")).to_be_visible()
        expect(reply.locator("ol li")).to_have_count(3)
        expect(reply.locator(".katex").first).to_be_visible()
        expect(reply).to_contain_text("Quick check: where do you think the oxygen")
        save_screenshot(page, "chat")


def test_stop_ends_the_reply_and_the_generation(page: Page):
    reply = "Let me explain step by step. " * 30 + "THE END"
    backend = PacedBackend([reply], chunk_size=8)
    with running_app(backend) as url:
        page.goto(url)
        send(page, "Explain everything about cells.")
        expect(page.locator(BOT).last).to_contain_text("Let me explain")
        page.locator("#chat-input button.stop-button").click()
        expect(page.locator(INPUT)).to_be_enabled()
        assert backend.stopped_early.wait(10), "the backend kept generating after Stop"
        shown = page.locator(BOT).last.inner_text()
    assert shown.startswith("Let me explain") and "THE END" not in shown


def test_an_example_question_runs_with_the_edited_settings(page: Page):
    backend = ScriptedBackend(default="The Moon is lit by the Sun; we see more or less of its lit half.")
    with running_app(backend) as url:
        page.goto(url)
        page.get_by_text("Settings: system prompt").click()
        page.locator("#chat-system-prompt textarea").fill("You are a brief astronomy tutor.")
        page.locator("#chat-temperature input[type=number]").fill("0")
        page.locator("#chat-temperature input[type=number]").press("Enter")
        page.get_by_text("Why does the Moon have phases?").click()
        expect(page.locator(BOT)).to_have_text(["The Moon is lit by the Sun; we see more or less of its lit half."])
        expect(page.locator(INPUT)).to_be_enabled()
    [(_, [messages], config)] = backend.calls
    assert messages == [{"role": "system", "content": "You are a brief astronomy tutor."},
                        {"role": "user", "content": "Why does the Moon have phases?"}]
    assert config.temperature == 0 and config.max_new_tokens == 512


def test_an_empty_message_is_refused_before_it_reaches_the_chat(page: Page):
    backend = ScriptedBackend(default="unused")
    with running_app(backend) as url:
        page.goto(url)
        page.locator(INPUT).press("Enter")
        expect(page.get_by_text("Type a question first.")).to_be_visible()
        expect(page.locator('#chatbot [data-testid="user"]')).to_have_count(0)
    assert backend.calls == []


def test_clear_starts_a_new_conversation(page: Page):
    backend = ScriptedBackend(default=lambda m: f"Reply to: {m[-1]['content']}")
    with running_app(backend) as url:
        page.goto(url)
        send(page, "First question")
        expect(page.locator(BOT)).to_have_text(["Reply to: First question"])
        expect(page.locator(INPUT)).to_be_enabled()
        page.locator('#chatbot button[aria-label="Clear"]').click()
        expect(page.locator(BOT)).to_have_count(0)
        send(page, "Second question")
        expect(page.locator(BOT)).to_have_text(["Reply to: Second question"])
    *_, (_, [last_conversation], _) = backend.calls
    assert [m["content"] for m in last_conversation[1:]] == ["Second question"]


PAYLOAD = ('<script>window.__xss = "script"</script><img src=x onerror="window.__xss = \'img\'">'
           '<a href="javascript:void(window.__xss=\'link\')">click me</a>\n\n**Done.**')

# Waits until every image in the chat has loaded or failed (so an onerror handler would have run).
SETTLED_XSS_FLAG = """async (selector = '#chatbot img') => {
  const images = Array.from(document.querySelectorAll(selector));
  await Promise.all(images.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener('load', done); img.addEventListener('error', done); })));
  await new Promise(done => setTimeout(done, 0));
  return window.__xss ?? null;
}"""


def test_html_in_messages_is_shown_inert(page: Page):
    with running_app(ScriptedBackend([PAYLOAD])) as url:
        page.goto(url)
        send(page, '<img src=y onerror="window.__xss = \'user\'"> hi')
        expect(page.locator(BOT).last.locator("strong", has_text="Done.")).to_be_visible()
        expect(page.locator(INPUT)).to_be_enabled()
        assert page.evaluate(SETTLED_XSS_FLAG) is None
        page.locator(BOT).last.get_by_text("click me").click()
        assert page.evaluate("window.__xss ?? null") is None
        assert page.locator("#chatbot script").count() == 0
        assert page.locator("#chatbot [onerror]").count() == 0


# -- quiz ---------------------------------------------------------------------------------------

def open_quiz(page: Page, url: str, topic: str = "photosynthesis", difficulty: str = "easy") -> None:
    page.goto(url)
    page.get_by_role("tab", name="Quiz").click()
    page.locator("#quiz-topic :is(input, textarea)").fill(topic)
    page.locator("#quiz-difficulty").get_by_text(difficulty, exact=True).click()
    page.locator("#quiz-generate").click()
    expect(page.locator("#quiz-q9")).to_be_visible()


def question_text(page: Page, i: int) -> str:
    label = page.locator(f'#quiz-q{i} [data-testid="block-info"]').inner_text()
    number, _, question = label.partition(". ")
    assert number == str(i + 1)
    return question


def answer(page: Page, i: int, right: bool = True, key: dict[str, str] = RIGHT_ANSWER) -> str:
    """Pick the right (or a wrong) option of question i; returns the question text."""
    question = question_text(page, i)
    options = page.locator(f"#quiz-q{i} label").all_inner_texts()
    choice = key[question] if right else next(o for o in options if o != key[question])
    page.locator(f"#quiz-q{i}").get_by_label(choice, exact=True).check()
    return question


def test_quiz_generation_shows_progress_until_the_questions_arrive(page: Page):
    backend = tutor_backend()
    gate = threading.Event()
    write = backend.chat_batch

    def held(conversations, config=None):
        assert gate.wait(60), "the test never opened the gate"
        return write(conversations, config)

    backend.chat_batch = held
    with running_app(backend) as url:
        page.goto(url)
        page.get_by_role("tab", name="Quiz").click()
        page.locator("#quiz-topic :is(input, textarea)").fill("photosynthesis")
        page.locator("#quiz-generate").click()
        expect(page.locator("#quiz-status")).to_contain_text("Asking the tutor for questions")
        expect(page.locator("#quiz-q0")).to_be_hidden()
        gate.set()
        expect(page.locator("#quiz-q9")).to_be_visible()
        expect(page.locator("#quiz-status")).not_to_contain_text("Asking the tutor")


def test_quiz_all_right_scores_ten(page: Page):
    backend = tutor_backend()
    with running_app(backend) as url:
        open_quiz(page, url, difficulty="hard")
        expect(page.locator("#quiz-status")).to_contain_text("photosynthesis · hard · 10 questions")
        for i in range(10):
            expect(page.locator(f"#quiz-q{i} label")).to_have_count(4)
            answer(page, i)
        save_screenshot(page, "quiz")
        page.locator("#quiz-submit").click()
        result = page.locator("#quiz-result")
        expect(result).to_contain_text("Score: 10/10")
        expect(result).not_to_contain_text("✗")
        expect(page.locator("#quiz-retry")).to_be_hidden()
        expect(page.locator("#quiz-q0 input").first).to_be_disabled()  # graded answers are locked
        expect(page.locator('#quiz-q0 [data-testid="block-info"]')).to_have_text(re.compile(r"^1\. ✓ "))
    [(kind, conversations, _)] = backend.calls
    assert kind == "chat_batch" and "Difficulty: hard" in conversations[0][-1]["content"]


def test_quiz_mistakes_show_the_right_answers_and_can_be_retried(page: Page):
    with running_app(tutor_backend()) as url:
        open_quiz(page, url)
        wrong = answer(page, 0, right=False)
        skipped = question_text(page, 1)
        for i in range(2, 10):
            answer(page, i)
        page.locator("#quiz-submit").click()
        result = page.locator("#quiz-result")
        expect(result).to_contain_text("Score: 8/10")
        expect(result).to_contain_text("Right answer:")
        expect(result).to_contain_text(RIGHT_ANSWER[wrong])
        expect(result).to_contain_text(EXPLANATION[wrong])
        expect(result).to_contain_text("Your answer: not answered")
        expect(page.locator('#quiz-q0 [data-testid="block-info"]')).to_have_text(f"1. ✗ {wrong}")
        expect(page.locator('#quiz-q2 [data-testid="block-info"]')).to_contain_text("3. ✓ ")
        expect(result).to_contain_text(RIGHT_ANSWER[skipped])
        save_screenshot(page, "quiz-result")

        page.locator("#quiz-retry").click()
        expect(page.locator("#quiz-status")).to_contain_text("Retry of your mistakes")
        expect(page.locator("#quiz-q2")).to_be_hidden()
        assert {question_text(page, 0), question_text(page, 1)} == {wrong, skipped}
        answer(page, 0)
        answer(page, 1)
        page.locator("#quiz-submit").click()
        expect(page.locator("#quiz-result")).to_contain_text("Score: 2/2")
        expect(page.locator("#quiz-retry")).to_be_hidden()

        page.locator("#quiz-new").click()
        expect(page.locator("#quiz-q9")).to_be_visible()
        expect(page.locator("#quiz-result")).to_be_hidden()
        expect(page.locator("#quiz-status")).to_contain_text("Quiz: photosynthesis · easy · 10 questions")


def test_quiz_generation_failure_warns_and_the_tab_stays_usable(page: Page):
    backend = tutor_backend()
    writer = backend.quiz_writer
    failing = {"on": True}
    backend.default = lambda m: "I'm sorry, I can't help with that." if failing["on"] else writer(m)
    with running_app(backend) as url:
        page.goto(url)
        page.get_by_role("tab", name="Quiz").click()
        page.locator("#quiz-generate").click()
        expect(page.get_by_text("topic is empty", exact=False)).to_be_visible()
        page.locator("#quiz-topic :is(input, textarea)").fill("volcanoes")
        page.locator("#quiz-generate").click()
        failure = page.get_by_text("Could not write 10 valid questions about 'volcanoes'", exact=False)
        expect(failure).to_be_visible()
        expect(page.locator("#quiz-q0")).to_be_hidden()
        failing["on"] = False
        page.locator("#quiz-generate").click()
        expect(page.locator("#quiz-q9")).to_be_visible()
        expect(page.locator("#quiz-status")).to_contain_text("Quiz: volcanoes")


def test_html_in_quiz_questions_is_shown_as_text(page: Page):
    img = '<img src=x onerror="window.__xss = \'quiz\'">'
    bank = [(f"{question} {img}", options, key, f"{why} <script>window.__xss = 'why'</script>")
            for question, options, key, why in QUIZ_BANK]
    key = {question: options[right] for question, options, right, _ in bank}
    with running_app(tutor_backend(bank)) as url:
        open_quiz(page, url)
        expect(page.locator('#quiz-q0 [data-testid="block-info"]')).to_contain_text(img)  # shown, not run
        for i in range(10):
            answer(page, i, key=key)
        page.locator("#quiz-submit").click()
        expect(page.locator("#quiz-result")).to_contain_text("Score: 10/10")
        expect(page.locator("#quiz-result")).to_contain_text("<script>window.__xss = 'why'</script>")
        assert page.evaluate(SETTLED_XSS_FLAG, "img") is None
        assert page.locator("#quiz-result script, #quiz-result img").count() == 0

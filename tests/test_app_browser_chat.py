"""The chat tab in a real headless Chromium: streaming, stop, clear, examples, settings, HTML safety.

Run with TUTOR_SCREENSHOTS=1 to (re)write docs/screenshots/chat.png.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from inference.backend import GenerationConfig
from tests.browser import (QUIET_GRADIO, SETTLED_XSS_FLAG, TUTOR_QUESTION, chromium, page,  # noqa: F401
                           running_app, save_screenshot, tutor_backend)
from tests.scripted import ScriptedBackend

pytestmark = [pytest.mark.slow, *QUIET_GRADIO]

INPUT = "#chat-input textarea"
BOT = '#chatbot [data-testid="bot"]'


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
        system = page.locator("#chat-system-prompt textarea")
        # Wait for the component to show its default: a fill before it has mounted is overwritten by it.
        expect(system).to_have_value(re.compile(r"^You are Llama Tutor"))
        system.fill("You are a brief astronomy tutor.")
        system.press("Tab")  # commit the edit (blur) before the example is clicked
        expect(system).to_have_value("You are a brief astronomy tutor.")
        page.locator("#chat-temperature input[type=number]").fill("0")
        page.locator("#chat-temperature input[type=number]").press("Enter")
        expect(page.locator("#chat-temperature input[type=number]")).to_have_value("0")
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

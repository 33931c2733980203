"""The quiz tab in a real headless Chromium: generate, answer, grade, retry, failures, HTML safety.

Run with TUTOR_SCREENSHOTS=1 to (re)write docs/screenshots/quiz.png and quiz-result.png.
"""

from __future__ import annotations

import re
import threading

import pytest
from playwright.sync_api import Page, expect

from tests.browser import (QUIET_GRADIO, QUIZ_BANK, RIGHT_ANSWER, SETTLED_XSS_FLAG, chromium, page,  # noqa: F401
                           running_app, save_screenshot, tutor_backend)

pytestmark = [pytest.mark.slow, *QUIET_GRADIO]

EXPLANATION = {question: explanation for question, _, _, explanation in QUIZ_BANK}


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


def background(locator) -> tuple[int, int, int]:
    """The element's background colour as red, green, blue."""
    text = locator.evaluate("el => getComputedStyle(el).backgroundColor")
    return tuple(int(v) for v in re.findall(r"\d+", text)[:3])  # type: ignore[return-value]


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
        expect(result).to_contain_text("2 to review")
        # Each question shows its result in place: the wrong choice and the right option marked, in
        # words and in colour, the explanation right under the question.
        expect(page.locator('#quiz-q0 [data-testid="block-info"]')).to_have_text(f"1. ✗ {wrong}")
        right_label = page.locator("#quiz-q0 label", has_text="✓ right answer")
        expect(right_label).to_have_text(f"{RIGHT_ANSWER[wrong]} ✓ right answer")
        wrong_label = page.locator("#quiz-q0 label", has_text="✗ your answer")
        expect(wrong_label).to_have_count(1)
        assert wrong_label.inner_text().removesuffix(" ✗ your answer") != RIGHT_ANSWER[wrong]
        red, green, _ = background(right_label)
        assert green > red + 20, "the right option is green"
        red, green, _ = background(wrong_label)
        assert red > green + 20, "the wrong choice is red"
        expect(page.locator("#quiz-explain-0")).to_contain_text(f"Not quite. The answer is")
        expect(page.locator("#quiz-explain-0")).to_contain_text(EXPLANATION[wrong])
        expect(page.locator("#quiz-explain-1")).to_contain_text(f"Not answered. The answer is")
        expect(page.locator("#quiz-explain-1")).to_contain_text(RIGHT_ANSWER[skipped])
        expect(page.locator("#quiz-explain-2")).to_contain_text("Right.")
        expect(page.locator('#quiz-q2 [data-testid="block-info"]')).to_contain_text("3. ✓ ")
        expect(page.locator("#quiz-q1 label", has_text="✗ your answer")).to_have_count(0)
        save_screenshot(page, "quiz-result")

        page.locator("#quiz-retry").click()
        expect(page.locator("#quiz-status")).to_contain_text("Retry of your mistakes")
        expect(page.locator("#quiz-q2")).to_be_hidden()
        expect(page.locator("#quiz-explain-0")).to_be_hidden()
        expect(page.locator("#quiz-q0 label", has_text="✓ right answer")).to_have_count(0)
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
        expect(page.locator("#quiz-explain-0")).to_contain_text("<script>window.__xss = 'why'</script>")
        assert page.evaluate(SETTLED_XSS_FLAG, "img") is None
        assert page.locator(".quiz-explanation script, .quiz-explanation img, #quiz-result script").count() == 0


def test_questions_appear_one_by_one_and_an_early_answer_is_kept(page: Page):
    """On a backend that writes the quiz as streamed JSON, each question shows up as soon as it is
    written; an answer picked while the others are still coming stays picked; Submit comes last."""
    import json

    from tests.scripted import ScriptedBackend

    items = [{"question": q, "options": options, "answer": "ABCD"[right], "explanation": why}
             for q, options, right, why in QUIZ_BANK]
    gates = [threading.Event() for _ in items]

    class Writer(ScriptedBackend):
        def stream_chat(self, messages, config=None):
            self.calls.append(("stream_chat", [messages], config))
            yield '{"questions":['
            for i, item in enumerate(items):
                assert gates[i].wait(60), "the test never opened the gate"
                yield ("," if i else "") + json.dumps(item)
            yield "]}"

    with running_app(Writer(json_schema=True)) as url:
        page.goto(url)
        page.get_by_role("tab", name="Quiz").click()
        page.locator("#quiz-topic :is(input, textarea)").fill("photosynthesis")
        page.locator("#quiz-generate").click()
        gates[0].set()
        expect(page.locator("#quiz-q0")).to_be_visible()
        expect(page.locator("#quiz-q1")).to_be_hidden()
        expect(page.locator("#quiz-submit")).to_be_hidden()
        expect(page.locator("#quiz-status")).to_contain_text("Question 1 of 10 is ready")
        first = answer(page, 0)
        for gate in gates[1:]:
            gate.set()
        expect(page.locator("#quiz-submit")).to_be_visible()
        for i in range(10):
            expect(page.locator(f"#quiz-q{i}")).to_be_visible()
        expect(page.locator("#quiz-q0").get_by_label(RIGHT_ANSWER[first], exact=True)).to_be_checked()
        for i in range(1, 10):
            answer(page, i)
        page.locator("#quiz-submit").click()
        expect(page.locator("#quiz-result")).to_contain_text("Score: 10/10")

"""The app over the llama.cpp backend (a tiny Llama 3 GGUF): chat and quiz through gradio_client and a
real browser, and `python app.py` started the way a CPU Space starts it, without torch installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from gradio_client import Client

from inference import GenerationConfig, load_backend
from inference.prompts import with_system_prompt
from tests.browser import QUIET_GRADIO, chromium, free_port, page, running_app  # noqa: F401

pytestmark = [pytest.mark.slow, *QUIET_GRADIO]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def backend(tiny_gguf):
    llamacpp = load_backend("llamacpp", gguf=str(tiny_gguf["f16"]), warmup=False)
    yield llamacpp
    llamacpp.close()


def test_chat_and_quiz_through_the_api(backend):
    question = "What is photosynthesis?"
    expected = backend.chat_batch([with_system_prompt([{"role": "user", "content": question}], "Be brief.")],
                                  GenerationConfig(max_new_tokens=32, temperature=0))[0]
    with running_app(backend) as url:
        client = Client(url, verbose=False)
        assert client.predict(question, "Be brief.", 0.0, 32, api_name="/chat") == expected
        quiz = client.predict("cells", "easy", api_name="/generate_quiz")
        assert len(quiz["questions"]) == 10 and all(len(q["options"]) == 4 for q in quiz["questions"])
        result = client.predict([0] * 10, api_name="/grade_quiz")
    assert result["total"] == 10 and 0 <= result["score"] <= 10
    assert all(f["explanation"] for f in result["feedback"])  # the schema makes the model write one


def test_chat_and_quiz_in_the_browser(backend, page):
    from playwright.sync_api import expect

    with running_app(backend) as url:
        page.goto(url)
        page.locator("#chat-input textarea").fill("What is a cell?")
        page.locator("#chat-input textarea").press("Enter")
        expect(page.locator('#chatbot [data-testid="bot"]').last).to_be_visible()
        expect(page.locator("#chat-input textarea")).to_be_enabled(timeout=120_000)
        page.get_by_role("tab", name="Quiz").click()
        page.locator("#quiz-topic :is(input, textarea)").fill("cells")
        page.locator("#quiz-generate").click()
        expect(page.locator("#quiz-q0")).to_be_visible(timeout=120_000)
        expect(page.locator("#quiz-submit")).to_be_visible(timeout=300_000)
        for i in range(10):
            page.locator(f"#quiz-q{i} label").first.click()
        page.locator("#quiz-submit").click()
        expect(page.locator("#quiz-result")).to_contain_text("Score: ")


def test_the_cpu_space_stack_serves_without_torch(tiny_gguf):
    """A CPU Space installs neither torch nor transformers: the app must start and answer without them."""
    port = free_port()
    code = ("import sys; sys.modules.update(torch=None, transformers=None, peft=None); import app; "
            f"sys.exit(app.main(['--backend', 'llamacpp', '--gguf', {str(tiny_gguf['f16'])!r}, '--port', '{port}']))")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        output = ""
        for line in proc.stdout:  # bounded by the server printing its URL or exiting
            output += line
            if "Running on local URL:" in line:
                break
        assert proc.poll() is None, output
        reply = Client(f"http://127.0.0.1:{port}", verbose=False).predict("Hi", None, 0.0, 32, api_name="/chat")
        assert reply.strip()
        assert "llamacpp (" in output  # the description logged at start
    finally:
        proc.terminate()
        proc.wait(timeout=30)

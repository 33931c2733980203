"""The app's building blocks without a server: element ids, message normalising, answer parsing, imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import app
from inference.prompts import SYSTEM_PROMPT
from quiz import Question, Quiz, grade
from tests.scripted import ScriptedBackend
from ui.chat import build_messages, make_chat_fn
from ui.quiz_actions import QuizSession
from ui.quiz_view import answer_index, public_quiz

ROOT = Path(__file__).resolve().parent.parent
STABLE_IDS = {"chat-input", "chatbot", "quiz-topic", "quiz-difficulty", "quiz-generate", "quiz-submit",
              "quiz-result", *(f"quiz-q{i}" for i in range(10))}


def _session() -> QuizSession:
    questions = [Question("What is 2 + 2?", ["3", "4", "5", "22"], 1, "Two plus two is four."),
                 Question("Which planet is red?", ["Venus", "Mars", "Earth", "Jupiter"], 1, None)]
    return QuizSession(Quiz("arithmetic and planets", "easy", questions, seed=7))


def test_the_demo_has_every_stable_element_id():
    config = app.build_demo(ScriptedBackend()).config
    ids = {c["props"].get("elem_id") for c in config["components"]}
    assert STABLE_IDS <= ids
    radios = {c["props"]["elem_id"]: c for c in config["components"] if c["type"] == "radio"}
    assert [label for label, _ in radios["quiz-difficulty"]["props"]["choices"]] == ["easy", "medium", "hard"]
    assert all(radios[f"quiz-q{i}"]["props"]["type"] == "index" for i in range(10))
    chatbot = next(c for c in config["components"] if c["props"].get("elem_id") == "chatbot")
    assert chatbot["props"]["sanitize_html"] is True and chatbot["props"]["render_markdown"] is True


def test_gradio_block_history_becomes_plain_text_with_the_system_prompt_first():
    history = [{"role": "user", "content": [{"type": "text", "text": "What is a prime?"}]},
               {"role": "assistant", "content": [{"type": "text", "text": "A number with two divisors."}],
                "metadata": None, "options": None},
               {"role": "system", "content": "an old system message"}]
    assert build_messages("Is 1 prime?", history, SYSTEM_PROMPT) == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "What is a prime?"},
        {"role": "assistant", "content": "A number with two divisors."},
        {"role": "user", "content": "Is 1 prime?"}]
    assert build_messages("Hi", [], "  ")[0] == {"role": "user", "content": "Hi"}  # empty prompt = none


def test_an_empty_model_reply_is_explained_not_shown_as_a_blank():
    chat = make_chat_fn(ScriptedBackend([""]))
    assert list(chat("Hello", [], SYSTEM_PROMPT, 0.7, 64)) == [
        "*(The model returned an empty reply — try rephrasing, or raise the temperature.)*"]


def test_api_answers_may_be_indices_option_texts_or_letters():
    session = _session()
    given = (1, "4", " 4 ", "b", "B", None, "")
    assert [answer_index(session, 0, a) for a in given] == [1, 1, 1, 1, 1, None, None]
    assert answer_index(session, 1, "mars") == 1
    with pytest.raises(ValueError, match=r"answer 2 \('Pluto'\) is neither an option of question 2 nor a letter"):
        answer_index(session, 1, "Pluto")


def test_the_public_quiz_hides_the_key():
    quiz = public_quiz(_session())
    assert quiz["questions"][0] == {"question": "What is 2 + 2?", "options": ["3", "4", "5", "22"]}
    assert "answer" not in str(quiz) and "explanation" not in str(quiz)


def test_grading_feedback_uses_the_quiz_package():
    result = grade(_session().quiz, [1, 0])
    assert result.to_markdown().startswith("### Score: 1/2 (50%)")


def test_importing_the_app_loads_no_torch():
    code = "import sys, app, ui; sys.exit(1 if 'torch' in sys.modules else 0)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr or "app imported torch"


@pytest.mark.slow
def test_a_long_block_format_history_is_cut_to_the_context_window(tiny_model_dir):
    from inference import load_backend

    backend = load_backend(base_model=str(tiny_model_dir), device="cpu", max_context_tokens=256, warmup=False)
    prompts: list[str] = []
    prompt_ids = backend.prompt_ids

    def recording_prompt_ids(messages: list[dict], max_new_tokens: int) -> list[int]:
        ids = prompt_ids(messages, max_new_tokens)
        prompts.append(backend.tokenizer.decode(ids))
        return ids

    backend.prompt_ids = recording_prompt_ids
    history = [{"role": role, "content": [{"type": "text", "text": f"turn {i}: " + "the cell membrane " * 40}]}
               for i in range(30) for role in ("user", "assistant")]
    chat = make_chat_fn(backend)
    replies = list(chat("What is osmosis?", history, "You are a tutor.", 0.0, 16))
    assert replies and replies[-1]
    (prompt,) = prompts
    assert len(backend.tokenizer(prompt, add_special_tokens=False).input_ids) <= 256 - 16
    assert "You are a tutor." in prompt and "What is osmosis?" in prompt and "turn 0:" not in prompt

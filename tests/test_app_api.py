"""The app's API through gradio_client, against the real app launched in-process with a scripted model."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client

from inference.backend import BackendError
from inference.prompts import SYSTEM_PROMPT
from tests.browser import QUIET_GRADIO, QUIZ_BANK, RIGHT_ANSWER, running_app, tutor_backend
from tests.scripted import ScriptedBackend

pytestmark = QUIET_GRADIO


def echo(messages: list[dict]) -> str:
    return f"You asked: {messages[-1]['content']}"


def chat_calls(backend: ScriptedBackend) -> list[list[dict]]:
    return [conversations[0] for kind, conversations, _ in backend.calls if kind == "stream_chat"]


def test_chat_streams_the_reply_with_the_tutor_prompt_first():
    reply = "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen."
    backend = ScriptedBackend([reply], chunk_size=5)
    with running_app(backend) as url:
        job = Client(url, verbose=False).submit("What is photosynthesis?", api_name="/chat")
        updates = list(job)
        final = job.result()
    assert final == reply
    assert len(updates) > 1, "the reply arrived in one piece instead of streaming"
    assert all(reply.startswith(u) for u in updates)
    (messages,) = chat_calls(backend)
    assert messages == [{"role": "system", "content": SYSTEM_PROMPT},
                        {"role": "user", "content": "What is photosynthesis?"}]


def test_chat_settings_reach_the_backend():
    backend = ScriptedBackend(default=echo)
    with running_app(backend) as url:
        answer = Client(url, verbose=False).predict("Define a prime.", "Answer in one sentence.", 0.2, 96,
                                                    api_name="/chat")
    assert answer == "You asked: Define a prime."
    kind, [messages], config = backend.calls[0]
    assert messages[0] == {"role": "system", "content": "Answer in one sentence."}
    assert (config.temperature, config.max_new_tokens) == (0.2, 96)


def test_each_client_session_has_its_own_history():
    backend = ScriptedBackend(default=echo)
    with running_app(backend) as url:
        alice, bob = Client(url, verbose=False), Client(url, verbose=False)
        alice.predict("My name is Alice.", api_name="/chat")
        bob.predict("My name is Bob.", api_name="/chat")
        alice.predict("What is my name?", api_name="/chat")
    first_alice, first_bob, second_alice = chat_calls(backend)
    assert [m["content"] for m in second_alice[1:]] == [
        "My name is Alice.", "You asked: My name is Alice.", "What is my name?"]
    assert [m["content"] for m in first_bob[1:]] == ["My name is Bob."]
    assert not any("Bob" in m["content"] for m in second_alice)


def test_twenty_concurrent_clients_each_get_their_own_reply():
    backend = ScriptedBackend(default=echo, chunk_size=3)
    with running_app(backend) as url:
        def ask(i: int) -> str:
            return Client(url, verbose=False).predict(f"marker-{i}: what is {i} squared?", api_name="/chat")

        with ThreadPoolExecutor(max_workers=20) as pool:
            replies = list(pool.map(ask, range(20)))
    assert replies == [f"You asked: marker-{i}: what is {i} squared?" for i in range(20)]
    calls = chat_calls(backend)
    assert len(calls) == 20
    # Every conversation the model saw holds exactly one user message: no history crossed over.
    assert sorted(len(c) for c in calls) == [2] * 20


def test_chat_errors_reach_the_client_as_one_clear_message():
    def broken(messages: list[dict]) -> str:
        raise BackendError("CUDA out of memory while generating; lower --max-new-tokens.")

    with running_app(ScriptedBackend(default=broken)) as url:
        client = Client(url, verbose=False)
        with pytest.raises(Exception, match="CUDA out of memory while generating"):
            client.predict("Hello?", api_name="/chat")
        with pytest.raises(Exception, match="Type a question first"):
            client.predict("   ", api_name="/chat")


def test_quiz_generate_grade_and_retry_through_the_api():
    backend = tutor_backend()
    with running_app(backend) as url:
        client = Client(url, verbose=False)
        quiz = client.predict("photosynthesis", "hard", api_name="/generate_quiz")
        questions = quiz["questions"]
        answers: list[object] = [RIGHT_ANSWER[q["question"]] for q in questions]
        wrong = next(o for o in questions[2]["options"] if o != answers[2])
        answers[2] = questions[2]["options"].index(wrong)  # an index instead of the option text
        answers[5] = None
        result = client.predict(answers, api_name="/grade_quiz")
        retry = client.predict(api_name="/retry_mistakes")
    assert (quiz["topic"], quiz["difficulty"], len(questions)) == ("photosynthesis", "hard", 10)
    assert all(len(q["options"]) == 4 for q in questions)
    assert "answer" not in questions[0]  # the key stays on the server
    assert (result["score"], result["total"]) == (8, 10)
    assert result["markdown"].startswith("### Score: 8/10")
    wrong_feedback = result["feedback"][2]
    assert wrong_feedback["status"] == "incorrect"
    assert wrong_feedback["correct_text"] == RIGHT_ANSWER[questions[2]["question"]]
    assert wrong_feedback["explanation"] in {explanation for *_, explanation in QUIZ_BANK}
    assert result["feedback"][5]["status"] == "unanswered"
    assert [q["question"] for q in retry["questions"]] == [questions[2]["question"], questions[5]["question"]]
    assert retry["retry"] is True
    assert [kind for kind, *_ in backend.calls] == ["chat_batch"]  # one batched request for 10 questions


def test_every_client_gets_its_own_fresh_quiz():
    backend = tutor_backend()
    with running_app(backend) as url:
        first, second = Client(url, verbose=False), Client(url, verbose=False)
        quiz_a = first.predict("photosynthesis", "easy", api_name="/generate_quiz")
        quiz_b = second.predict("the water cycle", "medium", api_name="/generate_quiz")
        # Grading the first client's quiz uses its own questions, not the newer quiz of the second.
        answers = [RIGHT_ANSWER[q["question"]] for q in quiz_a["questions"]]
        result = first.predict(answers, api_name="/grade_quiz")
        quiz_a2 = first.predict("photosynthesis", "easy", api_name="/generate_quiz")
    assert (quiz_a["topic"], quiz_b["topic"]) == ("photosynthesis", "the water cycle")
    assert result["score"] == 10
    assert quiz_a2["questions"] != quiz_a["questions"]
    assert backend.quiz_writer.topics.count("the water cycle") == 4  # 10 questions asked for in 4 chunks


def test_quiz_api_errors_say_what_to_do():
    with running_app(tutor_backend()) as url:
        client = Client(url, verbose=False)
        with pytest.raises(Exception, match="call /generate_quiz or /join_quiz first"):
            client.predict([0] * 10, api_name="/grade_quiz")
        with pytest.raises(Exception, match="topic is empty"):
            client.predict("  ", "easy", api_name="/generate_quiz")
        with pytest.raises(Exception, match="impossible.*not in the list of choices.*easy.*medium.*hard"):
            client.predict("photosynthesis", "impossible", api_name="/generate_quiz")
        client.predict("photosynthesis", "easy", api_name="/generate_quiz")
        with pytest.raises(Exception, match="one entry per question"):
            client.predict([0, 1], api_name="/grade_quiz")
        with pytest.raises(Exception, match="neither an option of question 1 nor a letter"):
            client.predict(["Photosynthesis is great"] + [None] * 9, api_name="/grade_quiz")


def test_quiz_generation_failure_is_reported():
    backend = ScriptedBackend(default="Sorry, I cannot write quizzes today.")
    with running_app(backend) as url:
        with pytest.raises(Exception, match="Could not write 10 valid questions about 'volcanoes'"):
            Client(url, verbose=False).predict("volcanoes", "easy", api_name="/generate_quiz")


def test_the_client_snippet_in_the_docs_runs(capsys):
    import re
    from pathlib import Path

    docs = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    snippet = next(block for block in re.findall(r"```python\n(.*?)```", docs, re.DOTALL)
                   if "gradio_client" in block)
    backend = tutor_backend()
    with running_app(backend) as url:
        exec(compile(snippet.replace("http://127.0.0.1:7860/", url), "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "Photosynthesis" in printed  # the streamed chat reply
    assert re.search(r"^\d+/10$", printed, re.MULTILINE)  # the score line
    assert "### Score:" in printed
    assert [kind for kind, *_ in backend.calls].count("stream_chat") == 3

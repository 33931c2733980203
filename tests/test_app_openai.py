"""The app over the OpenAI-compatible backend, a real ``python -m llama_cpp.server`` behind it: 20 students at
once through gradio_client each get their own conversation, and a server that dies mid-reply is a message
in the chat while the app keeps serving, and answers again once the server is back."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from inference import load_backend
from tests.browser import QUIET_GRADIO, running_app
from tests.test_inference_openai import LlamaServer

pytestmark = [pytest.mark.slow, *QUIET_GRADIO]
STUDENTS = 20
SETTINGS = ("Be brief.", 0.0, 32)  # system prompt, temperature (greedy), max new tokens


@pytest.fixture(scope="module")
def server(tiny_gguf, tmp_path_factory):
    pytest.importorskip("sse_starlette", reason="llama-cpp-python's server extras are missing (requirements-dev.txt)")
    running = LlamaServer(tiny_gguf["f16"], tmp_path_factory.mktemp("app-server") / "server.log").start()
    yield running
    running.stop()


def conversation(url: str, student: int) -> tuple[list[str], float]:
    """Two turns of one student in their own session; the replies and the seconds it took."""
    client = Client(url, verbose=False)
    start = time.perf_counter()
    replies = [client.predict(f"I am student {student}. What is a cell?", *SETTINGS, api_name="/chat"),
               client.predict(f"Student {student} again: and a tissue?", *SETTINGS, api_name="/chat")]
    return replies, time.perf_counter() - start


class InFlight:
    """The backend, counting the replies it is streaming at the same moment."""

    def __init__(self, backend) -> None:
        self.backend, self.now, self.peak, self.lock = backend, 0, 0, threading.Lock()

    def __getattr__(self, name: str):
        return getattr(self.backend, name)

    def stream_chat(self, messages, config):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            yield from self.backend.stream_chat(messages, config)
        finally:
            with self.lock:
                self.now -= 1


def test_twenty_students_at_once_each_get_their_own_conversation(server):
    backend = InFlight(load_backend("openai", base_url=server.url, max_retries=0))
    with running_app(backend) as url:  # --concurrency default for a server: 16 at once
        alone = {s: conversation(url, s) for s in range(STUDENTS)}
        start = time.perf_counter()
        with ThreadPoolExecutor(STUDENTS) as pool:
            together = dict(zip(range(STUDENTS), pool.map(lambda s: conversation(url, s), range(STUDENTS))))
        wall = time.perf_counter() - start
    backend.close()
    for student in range(STUDENTS):
        # Greedy: the same two replies as alone, so no turn went to another student's conversation, and the
        # second turn was answered with this student's own first turn as history.
        assert together[student][0] == alone[student][0], f"student {student} got someone else's replies"
    assert len({replies[0] for replies, _ in alone.values()}) > 1  # the students' replies do differ
    # The app hands the turns to the server together rather than queueing them itself. llama_cpp.server then
    # answers one request at a time (it has no batching), so what overlaps here is the app's own share of
    # each turn; a batching server (vLLM, SGLang) overlaps the generation too: bench/concurrent_chat.py.
    assert backend.peak >= 10, f"at most {backend.peak} replies were in flight at once"
    one = sum(seconds for _, seconds in alone.values()) / STUDENTS
    # The server's one-at-a-time answering bounds the wall time: together is no slower than one after another.
    assert wall < STUDENTS * one, f"{STUDENTS} together took {wall:.1f} s; one alone {one:.2f} s"


def test_a_server_that_dies_mid_reply_is_a_message_and_the_app_keeps_serving(server):
    backend = load_backend("openai", base_url=server.url, max_retries=0, timeout=10)
    with running_app(backend) as url:
        student, other = Client(url, verbose=False), Client(url, verbose=False)
        job = student.submit("Write a long story about cells.", "Be long.", 0.0, 2048, api_name="/chat")
        pieces = iter(job)
        first = next(pieces)  # the reply is streaming
        assert first
        server.kill()
        with pytest.raises(AppError, match=r"lost the connection to the model server at http://127\.0\.0\.1:\d+/v1 "
                                           r"in the middle of the reply"):
            job.result()
        with pytest.raises(AppError, match=r"cannot reach the model server at http://127\.0\.0\.1:\d+/v1"):
            other.predict("Are you there?", *SETTINGS, api_name="/chat")
        server.start()  # back on the same port
        assert other.predict("Are you back?", *SETTINGS, api_name="/chat").strip()
        assert student.predict("And now?", *SETTINGS, api_name="/chat").strip()
    backend.close()

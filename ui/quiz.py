"""The Quiz tab: ten model-written questions on a topic, graded with feedback, mistakes retried.

Each browser session (and each API client) keeps its own quiz in a ``gr.State``; every "Generate"
writes a new quiz with a fresh seed. API endpoints: /generate_quiz, /grade_quiz, /retry_mistakes.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr
import spaces

from inference.backend import Backend, BackendError
from quiz import Question, QuizGenerationError, generate_quiz, grade, retry_quiz
from ui.guard import MAX_TOPIC_CHARS, user_error
from ui.quiz_view import (DIFFICULTIES, N_QUESTIONS, QuizSession, answer_index, graded_updates,
                          public_quiz, public_result, question_update, question_updates, status_markdown)

logger = logging.getLogger(__name__)

# ZeroGPU books the GPU this long per quiz: ten questions in four batched requests, plus retries.
QUIZ_GPU_SECONDS = 120
USER_ERRORS = (ValueError, QuizGenerationError, BackendError)
START_HINT = "Choose a topic and a difficulty, then press **Generate quiz**."
ASKING = "Asking the tutor for questions…"


@dataclass
class QuizTab:
    """The tab's components. ``outputs`` is the order every UI handler returns its updates in."""

    topic: gr.Textbox
    difficulty: gr.Radio
    generate: gr.Button
    status: gr.Markdown
    questions: list[gr.Radio]
    submit: gr.Button
    result: gr.Markdown
    retry: gr.Button
    new: gr.Button
    state: gr.State

    @property
    def outputs(self) -> list[Any]:
        return [self.state, self.status, *self.questions, self.submit, self.result, self.retry, self.new]


def _message(exc: Exception) -> str:
    text = str(exc)
    return text[:1].upper() + text[1:]


def write_quiz(backend: Backend, topic: str, difficulty: str, progress: gr.Progress | None = None,
               on_question: Callable[[int, Question], None] | None = None) -> QuizSession:
    """A fresh quiz for one user; raises one of ``USER_ERRORS`` with a message worth showing."""
    if progress is not None:
        progress(0, desc=ASKING)
    on_progress = None if progress is None else (
        lambda done, n: progress((done, n), desc="Questions written", unit="questions"))
    quiz = generate_quiz(backend, topic or "", n=N_QUESTIONS, difficulty=difficulty or "",
                         on_progress=on_progress, on_question=on_question)
    return QuizSession(quiz)


def stream_quiz(backend: Backend, topic: str, difficulty: str) -> Iterator[tuple[int, Question] | QuizSession]:
    """Write a quiz on a worker thread; yield each ``(index, question)`` as it is accepted, then the session.

    Raises what ``write_quiz`` raises, after the questions that arrived before the failure.
    """
    arrived: queue.SimpleQueue = queue.SimpleQueue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["session"] = write_quiz(backend, topic, difficulty, on_question=lambda i, q: arrived.put((i, q)))
        except BaseException as exc:  # handed to the reader below
            outcome["error"] = exc
        finally:
            arrived.put(None)

    threading.Thread(target=work, name="quiz-writer", daemon=True).start()
    while (item := arrived.get()) is not None:
        yield item
    if "error" in outcome:
        raise outcome["error"]
    yield outcome["session"]


def _layout() -> QuizTab:
    with gr.Row(equal_height=True):
        topic = gr.Textbox(label="Topic", elem_id="quiz-topic", scale=3, max_lines=1, max_length=MAX_TOPIC_CHARS,
                           placeholder="e.g. photosynthesis, the French Revolution, Python lists")
        difficulty = gr.Radio(list(DIFFICULTIES), value="medium", label="Difficulty", elem_id="quiz-difficulty",
                              scale=2)
    generate = gr.Button("Generate quiz", variant="primary", elem_id="quiz-generate")
    status = gr.Markdown(START_HINT, elem_id="quiz-status")
    questions = [gr.Radio([], type="index", visible=False, elem_id=f"quiz-q{i}", elem_classes="quiz-question")
                 for i in range(N_QUESTIONS)]
    submit = gr.Button("Submit answers", variant="primary", visible=False, elem_id="quiz-submit")
    result = gr.Markdown(visible=False, elem_id="quiz-result", sanitize_html=True)
    with gr.Row():
        retry = gr.Button("Retry mistakes", visible=False, elem_id="quiz-retry")
        new = gr.Button("New quiz", variant="primary", visible=False, elem_id="quiz-new")
    return QuizTab(topic, difficulty, generate, status, questions, submit, result, retry, new, gr.State(None))


def _show(session: QuizSession) -> list[Any]:
    return [session, status_markdown(session), *question_updates(session), gr.update(visible=True),
            gr.update(value="", visible=False), gr.update(visible=False), gr.update(visible=False)]


def _skip_all(tab: QuizTab) -> list[Any]:
    return [gr.skip() for _ in tab.outputs]


def _ui_handlers(tab: QuizTab, backend: Backend) -> dict[str, Callable[..., Any]]:
    @spaces.GPU(duration=QUIZ_GPU_SECONDS)
    def generate(topic: str, difficulty: str) -> Iterator[list[Any]]:
        """Questions appear one by one as the model writes them; Submit once all are there."""
        hidden = [gr.update(visible=False, value=None) for _ in tab.questions]
        yield [None, ASKING, *hidden, *(gr.update(visible=False) for _ in range(4))]
        arrived: list[Question] = []

        def shown() -> list[Any]:
            # Every update repeats all questions so far without their value: an update the page missed
            # is made good by the next one, and what the student already picked stays picked.
            return [question_update(i, q, keep_answer=True) if i < len(arrived) else gr.skip()
                    for i, q in enumerate(arrived + [None] * (N_QUESTIONS - len(arrived)))]

        try:
            for item in stream_quiz(backend, topic, difficulty):
                if isinstance(item, QuizSession):
                    yield [item, status_markdown(item), *shown(), gr.update(visible=True),
                           gr.update(value="", visible=False), gr.update(visible=False), gr.update(visible=False)]
                else:
                    arrived.append(item[1])
                    status = (f"Question {len(arrived)} of {N_QUESTIONS} is ready: answer while the others are "
                              "written…")
                    yield [gr.skip(), status, *shown(), *(gr.skip() for _ in range(4))]
        except USER_ERRORS as exc:
            logger.warning("quiz generation failed: %s", exc)
            gr.Warning(f"No quiz this time. {_message(exc)}", title="Quiz generation failed")
            yield [None, START_HINT, *hidden, *(gr.update(visible=False) for _ in range(4))]

    def submit(session: QuizSession | None, *answers: int | None) -> list[Any]:
        if session is None:
            gr.Warning("Generate a quiz first.")
            return _skip_all(tab)
        result = grade(session.quiz, list(answers[: len(session.quiz)]))
        graded = QuizSession(session.quiz, result, session.retry)
        return [graded, gr.skip(), *graded_updates(graded), gr.update(visible=False),
                gr.update(value=result.to_markdown(), visible=True), gr.update(visible=bool(result.mistakes)),
                gr.update(visible=True)]

    def retry(session: QuizSession | None) -> list[Any]:
        if session is None or session.result is None:
            gr.Warning("Submit your answers first.")
            return _skip_all(tab)
        if not session.result.mistakes:
            gr.Info("Nothing to retry: every answer was right.")
            return _skip_all(tab)
        return _show(QuizSession(retry_quiz(session.quiz, session.result), retry=True))

    return {"generate": generate, "submit": submit, "retry": retry}


def _wire_ui(tab: QuizTab, backend: Backend) -> None:
    handlers = _ui_handlers(tab, backend)
    gr.on([tab.generate.click, tab.topic.submit, tab.new.click], handlers["generate"],
          [tab.topic, tab.difficulty], tab.outputs, api_visibility="private", concurrency_limit=1,
          show_progress="minimal", show_progress_on=[tab.status])
    tab.submit.click(handlers["submit"], [tab.state, *tab.questions], tab.outputs, api_visibility="private",
                     show_progress="hidden")
    tab.retry.click(handlers["retry"], [tab.state], tab.outputs, api_visibility="private", show_progress="hidden")


def _api_handlers(backend: Backend) -> dict[str, Callable[..., tuple[QuizSession, dict]]]:
    @spaces.GPU(duration=QUIZ_GPU_SECONDS)
    def generate_quiz_api(topic: str, difficulty: str = "medium",
                          progress: gr.Progress = gr.Progress()) -> tuple[QuizSession, dict]:
        """Write a new 10-question quiz on `topic` (easy/medium/hard) for this session; returns the
        questions and options (not the key)."""
        try:
            session = write_quiz(backend, topic, difficulty, progress)
        except USER_ERRORS as exc:
            raise user_error(_message(exc)) from None
        return session, public_quiz(session)

    def grade_quiz_api(session: QuizSession | None, answers: list | None) -> tuple[QuizSession, dict]:
        """Grade this session's quiz. `answers`: one entry per question, each a 0-based option index,
        the option text or its letter, or null for unanswered."""
        if session is None:
            raise user_error("No quiz in this session yet: call /generate_quiz first (with the same client).")
        if not isinstance(answers, list) or len(answers) != len(session.quiz):
            shown = repr(answers) if len(repr(answers)) <= 60 else repr(answers)[:57] + "..."
            raise user_error(f"answers must be a list with one entry per question ({len(session.quiz)}), "
                             f"got {shown}")
        try:
            result = grade(session.quiz, [answer_index(session, i, a) for i, a in enumerate(answers)])
        except ValueError as exc:
            raise user_error(_message(exc)) from None
        return QuizSession(session.quiz, result, session.retry), public_result(result)

    def retry_mistakes_api(session: QuizSession | None) -> tuple[QuizSession, dict]:
        """Replace this session's graded quiz by one of its wrong or unanswered questions, reshuffled."""
        if session is None or session.result is None:
            raise user_error("Nothing graded in this session yet: call /grade_quiz first.")
        if not session.result.mistakes:
            raise user_error("Nothing to retry: every answer was right.")
        retried = QuizSession(retry_quiz(session.quiz, session.result), retry=True)
        return retried, public_quiz(retried)

    return {"generate_quiz": generate_quiz_api, "grade_quiz": grade_quiz_api, "retry_mistakes": retry_mistakes_api}


def _wire_api(tab: QuizTab, backend: Backend) -> None:
    """Endpoints with plain JSON in and out for gradio_client, on hidden triggers (as ChatInterface does).

    They share the session's quiz state with nothing else: an API client has its own session.
    """
    handlers = _api_handlers(backend)
    # The label names the value in refusals ("'answers' must be ..."), as the other inputs' labels do.
    answers = gr.JSON(visible=False, label="answers")
    quiz_json, result_json = gr.JSON(visible=False), gr.JSON(visible=False)
    triggers = {name: gr.Button(visible=False) for name in handlers}
    triggers["generate_quiz"].click(
        handlers["generate_quiz"], [tab.topic, tab.difficulty], [tab.state, quiz_json], api_name="generate_quiz",
        concurrency_limit=1, show_progress="hidden")
    triggers["grade_quiz"].click(handlers["grade_quiz"], [tab.state, answers], [tab.state, result_json],
                                 api_name="grade_quiz", show_progress="hidden")
    triggers["retry_mistakes"].click(handlers["retry_mistakes"], [tab.state], [tab.state, quiz_json],
                                     api_name="retry_mistakes", show_progress="hidden")


def build_quiz_tab(backend: Backend, data_dir: str | os.PathLike[str] | None = None) -> QuizTab:
    """Render the quiz tab inside the current Blocks context and wire its events and API endpoints."""
    tab = _layout()
    _wire_ui(tab, backend)
    _wire_api(tab, backend)
    return tab

"""The Quiz tab: ten model-written questions on a topic or on the user's own material, graded in place,
shared with a class, downloaded, and remembered in the browser.

Each browser session (and each API client) keeps its own quiz in a ``gr.State``. Every action is one
function of ``ui/quiz_actions.py``; the page's handlers and the API endpoints below only turn its result
into component updates or JSON. API endpoints: /generate_quiz, /grade_quiz, /retry_mistakes,
/share_quiz, /join_quiz, /class_results, /export_quiz.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import spaces

from inference.backend import Backend, BackendError
from quiz import Question, QuizGenerationError
from quiz.material import MAX_MATERIAL_CHARS
from ui import quiz_actions as actions
from ui.guard import MAX_TOPIC_CHARS, user_error
from ui.quiz_actions import DIFFICULTIES, N_QUESTIONS, Classroom, QuizSession
from quiz.grade import escape
from ui.quiz_view import (answer_index, class_results_markdown, explanation_updates, graded_updates, key_updates,
                          progress_markdown, public_quiz, public_result, question_update, question_updates,
                          score_markdown, share_markdown, status_markdown)

logger = logging.getLogger(__name__)

# ZeroGPU books the GPU this long per quiz: ten questions in four batched requests, plus retries.
QUIZ_GPU_SECONDS = 120
USER_ERRORS = (ValueError, LookupError, PermissionError, QuizGenerationError, BackendError)
START_HINT = ("Choose a topic (or add your own material) and a difficulty, then press **Generate quiz** — "
              "or join your class's quiz with its code.")
ASKING = "Asking the tutor for questions…"
LANGUAGES = ("auto", "English", "French", "German", "Spanish", "Italian", "Portuguese", "Dutch", "Polish",
             "Swedish", "Turkish", "Chinese", "Japanese", "Hindi", "Arabic")
EXPORT_LABELS = {"Printable page (.html)": "html", "JSON": "json", "CSV (Excel)": "csv", "Moodle GIFT": "gift"}
# The progress lives in the browser (localStorage). It holds a student's own scores and missed questions,
# nothing secret, so a fixed key lets it survive app restarts rather than protecting it.
PROGRESS_KEY = "llama-tutor-progress"
PROGRESS_SECRET = "llama-tutor-progress-v1"


@dataclass
class QuizTab:
    """The tab's components. ``outputs`` is the order the handlers that show a quiz return updates in."""

    topic: gr.Textbox
    difficulty: gr.Radio
    language: gr.Dropdown
    files: gr.File
    notes: gr.Textbox
    generate: gr.Button
    join_box: gr.Accordion
    code: gr.Textbox
    name: gr.Textbox
    join: gr.Button
    status: gr.Markdown
    questions: list[gr.Radio]
    explanations: list[gr.Markdown]
    submit: gr.Button
    result: gr.Markdown
    retry: gr.Button
    new: gr.Button
    share: gr.Button
    share_info: gr.Markdown
    export_format: gr.Dropdown
    export: gr.Button
    download: gr.File
    progress: gr.Markdown
    review: gr.Button
    teacher: gr.Column
    class_results: gr.Markdown
    refresh: gr.Button
    state: gr.State
    history: gr.BrowserState
    on_load: Callable[..., Any] | None = None

    @property
    def outputs(self) -> list[Any]:
        return [self.state, self.status, *self.questions, *self.explanations, self.submit, self.result, self.retry,
                self.new, self.share_info]


def _message(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, LookupError) and exc.args else str(exc)
    return text[:1].upper() + text[1:]


def base_url(request: gr.Request | None) -> str:
    """The address users reach this app at (behind a Space's proxy too), for the share links."""
    if request is None:
        return "http://127.0.0.1:7860"
    headers = request.headers
    host = headers.get("x-forwarded-host") or headers.get("host") or "127.0.0.1:7860"
    scheme = headers.get("x-forwarded-proto") or request.url.scheme
    return f"{scheme}://{host.split(',')[0].strip()}"


def export_file(session: QuizSession | None, fmt: str) -> str:
    """The quiz as a file for Gradio to serve: its own folder, so two users' files never collide."""
    name, data = actions.export(session, fmt)
    path = Path(tempfile.mkdtemp(prefix="llama-tutor-export-")) / name
    path.write_bytes(data)
    return str(path)


def stream_quiz(backend: Backend, topic: str, difficulty: str, **options: Any
                ) -> Iterator[tuple[int, Question] | QuizSession]:
    """Write a quiz on a worker thread; yield each ``(index, question)`` as it is accepted, then the session.

    Raises what ``actions.generate`` raises, after the questions that arrived before the failure.
    """
    arrived: queue.SimpleQueue = queue.SimpleQueue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["session"] = actions.generate(backend, topic, difficulty,
                                                  on_question=lambda i, q: arrived.put((i, q)), **options)
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
        language = gr.Dropdown(list(LANGUAGES), value="auto", label="Language", elem_id="quiz-language", scale=1,
                               allow_custom_value=True, info="auto = the topic's or material's")
    with gr.Accordion("Quiz me on my own material (.txt, .md, .pdf or pasted notes)", open=False,
                      elem_id="quiz-material-box"):
        files = gr.File(label="Your material", file_types=[".txt", ".md", ".pdf"], file_count="multiple",
                        elem_id="quiz-material", height=120)
        notes = gr.Textbox(label="Or paste your notes", lines=4, max_lines=12, max_length=MAX_MATERIAL_CHARS,
                           elem_id="quiz-notes", placeholder="The questions will be about this text only.")
    generate = gr.Button("Generate quiz", variant="primary", elem_id="quiz-generate")
    with gr.Accordion("Join a class quiz", open=False, elem_id="quiz-join-box") as join_box:
        with gr.Row(equal_height=True):
            code = gr.Textbox(label="Class code", elem_id="quiz-code", max_lines=1, max_length=20, scale=2,
                              placeholder="e.g. K7P3QX")
            name = gr.Textbox(label="Your name (optional)", elem_id="quiz-name", max_lines=1, max_length=60, scale=2)
            join = gr.Button("Join", elem_id="quiz-join", scale=1)
    status = gr.Markdown(START_HINT, elem_id="quiz-status")
    questions, explanations = [], []
    for i in range(N_QUESTIONS):
        questions.append(gr.Radio([], type="index", visible=False, elem_id=f"quiz-q{i}", elem_classes="quiz-question"))
        explanations.append(gr.Markdown(visible=False, elem_id=f"quiz-explain-{i}", elem_classes="quiz-explanation",
                                        sanitize_html=True))
    submit = gr.Button("Submit answers", variant="primary", visible=False, elem_id="quiz-submit")
    result = gr.Markdown(visible=False, elem_id="quiz-result", sanitize_html=True)
    with gr.Row():
        retry = gr.Button("Retry mistakes", visible=False, elem_id="quiz-retry")
        new = gr.Button("New quiz", variant="primary", visible=False, elem_id="quiz-new")
        share = gr.Button("Share with a class", elem_id="quiz-share")
    share_info = gr.Markdown(visible=False, elem_id="quiz-share-info")
    with gr.Accordion("Download this quiz", open=False, elem_id="quiz-download-box"):
        with gr.Row(equal_height=True):
            export_format = gr.Dropdown(list(EXPORT_LABELS), value="Printable page (.html)", label="Format",
                                        elem_id="quiz-export-format", scale=2,
                                        info="The answer key is included once you have submitted, or on the "
                                             "teacher's page.")
            export = gr.Button("Download", elem_id="quiz-export", scale=1)
        download = gr.File(label="File", elem_id="quiz-download", interactive=False)
    with gr.Accordion("My progress", open=False, elem_id="quiz-progress-box"):
        progress = gr.Markdown(progress_markdown([]), elem_id="quiz-progress")
        review = gr.Button("Review my mistakes", elem_id="quiz-review")
    with gr.Column(visible=False, elem_id="quiz-teacher") as teacher:
        class_results = gr.Markdown(elem_id="quiz-class-results", sanitize_html=True)
        refresh = gr.Button("Refresh results", elem_id="quiz-refresh")
    history = gr.BrowserState([], storage_key=PROGRESS_KEY, secret=PROGRESS_SECRET)
    tab = QuizTab(topic, difficulty, language, files, notes, generate, join_box, code, name, join, status, questions,
                  explanations, submit, result, retry, new, share, share_info, export_format, export, download,
                  progress, review, teacher, class_results, refresh, gr.State(None), history)
    return tab


def _hidden_questions() -> list[Any]:
    return [gr.update(visible=False, value=None, elem_classes=["quiz-question"]) for _ in range(N_QUESTIONS)]


def _show(session: QuizSession, status: str | None = None) -> list[Any]:
    return [session, status or status_markdown(session), *question_updates(session), *explanation_updates(None),
            gr.update(visible=True), gr.update(value="", visible=False), gr.update(visible=False),
            gr.update(visible=False), gr.skip()]


def _skip_all(tab: QuizTab) -> list[Any]:
    return [gr.skip() for _ in tab.outputs]


def _guarded(fn: Callable[..., Any], n_outputs: int) -> Callable[..., Any]:
    """Run a UI action; a problem the user can fix becomes a warning toast and no change."""
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            gr.Warning(_message(exc))
            return gr.skip() if n_outputs == 1 else [gr.skip() for _ in range(n_outputs)]
    functools.update_wrapper(run, fn)  # Gradio reads the signature to pass gr.Request
    return run


def _ui_handlers(tab: QuizTab, backend: Backend, classroom: Classroom) -> dict[str, Callable[..., Any]]:
    @spaces.GPU(duration=QUIZ_GPU_SECONDS)
    def generate(topic: str, difficulty: str, language: str, files: list[str] | None,
                 notes: str) -> Iterator[list[Any]]:
        """Questions appear one by one as the model writes them; Submit once all are there."""
        hidden = _hidden_questions()
        rest = [*explanation_updates(None), *(gr.update(visible=False) for _ in range(4)), gr.update(visible=False)]
        try:
            material, title = actions.material_text(files, notes)
        except (OSError, ValueError) as exc:
            gr.Warning(_message(exc), title="Cannot read the material")
            yield _skip_all(tab)
            return
        yield [None, ASKING, *hidden, *rest]
        arrived: list[Question] = []

        def shown() -> list[Any]:
            # Every update repeats all questions so far without their value: an update the page missed
            # is made good by the next one, and what the student already picked stays picked.
            return [question_update(i, q, keep_answer=True) if i < len(arrived) else gr.skip()
                    for i, q in enumerate(arrived + [None] * (N_QUESTIONS - len(arrived)))]

        try:
            for item in stream_quiz(backend, topic or (title or ""), difficulty, material=material, language=language):
                if isinstance(item, QuizSession):
                    yield [item, status_markdown(item), *shown(), *explanation_updates(None), gr.update(visible=True),
                           gr.update(value="", visible=False), gr.update(visible=False), gr.update(visible=False),
                           gr.update(visible=False)]
                else:
                    arrived.append(item[1])
                    status = (f"Question {len(arrived)} of {N_QUESTIONS} is ready: answer while the others are "
                              "written…")
                    yield [gr.skip(), status, *shown(), *(gr.skip() for _ in range(N_QUESTIONS + 5))]
        except USER_ERRORS as exc:
            logger.warning("quiz generation failed: %s", exc)
            gr.Warning(f"No quiz this time. {_message(exc)}", title="Quiz generation failed")
            yield [None, START_HINT, *hidden, *rest]

    def submit(session: QuizSession | None, history: list | None, *answers: int | None) -> list[Any]:
        if session is None:
            gr.Warning("Generate a quiz first.")
            return [*_skip_all(tab), gr.skip(), gr.skip()]
        graded = actions.grade_answers(classroom, session, list(answers[: len(session.quiz)]))
        history = actions.record(history, graded) if not session.result else history
        assert graded.result is not None
        where = f" Your answers were sent to class {graded.class_code}." if graded.class_code else ""
        return [graded, status_markdown(graded) + where, *graded_updates(graded), *explanation_updates(graded),
                gr.update(visible=False), gr.update(value=score_markdown(graded.result), visible=True),
                gr.update(visible=bool(graded.result.mistakes)), gr.update(visible=True), gr.skip(),
                history, progress_markdown(history)]

    def join(code: str, name: str) -> list[Any]:
        session = actions.join(classroom, code, name)
        return _show(session)

    def retry(session: QuizSession | None) -> list[Any]:
        return _show(actions.retry(session))

    def review(history: list | None) -> list[Any]:
        return _show(actions.review(history))

    def share(session: QuizSession | None, request: gr.Request) -> list[Any]:
        shared = actions.share(classroom, session)
        info = actions.links(base_url(request), shared.share)  # type: ignore[arg-type]
        return [shared, gr.skip(), *(gr.skip() for _ in range(2 * N_QUESTIONS + 4)),
                gr.update(value=share_markdown(info), visible=True)]

    def export(session: QuizSession | None, label: str) -> str:
        return export_file(session, EXPORT_LABELS.get(label, label))

    def show_results(session: QuizSession | None) -> str:
        return class_results_markdown(actions.class_results(classroom, session))

    def on_load(history: list | None, request: gr.Request) -> list[Any]:
        """A student link (?class=CODE) fills in the code; a teacher link (&teacher=TOKEN) opens the
        class results; the progress kept in this browser is shown."""
        params = request.query_params if request is not None else {}
        code, token = (params.get("class") or "").strip(), (params.get("teacher") or "").strip()
        skip = _skip_all(tab)
        updates = {"code": gr.skip(), "join_box": gr.skip(), "teacher": gr.skip(), "results": gr.skip()}
        if code and token:
            try:
                session = actions.teacher_session(classroom, code, token)
                assert session.share is not None
                questions, explanations = key_updates(session)
                status = (f"**Teacher view of class {session.share.code}** ({escape(session.quiz.topic)}): the "
                          "questions your students answer, with the key; their results are at the bottom.")
                skip = [session, status, *questions, *explanations, gr.update(visible=False),
                        gr.update(value="", visible=False), gr.update(visible=False), gr.update(visible=False),
                        gr.update(value=share_markdown(actions.links(base_url(request), session.share)), visible=True)]
                updates.update(teacher=gr.update(visible=True), results=class_results_markdown(
                    actions.class_results(classroom, session)))
            except USER_ERRORS as exc:
                gr.Warning(_message(exc))
        elif code:
            updates.update(code=code, join_box=gr.update(open=True))
        return [*skip, updates["code"], updates["join_box"], updates["teacher"], updates["results"],
                progress_markdown(history)]

    return {"generate": generate, "submit": submit, "join": join, "retry": retry, "review": review, "share": share,
            "export": export, "show_results": show_results, "on_load": on_load}


def _wire_ui(tab: QuizTab, backend: Backend, classroom: Classroom) -> None:
    h = _ui_handlers(tab, backend, classroom)
    quiet = {"api_visibility": "private", "show_progress": "hidden"}
    gr.on([tab.generate.click, tab.topic.submit, tab.new.click], h["generate"],
          [tab.topic, tab.difficulty, tab.language, tab.files, tab.notes], tab.outputs, api_visibility="private",
          concurrency_limit=1, show_progress="minimal", show_progress_on=[tab.status])
    n = len(tab.outputs)
    tab.submit.click(_guarded(h["submit"], n + 2), [tab.state, tab.history, *tab.questions],
                     [*tab.outputs, tab.history, tab.progress], **quiet)
    gr.on([tab.join.click, tab.code.submit], _guarded(h["join"], n), [tab.code, tab.name], tab.outputs, **quiet)
    tab.retry.click(_guarded(h["retry"], n), [tab.state], tab.outputs, **quiet)
    tab.review.click(_guarded(h["review"], n), [tab.history], tab.outputs, **quiet)
    tab.share.click(_guarded(h["share"], n), [tab.state], tab.outputs, **quiet)
    tab.export.click(_guarded(h["export"], 1), [tab.state, tab.export_format], [tab.download], **quiet)
    tab.refresh.click(_guarded(h["show_results"], 1), [tab.state], [tab.class_results], **quiet)
    # The progress is read from the browser when the Quiz tab first shows (after the page load event).
    tab.history.change(progress_markdown, [tab.history], [tab.progress], **quiet)
    tab.on_load = h["on_load"]


def wire_page_load(demo: gr.Blocks, tab: QuizTab) -> None:
    """Links and the browser's progress are read when the page opens."""
    demo.load(tab.on_load, [tab.history],
              [*tab.outputs, tab.code, tab.join_box, tab.teacher, tab.class_results, tab.progress],
              api_visibility="private", show_progress="hidden")


def _api(fn: Callable[..., Any]) -> Callable[..., Any]:
    """An API endpoint: a problem the caller can fix is a one-line error, as in the page."""
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            raise user_error(_message(exc)) from None
    functools.update_wrapper(run, fn)  # name, docstring and signature: the API page and gr.Request read them
    return run


def _api_handlers(backend: Backend, classroom: Classroom) -> dict[str, Callable[..., Any]]:
    @spaces.GPU(duration=QUIZ_GPU_SECONDS)
    def generate_quiz_api(topic: str, difficulty: str = "medium", material: str = "", language: str = "auto",
                          progress: gr.Progress = gr.Progress()) -> tuple[QuizSession, dict]:
        """Write a new 10-question quiz on `topic` (easy/medium/hard), or about `material` (your notes as
        text), in `language` (auto: the topic's); returns the questions and options (not the key)."""
        progress(0, desc=ASKING)
        text, title = actions.material_text(None, material, "the material")
        session = actions.generate(backend, topic or (title or ""), difficulty, material=text, language=language,
                                   on_progress=lambda done, n: progress((done, n), desc="Questions written",
                                                                        unit="questions"))
        return session, public_quiz(session)

    def grade_quiz_api(session: QuizSession | None, answers: list | None) -> tuple[QuizSession, dict]:
        """Grade this session's quiz (a class quiz: your answers go to the class). `answers`: one entry
        per question, each a 0-based option index, the option text or its letter, or null for unanswered."""
        if session is None:
            raise ValueError("No quiz in this session yet: call /generate_quiz or /join_quiz first (with the "
                             "same client).")
        if not isinstance(answers, list) or len(answers) != len(session.quiz):
            shown = repr(answers) if len(repr(answers)) <= 60 else repr(answers)[:57] + "..."
            raise ValueError(f"answers must be a list with one entry per question ({len(session.quiz)}), got {shown}")
        graded = actions.grade_answers(classroom, session, [answer_index(session, i, a) for i, a in enumerate(answers)])
        return graded, public_result(graded.result)  # type: ignore[arg-type]

    def retry_mistakes_api(session: QuizSession | None) -> tuple[QuizSession, dict]:
        """Replace this session's graded quiz by one of its wrong or unanswered questions, reshuffled."""
        if session is None or session.result is None:
            raise ValueError("Nothing graded in this session yet: call /grade_quiz first.")
        retried = actions.retry(session)
        return retried, public_quiz(retried)

    def share_quiz_api(session: QuizSession | None, request: gr.Request) -> tuple[QuizSession, dict]:
        """Share this session's quiz with a class: returns its `code`, the `student_link` and the secret
        `teacher_link` (class results: /class_results with the code and the link's `teacher` value)."""
        shared = actions.share(classroom, session)
        return shared, actions.links(base_url(request), shared.share)  # type: ignore[arg-type]

    def join_quiz_api(code: str, name: str = "") -> tuple[QuizSession, dict]:
        """Join the class quiz with this `code` (your `name` is optional); returns its questions. Grade
        with /grade_quiz: your answers go to the class."""
        session = actions.join(classroom, code, name)
        return session, public_quiz(session)

    def class_results_api(code: str, teacher_token: str) -> dict:
        """The class results of a shared quiz, for its teacher (`teacher_token`: the `teacher` value of
        the teacher link): participants, score distribution, and per question the share right and the
        wrong options picked."""
        results = actions.class_results(classroom, actions.teacher_session(classroom, code, teacher_token))
        return {"code": results.code, "topic": results.topic, "total": results.total,
                "participants": [{"name": p.name, "score": p.score, "submitted_at": p.submitted_at.isoformat()}
                                 for p in results.participants],
                "distribution": {str(k): v for k, v in results.distribution.items()},
                "questions": [{"question": q.question, "options": q.options, "answer": q.answer,
                               "correct_share": q.correct_share, "unanswered": q.unanswered,
                               "wrong_picks": {str(k): v for k, v in q.wrong_picks.items()}}
                              for q in results.questions],
                "markdown": class_results_markdown(results)}

    def export_quiz_api(session: QuizSession | None, fmt: str) -> str:
        """Download this session's quiz as `fmt` (json, csv, gift, html); the key is in it only once you
        have submitted, or for the teacher who shared it."""
        return export_file(session, fmt)

    return {"generate_quiz": generate_quiz_api, "grade_quiz": grade_quiz_api, "retry_mistakes": retry_mistakes_api,
            "share_quiz": share_quiz_api, "join_quiz": join_quiz_api, "class_results": class_results_api,
            "export_quiz": export_quiz_api}


def _wire_api(tab: QuizTab, backend: Backend, classroom: Classroom) -> None:
    """Endpoints with plain JSON in and out for gradio_client, on hidden triggers (as ChatInterface does).

    They share the session's quiz state with nothing else: an API client has its own session.
    """
    h = {name: _api(fn) for name, fn in _api_handlers(backend, classroom).items()}
    # The labels name the values in refusals ("'answers' must be ..."), as the other inputs' labels do.
    answers = gr.JSON(visible=False, label="answers")
    material = gr.Textbox("", visible=False, label="material", max_length=MAX_MATERIAL_CHARS)
    language = gr.Textbox("auto", visible=False, label="language", max_length=40)
    code, name = gr.Textbox(visible=False, label="code", max_length=20), gr.Textbox("", visible=False, label="name", max_length=60)
    token = gr.Textbox(visible=False, label="teacher_token", max_length=100)
    fmt = gr.Textbox("html", visible=False, label="format", max_length=10)
    quiz_json, result_json, file = gr.JSON(visible=False), gr.JSON(visible=False), gr.File(visible=False)
    t = {name: gr.Button(visible=False) for name in h}
    quiet = {"show_progress": "hidden"}
    t["generate_quiz"].click(h["generate_quiz"], [tab.topic, tab.difficulty, material, language], [tab.state, quiz_json],
                             api_name="generate_quiz", concurrency_limit=1, **quiet)
    t["grade_quiz"].click(h["grade_quiz"], [tab.state, answers], [tab.state, result_json], api_name="grade_quiz", **quiet)
    t["retry_mistakes"].click(h["retry_mistakes"], [tab.state], [tab.state, quiz_json], api_name="retry_mistakes",
                              **quiet)
    t["share_quiz"].click(h["share_quiz"], [tab.state], [tab.state, result_json], api_name="share_quiz", **quiet)
    t["join_quiz"].click(h["join_quiz"], [code, name], [tab.state, quiz_json], api_name="join_quiz", **quiet)
    t["class_results"].click(h["class_results"], [code, token], [result_json], api_name="class_results", **quiet)
    t["export_quiz"].click(h["export_quiz"], [tab.state, fmt], [file], api_name="export_quiz", **quiet)


def build_quiz_tab(backend: Backend, data_dir: str | os.PathLike[str] | None = None) -> QuizTab:
    """Render the quiz tab inside the current Blocks context and wire its events and API endpoints.
    ``data_dir`` holds the class quizzes (opened on first share or join)."""
    classroom = Classroom(data_dir)
    tab = _layout()
    _wire_ui(tab, backend, classroom)
    _wire_api(tab, backend, classroom)
    return tab


__all__ = ["QuizTab", "build_quiz_tab", "stream_quiz", "wire_page_load"]

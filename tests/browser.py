"""Serving the app in-process and driving it with a real headless Chromium (Debian's, via Playwright).

    from tests.browser import running_app, chromium, page   # fixtures are imported into test modules

Browser tests skip with a reason when /usr/bin/chromium is missing (CI installs it in .ci/run).
Screenshots go to docs/screenshots/ only when TUTOR_SCREENSHOTS=1, so normal runs leave the tree clean.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from pathlib import Path

import pytest

from tests.scripted import ScriptedBackend

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOT_DIR = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
# Gradio 6.31's queue statistics call pandas options that pandas 3 deprecates (noise, not our code).
QUIET_GRADIO = [pytest.mark.filterwarnings("ignore:.*no_silent_downcasting:DeprecationWarning"),
                pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:DeprecationWarning")]
# Generous: the 2-core test machine is shared, and the first page load compiles Gradio's JS.
TIMEOUT_MS = 30_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(backend, data_dir=None, feedback_file=None, **serve_options) -> Iterator[str]:
    """Build the real app around ``backend``, launch it the way ``python app.py`` does; yield its URL.
    Class quizzes go to ``data_dir`` (a fresh folder by default)."""
    import app

    with tempfile.TemporaryDirectory(prefix="llama-tutor-data-") as scratch:
        demo = app.build_demo(backend, data_dir=data_dir or scratch, feedback_file=feedback_file)
        url = app.serve(demo, port=free_port(), block=False, **serve_options)
        try:
            yield url.rstrip("/")
        finally:
            demo.close()


@pytest.fixture(scope="module", name="app")
def class_app():
    """One app around the scripted tutor for a whole test module (``app.url``, ``app.backend``); each test
    shares its own class, so tests cannot see each other's."""
    backend = tutor_backend()
    with running_app(backend) as url:
        yield SimpleNamespace(url=url, backend=backend)


@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium per test module (never downloaded: the system one or a skip).

    Module scope, not session: each module that imports this fixture gets its own copy, and two
    Playwright instances cannot run at once, so each must stop before the next module starts.
    """
    if not CHROMIUM.is_file():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium):
    """A fresh browser context (own cookies and storage = a new user) with a desktop-sized page."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.page_errors = errors  # type: ignore[attr-defined]
    try:
        yield tab
    finally:
        context.close()


# In the page: waits until every image matching the selector (default: the chat's) has loaded or failed,
# so that an onerror handler would have run, then returns the flag an injected script would set.
SETTLED_XSS_FLAG = """async (selector = '#chatbot img') => {
  const images = Array.from(document.querySelectorAll(selector));
  await Promise.all(images.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener('load', done); img.addEventListener('error', done); })));
  await new Promise(done => setTimeout(done, 0));
  return window.__xss ?? null;
}"""


def save_screenshot(page, name: str) -> Path | None:
    """Write docs/screenshots/<name>.png when TUTOR_SCREENSHOTS=1; returns the path written."""
    if os.environ.get("TUTOR_SCREENSHOTS") != "1":
        return None
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


# -- scripted content: what a good tutor model would say, for tests and screenshots --------------

TUTOR_QUESTION = "Can you explain photosynthesis simply?"
TUTOR_REPLY = (
    "Sure! **Photosynthesis** is how plants make their own food from light.\n\n"
    "Think of a leaf as a tiny kitchen:\n\n"
    "1. **Ingredients**: water from the roots and carbon dioxide from the air.\n"
    "2. **Energy**: sunlight, caught by the green pigment *chlorophyll*.\n"
    "3. **Product**: glucose (a sugar) to live and grow on, and oxygen released into the air.\n\n"
    "In one line:\n\n"
    "$$6\\,CO_2 + 6\\,H_2O \\xrightarrow{\\text{light}} C_6H_{12}O_6 + 6\\,O_2$$\n\n"
    "Quick check: where do you think the oxygen a plant gives off comes from, the water or the "
    "carbon dioxide?"
)

# (question, options, index of the right option, explanation)
QUIZ_BANK: list[tuple[str, list[str], int, str]] = [
    ("Which pigment gives leaves their green colour and captures light for photosynthesis?",
     ["Chlorophyll", "Carotene", "Melanin", "Haemoglobin"], 0,
     "Chlorophyll absorbs red and blue light and reflects green."),
    ("In which part of a plant cell does photosynthesis take place?",
     ["Mitochondrion", "Chloroplast", "Nucleus", "Ribosome"], 1,
     "Chloroplasts hold the chlorophyll and the enzymes of both stages."),
    ("Which gas do plants release as a by-product of photosynthesis?",
     ["Carbon dioxide", "Nitrogen", "Oxygen", "Methane"], 2,
     "The oxygen comes from water molecules split in the light reactions."),
    ("What is the main sugar made by photosynthesis?", ["Lactose", "Maltose", "Glucose", "Cellulose"], 2,
     "Glucose is built in the Calvin cycle and later stored as starch."),
    ("What supplies the energy for the light-dependent reactions?",
     ["Sunlight", "Heat from the soil", "Glucose", "Oxygen"], 0,
     "Light energy excites electrons in chlorophyll."),
    ("Where in the chloroplast does the Calvin cycle happen?",
     ["Thylakoid membrane", "Stroma", "Outer membrane", "Cell wall"], 1,
     "The Calvin cycle's enzymes sit in the fluid stroma around the thylakoids."),
    ("Which molecule is split in the light reactions to replace the electrons chlorophyll loses?",
     ["Glucose", "Water", "Carbon dioxide", "Starch"], 1,
     "Splitting water gives electrons, hydrogen ions and oxygen."),
    ("Which enzyme fixes carbon dioxide in the Calvin cycle?", ["Amylase", "RuBisCO", "Catalase", "Lipase"], 1,
     "RuBisCO attaches CO2 to ribulose bisphosphate."),
    ("Through which openings does carbon dioxide enter a leaf?",
     ["Stomata", "Xylem vessels", "Root hairs", "The cuticle"], 0,
     "Stomata are pores, mostly on the underside of the leaf."),
    ("If light keeps increasing but carbon dioxide is scarce, what does the rate of photosynthesis do?",
     ["It keeps rising steeply", "It levels off", "It drops to zero", "It reverses"], 1,
     "Carbon dioxide becomes the limiting factor, so more light no longer helps."),
    ("Which energy carriers from the light reactions power the Calvin cycle?",
     ["ATP and NADPH", "DNA and RNA", "Glucose and oxygen", "Water and carbon dioxide"], 0,
     "ATP supplies energy and NADPH supplies electrons for building sugar."),
    ("Which of these organisms also carries out photosynthesis?",
     ["Mushrooms", "Cyanobacteria", "Viruses", "Earthworms"], 1,
     "Cyanobacteria were photosynthesising billions of years before plants existed."),
]
RIGHT_ANSWER = {question: options[key] for question, options, key, _ in QUIZ_BANK}


def format_questions(items: list[tuple[str, list[str], int, str]]) -> str:
    """Questions in the layout the quiz prompt asks for (numbered, A-D, Answer:, Explanation:)."""
    blocks = []
    for number, (question, options, key, explanation) in enumerate(items, 1):
        lines = [f"{number}. {question}", *(f"{'ABCD'[j]}) {o}" for j, o in enumerate(options)),
                 f"Answer: {'ABCD'[key]}", f"Explanation: {explanation}"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# A request about the user's material names its title: "... about the material below (<title>)."
MATERIAL_REQUEST = re.compile(r"questions? about the material below \((.*)\)\.\n")
SPARE_WORDS = ("granite", "seventeen", "copper", "winter", "harbour", "violet")


def material_section(prompt: str) -> str:
    """The part of the user's material one request is about (the text between the triple quotes)."""
    return prompt.split('"""\n', 1)[1].rsplit('\n"""', 1)[0]


def material_sentences(section: str) -> list[str]:
    """The sentences of a section that a question can be written from (headings left out)."""
    text = " ".join(line for line in section.split("\n") if not line.lstrip().startswith("#"))
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(re.findall(r"\w", s)) >= 20]


def last_word(sentence: str) -> str:
    return re.findall(r"[^\W_][\w'-]*", sentence)[-1]


def cloze(sentence: str, others: list[str]) -> tuple[str, list[str], int, str, str]:
    """A question that only the material answers: how does this sentence of it end? The options are
    its last word and the last words of other sentences; the quote is the sentence itself."""
    answer = last_word(sentence)
    start = sentence.rstrip(".!?").rsplit(answer, 1)[0].rstrip()
    wrong = []
    for word in [*(last_word(o) for o in others), *SPARE_WORDS]:
        if word.casefold() not in {answer.casefold(), *(w.casefold() for w in wrong)}:
            wrong.append(word)
    return (f'In the material, how does this sentence end: "{start} ..."?', [answer, *wrong[:3]], 0,
            "The material says so.", sentence)


def format_material_questions(items: list[tuple[str, list[str], int, str, str]]) -> str:
    """Questions about material in the layout its prompt asks for (with a Quote: line)."""
    blocks = []
    for number, (question, options, key, explanation, quote) in enumerate(items, 1):
        lines = [f"{number}. {question}", *(f"{'ABCD'[j]}) {o}" for j, o in enumerate(options)),
                 f"Answer: {'ABCD'[key]}", f'Quote: "{quote}"', f"Explanation: {explanation}"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


class QuizWriter:
    """A reply callable for ScriptedBackend: each request on a topic gets the next questions of the
    bank; each request about the user's material gets questions on the next sentences of the section
    it is given, each quoting its sentence (a careful model's questions, checked like a real one's)."""

    def __init__(self, bank: list[tuple[str, list[str], int, str]] = QUIZ_BANK) -> None:
        self.bank = bank
        self._next = 0
        self._next_sentence: dict[str, int] = {}
        self._lock = threading.Lock()
        self.topics: list[str] = []  # the topic, or the material's title, of every request
        self.sections: list[str] = []  # the material of every request about material

    def __call__(self, messages: list[dict]) -> str:
        prompt = messages[-1]["content"]
        count = int(re.search(r"Write (\d+) multiple-choice", prompt).group(1))
        about_material = MATERIAL_REQUEST.search(prompt)
        if about_material:
            return self._about_material(about_material.group(1), material_section(prompt), count)
        topic = re.search(r"questions? about: (.*)", prompt).group(1)
        with self._lock:
            start, self._next = self._next, self._next + count
            self.topics.append(topic)
        return format_questions([self.bank[(start + k) % len(self.bank)] for k in range(count)])

    def _about_material(self, title: str, section: str, count: int) -> str:
        sentences = material_sentences(section)
        if not sentences:
            return "This part of the material has no sentence to ask about."
        with self._lock:  # the requests of one batch get different sentences
            start = self._next_sentence.get(section, 0)
            self._next_sentence[section] = start + count
            self.topics.append(title)
            self.sections.append(section)
        chosen = [sentences[(start + k) % len(sentences)] for k in range(min(count, len(sentences)))]
        return format_material_questions([cloze(s, [o for o in sentences if o != s]) for s in chosen])


def tutor_backend(bank: list[tuple[str, list[str], int, str]] = QUIZ_BANK, **options) -> ScriptedBackend:
    """A ScriptedBackend that chats like a tutor and writes real-looking quizzes (photosynthesis)."""
    writer = QuizWriter(bank)
    backend = ScriptedBackend(default=lambda m: writer(m) if "multiple-choice" in m[-1]["content"]
                              else TUTOR_REPLY, **options)
    backend.quiz_writer = writer  # type: ignore[attr-defined]
    return backend

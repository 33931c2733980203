"""The classroom in a real headless Chromium: a quiz about an uploaded file, a class quiz shared by link
with a teacher's page of results, a download that reads back, and progress that survives a reload.

Run with TUTOR_SCREENSHOTS=1 to (re)write docs/screenshots/quiz-material.png, quiz-share.png,
quiz-class-results.png and quiz-progress.png.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from quiz import parse_quiz
from tests.browser import (QUIET_GRADIO, RIGHT_ANSWER, TIMEOUT_MS, chromium, class_app, cloze, material_sentences,  # noqa: F401
                           page, save_screenshot)
from tests.test_app_browser_quiz import answer, question_text
from tests.test_quiz_material import make_pdf

pytestmark = [pytest.mark.slow, *QUIET_GRADIO]

VOLCANOES = [
    "Iceland sits on the Mid-Atlantic Ridge, where two tectonic plates drift apart.",
    "Hekla erupted in 1104 and buried the farms of the valley under pumice.",
    "The 2010 eruption of Eyjafjallajökull closed the airspace over Europe.",
    "Laki split open in 1783 along a fissure about twenty-seven kilometres long.",
    "Its gases killed most of the island's sheep and caused a famine.",
    "Katla lies beneath the Mýrdalsjökull glacier.",
    "When Katla erupts, meltwater floods rush across the sandur plains.",
    "Surtsey rose from the sea south of Iceland in 1963 and is now a nature reserve.",
    "Geothermal power heats nine homes out of ten in Reykjavík.",
    "The Great Geysir gave its name to every spouting hot spring.",
    "Grímsvötn is the most frequently erupting volcano under Vatnajökull.",
]
CELLS = [
    ["Every living thing is made of one or more cells.", "The nucleus holds the genetic material of the cell.",
     "Mitochondria release energy from sugar in a process called respiration.",
     "Ribosomes build proteins from amino acids.", "A membrane of lipids surrounds every cell."],
    ["Plant cells have a rigid wall made of cellulose.", "Chloroplasts capture light to make food for the plant.",
     "A large vacuole keeps a plant cell firm with water.", "Bacteria have no nucleus and keep their DNA in a loop.",
     "Most cells are too small to see without a microscope.", "Robert Hooke named cells after the rooms of monks."],
]


def new_page(browser: Browser) -> Page:
    """A page in a fresh browser context: another person on another device."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def quiz_tab(page: Page, url: str) -> None:
    page.goto(url)
    page.get_by_role("tab", name="Quiz").click()


def generate(page: Page, url: str, topic: str = "photosynthesis") -> None:
    quiz_tab(page, url)
    page.locator("#quiz-topic :is(input, textarea)").fill(topic)
    page.locator("#quiz-generate").click()
    expect(page.locator("#quiz-status")).to_contain_text(f"Quiz: {topic} · medium · 10 questions")


def material_key(sentences: list[str]) -> dict[str, str]:
    """Question text -> right option for the questions the scripted model writes about these sentences."""
    return {question: options[key] for question, options, key, *_ in (cloze(s, []) for s in sentences)}


def upload(page: Page, path) -> None:
    page.locator("#quiz-material-box").get_by_text("Quiz me on my own material").click()
    page.locator("#quiz-material input[type=file]").set_input_files(str(path))
    expect(page.locator("#quiz-material")).to_contain_text(path.name)
    page.locator("#quiz-generate").click()


def answer_all(page: Page, n: int, wrong: set[int] = frozenset(), key: dict[str, str] = RIGHT_ANSWER) -> list[str]:
    """Answer questions 0..n-1 (wrongly those in ``wrong``) and submit; returns the question texts."""
    questions = [answer(page, i, right=i not in wrong, key=key) for i in range(n)]
    page.locator("#quiz-submit").click()
    expect(page.locator("#quiz-result")).to_contain_text(f"Score: {n - len(wrong)}/{n}")
    return questions


# -- your own material -----------------------------------------------------------------------------


def test_a_quiz_about_an_uploaded_text_file_or_pdf(page: Page, chromium: Browser, app, tmp_path):  # noqa: F811
    notes = tmp_path / "volcanoes_of_iceland.txt"
    notes.write_text("\n".join(VOLCANOES) + "\n", encoding="utf-8")
    quiz_tab(page, app.url)
    upload(page, notes)
    status = page.locator("#quiz-status")
    expect(status).to_contain_text("Quiz: volcanoes of iceland · medium · 10 questions")  # named after the file
    shown = [question_text(page, i) for i in range(10)]
    assert shown == [cloze(s, [])[0] for s in VOLCANOES[:10]]  # one question per sentence, in order
    assert shown[0] == 'In the material, how does this sentence end: "Iceland sits on the Mid-Atlantic Ridge, ' \
                       'where two tectonic plates drift ..."?'
    save_screenshot(page, "quiz-material")
    answer_all(page, 10, wrong={0}, key=material_key(VOLCANOES))
    # The explanation quotes the sentence of the file the question comes from.
    expect(page.locator("#quiz-explain-0")).to_contain_text("Not quite. The answer is")
    expect(page.locator("#quiz-explain-0")).to_contain_text(f'"{VOLCANOES[0]}"')
    assert app.backend.quiz_writer.sections[-1] == "\n".join(VOLCANOES)

    pdf = tmp_path / "cell_biology.pdf"
    pdf.write_bytes(make_pdf(CELLS))
    reader = new_page(chromium)
    try:
        quiz_tab(reader, app.url)
        upload(reader, pdf)
        expect(reader.locator("#quiz-status")).to_contain_text("Quiz: cell biology · medium · 10 questions")
        sentences = [s for page_lines in CELLS for s in page_lines]
        assert [question_text(reader, i) for i in range(10)] == [cloze(s, [])[0] for s in sentences[:10]]
        assert material_sentences(app.backend.quiz_writer.sections[-1]) == sentences  # both pages' text
    finally:
        reader.context.close()


# -- one quiz for the whole class ------------------------------------------------------------------


def join(browser: Browser, link: str, code: str, name: str, wrong: set[int]) -> Page:
    """A student opens the link, joins under ``name`` and submits (wrong answers to ``wrong``)."""
    student = new_page(browser)
    quiz_tab(student, link)
    expect(student.locator("#quiz-code input")).to_be_visible()  # the join box is open
    expect(student.locator("#quiz-code input")).to_have_value(code)
    if name:
        student.locator("#quiz-name input").fill(name)
    student.locator("#quiz-join").click()
    status = student.locator("#quiz-status")
    expect(status).to_contain_text(f"Class quiz {code}: photosynthesis · medium · 10 questions")
    answer_all(student, 10, wrong)
    expect(status).to_contain_text(f"Your answers were sent to class {code}.")
    return student


def test_a_shared_quiz_is_answered_in_other_browsers_and_the_teacher_page_shows_the_results(
        page: Page, chromium: Browser, app):  # noqa: F811
    generate(page, app.url)
    teacher_questions = [question_text(page, i) for i in range(10)]
    page.locator("#quiz-share").click()
    info = page.locator("#quiz-share-info")
    expect(info).to_contain_text("Class code: ")
    text = info.inner_text()
    code = re.search(r"Class code: ([A-Z0-9]{6})", text).group(1)
    student_link = f"{app.url}/?class={code}"
    teacher_link = re.search(rf"{re.escape(student_link)}&teacher=[\w-]+", text).group(0)
    assert f"Students open {student_link} " in text and "keep it to yourself" in text
    save_screenshot(page, "quiz-share")

    ada = join(chromium, student_link, code, "Ada", wrong=set())
    grace = join(chromium, student_link, code, "Grace", wrong={0, 1, 2})
    assert [question_text(ada, i).removeprefix("✓ ") for i in range(10)] == teacher_questions

    teacher, later = new_page(chromium), None
    try:
        quiz_tab(teacher, teacher_link)
        results = teacher.locator("#quiz-class-results")
        expect(results).to_contain_text(f"Class {code}: photosynthesis · 2 participants")
        rows = teacher.locator("#quiz-class-results table").first.locator("tr").all_inner_texts()
        assert [row.split("\t")[:2] for row in rows[1:]] == [["Ada", "10/10"], ["Grace", "7/10"]]
        save_screenshot(teacher, "quiz-class-results")

        later = join(chromium, student_link, code, "", wrong={3, 4, 5, 6, 7, 8})
        expect(results).to_contain_text("2 participants")  # until the teacher refreshes
        teacher.locator("#quiz-refresh").click()
        expect(results).to_contain_text(f"Class {code}: photosynthesis · 3 participants")
        rows = teacher.locator("#quiz-class-results table").first.locator("tr").all_inner_texts()
        assert [row.split("\t")[:2] for row in rows[1:]] == [["Ada", "10/10"], ["Grace", "7/10"], ["Anonymous", "4/10"]]

        # The teacher's download carries the key and reads back to the quiz the students answered.
        teacher.locator("#quiz-download-box").get_by_text("Download this quiz").click()
        teacher.locator("#quiz-export-format input").click()
        teacher.get_by_role("option", name="JSON").click()
        teacher.locator("#quiz-export").click()
        link = teacher.locator('#quiz-download a[download="photosynthesis-teacher.json"]')
        with teacher.expect_download() as download:
            link.click()
        parsed = parse_quiz(open(download.value.path(), encoding="utf-8").read())
        assert [q.question for q in parsed] == teacher_questions
        assert [q.correct_option for q in parsed] == [RIGHT_ANSWER[q] for q in teacher_questions]
        assert all(len(q.options) == 4 and q.explanation for q in parsed)
    finally:
        for other in (ada, grace, teacher, later):
            if other is not None:
                other.context.close()


def test_the_student_link_opens_the_quiz_tab(page: Page, app):  # noqa: F811
    from gradio_client import Client

    teacher = Client(app.url, verbose=False)
    teacher.predict("photosynthesis", "easy", api_name="/generate_quiz")
    shared = teacher.predict(api_name="/share_quiz")
    page.goto(shared["student_link"])
    expect(page.locator("#quiz-code input")).to_have_value(shared["code"], timeout=10_000)
    expect(page.locator("#quiz-join")).to_be_visible()


# -- progress in this browser ----------------------------------------------------------------------


def test_progress_survives_a_reload_and_review_asks_the_missed_questions_again(page: Page, app):  # noqa: F811
    generate(page, app.url)
    questions = answer_all(page, 10, wrong={0, 1, 2})
    missed = set(questions[:3])

    page.reload()
    page.get_by_role("tab", name="Quiz").click()
    page.locator("#quiz-progress-box").get_by_text("My progress").click()
    progress = page.locator("#quiz-progress")
    expect(progress).to_contain_text("1 quiz taken, 3 missed questions saved for review.")
    expect(progress.locator("tr").nth(1)).to_contain_text("photosynthesis")
    expect(progress.locator("tr").nth(1)).to_contain_text("7/10")
    save_screenshot(page, "quiz-progress")

    # Review: the three missed questions; two answered right leave the list, one answered wrong stays.
    page.locator("#quiz-review").click()
    expect(page.locator("#quiz-status")).to_contain_text("Review of your missed questions: Review of my mistakes "
                                                         "· mixed · 3 questions")
    expect(page.locator("#quiz-q3")).to_be_hidden()
    reviewed = [question_text(page, i) for i in range(3)]
    assert set(reviewed) == missed
    answer_all(page, 3, wrong={2})
    expect(progress).to_contain_text("2 quizzes taken, 1 missed question saved for review.")
    expect(progress.locator("tr").nth(1)).to_contain_text("Review of my mistakes (review)")
    expect(progress.locator("tr").nth(1)).to_contain_text("2/3")

    page.reload()
    page.get_by_role("tab", name="Quiz").click()
    page.locator("#quiz-progress-box").get_by_text("My progress").click()
    expect(progress).to_contain_text("2 quizzes taken, 1 missed question saved for review.")
    page.locator("#quiz-review").click()
    expect(page.locator("#quiz-status")).to_contain_text("Review of my mistakes · mixed · 1 question.")
    assert question_text(page, 0) == reviewed[2]
    answer_all(page, 1)
    expect(progress).to_contain_text("3 quizzes taken, 0 missed questions saved for review.")

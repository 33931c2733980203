"""The classroom through the API (gradio_client and raw HTTP) against the real app, scripted model:
one quiz shared with a class by code, the teacher's results behind a secret token, 30 students at once,
exports with the key only once it is no secret, and quizzes about the user's own material."""

from __future__ import annotations

import csv
import io
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from gradio_client import Client

from quiz import parse_quiz
from quiz.export import import_csv
from quiz.store import ANONYMOUS, CODE_ALPHABET
from tests.browser import QUIET_GRADIO, QUIZ_BANK, RIGHT_ANSWER, class_app, material_sentences  # noqa: F401
from tests.raw_api import call, error_message
from tests.test_quiz_export import gift_to_questions, read_gift

pytestmark = [pytest.mark.slow, *QUIET_GRADIO]

EXPLANATIONS = [explanation for *_, explanation in QUIZ_BANK]
# Names of fields that would carry the key (or something it can be derived from) in a response.
KEY_FIELDS = {"answer", "answers", "correct", "correct_text", "correct_option", "explanation", "feedback", "key",
              "status", "quote", "seed", "raw_outputs", "teacher_token", "teacher_link", "score"}
WRONG_TOKEN = "this-is-not-the-teacher-token-of-any-class-0000"

MATERIAL = """# Volcanoes of Iceland

Iceland sits on the Mid-Atlantic Ridge, where two tectonic plates drift apart.
Hekla erupted in 1104 and buried the farms of the valley under pumice.
The 2010 eruption of Eyjafjallajökull closed the airspace over Europe.
Laki split open in 1783 along a fissure about twenty-seven kilometres long.
Its gases killed most of the island's sheep and caused a famine.
Katla lies beneath the Mýrdalsjökull glacier.
When Katla erupts, meltwater floods rush across the sandur plains.
Surtsey rose from the sea south of Iceland in 1963 and is now a nature reserve.
Geothermal power heats nine homes out of ten in Reykjavík.
The Great Geysir gave its name to every spouting hot spring.
Grímsvötn is the most frequently erupting volcano under Vatnajökull.
"""


def client(url: str) -> Client:
    return Client(url, verbose=False)


def key_of(quiz: dict) -> list[int]:
    """The right option's index per question, from what the scripted model wrote."""
    return [q["options"].index(RIGHT_ANSWER[q["question"]]) for q in quiz["questions"]]


def wrong(quiz: dict, i: int, nth: int = 0) -> int:
    """The index of the ``nth`` wrong option of question ``i``."""
    right = key_of(quiz)[i]
    return [j for j in range(len(quiz["questions"][i]["options"])) if j != right][nth]


def share(url: str, topic: str = "photosynthesis") -> SimpleNamespace:
    """A teacher's client that generated a quiz and shared it: quiz, code, links and token."""
    teacher = client(url)
    quiz = teacher.predict(topic, "medium", api_name="/generate_quiz")
    shared = teacher.predict(api_name="/share_quiz")
    token = parse_qs(urlsplit(shared["teacher_link"]).query)["teacher"][0]
    return SimpleNamespace(client=teacher, quiz=quiz, shared=shared, code=shared["code"], token=token)


def json_keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in json_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in json_keys(v)}
    return set()


def read(path: str) -> bytes:
    return Path(path).read_bytes()


# -- share, join, grade, results -------------------------------------------------------------------


def test_students_who_join_by_code_get_the_quiz_and_the_teacher_sees_their_results(app):
    teacher = share(app.url)
    code, token = teacher.code, teacher.token
    assert re.fullmatch(f"[{CODE_ALPHABET}]{{6}}", code)
    assert len(token) >= 32 and token not in teacher.shared["student_link"]
    assert teacher.shared == {"code": code, "student_link": f"{app.url}/?class={code}",
                              "teacher_link": f"{app.url}/?class={code}&teacher={token}"}

    ada, anonymous = client(app.url), client(app.url)
    ada_quiz = ada.predict(code.lower(), "  Ada  ", api_name="/join_quiz")
    anonymous_quiz = anonymous.predict(f" {code[:3].lower()} {code[3:]} ", "", api_name="/join_quiz")
    expected = {"topic": "photosynthesis", "difficulty": "medium", "retry": False,
                "questions": teacher.quiz["questions"]}
    assert ada_quiz == expected and anonymous_quiz == expected  # same questions, same option order

    quiz, key = teacher.quiz, key_of(teacher.quiz)
    # Ada: question 1 wrong, question 2 unanswered, the rest right -> 8/10.
    ada_answers: list = list(key)
    ada_answers[0], ada_answers[1] = wrong(quiz, 0), None
    # The anonymous student: 1-5 right, 6-10 wrong (different wrong options) -> 5/10.
    anonymous_answers = key[:5] + [wrong(quiz, i, nth=i % 3) for i in range(5, 10)]
    ada_result = ada.predict(ada_answers, api_name="/grade_quiz")
    anonymous_result = anonymous.predict(anonymous_answers, api_name="/grade_quiz")
    assert (ada_result["score"], anonymous_result["score"]) == (8, 5)
    assert [f["correct"] for f in ada_result["feedback"]] == key
    assert [f["status"] for f in ada_result["feedback"][:3]] == ["incorrect", "unanswered", "correct"]

    results = ada.predict(code.lower(), token, api_name="/class_results")
    assert (results["code"], results["topic"], results["total"]) == (code, "photosynthesis", 10)
    assert [(p["name"], p["score"]) for p in results["participants"]] == [("Ada", 8), (ANONYMOUS, 5)]
    assert results["distribution"] == {str(s): int(s in (5, 8)) for s in range(11)}
    stats = results["questions"]
    assert [q["question"] for q in stats] == [q["question"] for q in quiz["questions"]]
    assert [q["options"] for q in stats] == [q["options"] for q in quiz["questions"]]
    assert [q["answer"] for q in stats] == key
    assert [q["correct_share"] for q in stats] == [0.5, 0.5, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5]
    assert [q["unanswered"] for q in stats] == [0, 1] + [0] * 8
    for i, q in enumerate(stats):
        picked = {ada_answers[i], anonymous_answers[i]} - {key[i], None}
        assert q["wrong_picks"] == {str(j): int(j in picked) for j in range(4) if j != key[i]}, i
    assert sum(sum(q["wrong_picks"].values()) for q in stats) == 6  # Ada's one, the other student's five
    markdown = results["markdown"]
    assert markdown.startswith(f"### Class {code}: photosynthesis · 2 participants")
    assert "| Ada | 8/10 |" in markdown and f"| {ANONYMOUS} | 5/10 |" in markdown
    first_wrong = quiz["questions"][0]["options"][ada_answers[0]]
    assert f"| 1 | {quiz['questions'][0]['question']} (answer {'ABCD'[key[0]]}) | 50% | " \
           f"{'ABCD'[ada_answers[0]]}) {first_wrong}: 1 |" in markdown


def test_nothing_a_joined_student_receives_before_grading_holds_the_key(app):
    teacher = share(app.url)
    session = "joined-student-session-0001"
    joined = call(app.url, "join_quiz", [teacher.code, "Ada"], session)
    assert joined.last.name == "complete", joined.text[-300:]
    through_client = client(app.url).predict(teacher.code, "Grace", api_name="/join_quiz")
    received = [joined.posted, joined.text, json.dumps(through_client, ensure_ascii=False)]
    payloads = [event.data for event in joined.events] + [through_client]
    for text in received:
        for explanation in EXPLANATIONS:
            assert explanation[:25] not in text and json.dumps(explanation)[1:26] not in text
        assert teacher.token not in text
    assert not json_keys(payloads) & KEY_FIELDS, json_keys(payloads) & KEY_FIELDS
    public = joined.last.data[-1]
    assert [q["question"] for q in public["questions"]] == [q["question"] for q in teacher.quiz["questions"]]

    # The same session learns the key only by submitting: grading reveals the teacher's key.
    graded = call(app.url, "grade_quiz", [[None] * 10], session)
    assert [f["correct"] for f in graded.last.data[-1]["feedback"]] == key_of(teacher.quiz)
    assert {f["explanation"] for f in graded.last.data[-1]["feedback"]} <= set(EXPLANATIONS)


def test_class_results_need_that_classs_own_teacher_token(app):
    a, b = share(app.url), share(app.url)
    assert a.code != b.code and a.token != b.token
    bea = client(app.url)
    bea_quiz = bea.predict(b.code, "Bea", api_name="/join_quiz")
    assert bea.predict(key_of(bea_quiz), api_name="/grade_quiz")["score"] == 10

    outsider = client(app.url)
    for code, token in [(a.code, WRONG_TOKEN), (a.code, b.token), (b.code, a.token), (b.code, "")]:
        message = f"This teacher link does not open class {code}: use the teacher link you were given when you " \
                  "shared the quiz"
        with pytest.raises(Exception, match=f"^{re.escape(message)}$"):
            outsider.predict(code, token, api_name="/class_results")
    with pytest.raises(Exception, match=r"^No shared quiz has the code 'ZZZZZZ': check the code with your teacher$"):
        outsider.predict("ZZZZZZ", a.token, api_name="/class_results")
    with pytest.raises(Exception, match=r"^'K7P' is not a quiz code: a code is 6 letters and digits"):
        outsider.predict("K7P", a.token, api_name="/join_quiz")

    results_a = outsider.predict(a.code, a.token, api_name="/class_results")
    assert results_a["participants"] == [] and "Bea" not in json.dumps(results_a)
    assert results_a["distribution"] == {str(s): 0 for s in range(11)}
    assert all(q["correct_share"] is None for q in results_a["questions"])
    assert results_a["markdown"].endswith("No answers yet. Press **Refresh** when your students have submitted.")
    results_b = outsider.predict(b.code, b.token, api_name="/class_results")
    assert [(p["name"], p["score"]) for p in results_b["participants"]] == [("Bea", 10)]

    # A student cannot re-share the class quiz as their own, and a session without a quiz is told what to do.
    with pytest.raises(Exception, match=f"^This quiz came from class {b.code}: only its teacher can share it.$"):
        bea.predict(api_name="/share_quiz")
    with pytest.raises(Exception, match=r"^Generate a quiz first, then share it.$"):
        outsider.predict(api_name="/share_quiz")
    with pytest.raises(Exception, match=r"^Generate or join a quiz first.$"):
        outsider.predict("json", api_name="/export_quiz")
    with pytest.raises(Exception, match=r"^No quiz in this session yet: call /generate_quiz or /join_quiz first"):
        outsider.predict([0] * 10, api_name="/grade_quiz")


def test_thirty_students_submitting_at_once_are_each_stored_exactly_once(app):
    teacher = share(app.url)
    key = key_of(teacher.quiz)

    def student(i: int) -> tuple[int, int]:
        me = client(app.url)
        quiz = me.predict(teacher.code, f"Student {i:02d}", api_name="/join_quiz")
        right = i % 11  # the first `right` answers right, the others wrong
        answers = [key[q] if q < right else wrong(quiz, q, nth=i % 3) for q in range(10)]
        first = me.predict(answers, api_name="/grade_quiz")["score"]
        again = me.predict(answers, api_name="/grade_quiz")["score"] if i % 3 == 0 else first  # a double submit
        return first, again

    with ThreadPoolExecutor(max_workers=30) as pool:
        scores = list(pool.map(student, range(30)))
    assert scores == [(i % 11, i % 11) for i in range(30)]

    results = teacher.client.predict(teacher.code, teacher.token, api_name="/class_results")
    participants = sorted((p["name"], p["score"]) for p in results["participants"])
    assert participants == [(f"Student {i:02d}", i % 11) for i in range(30)]
    assert results["distribution"] == {str(s): sum(i % 11 == s for i in range(30)) for s in range(11)}
    assert results["questions"][0]["correct_share"] == pytest.approx(sum(i % 11 > 0 for i in range(30)) / 30)
    assert results["markdown"].startswith(f"### Class {teacher.code}: photosynthesis · 30 participants")


def test_a_double_submit_of_one_attempt_is_stored_once(app):
    """Four grade requests of one session sent at once (a double click, a retried request) carry the
    same attempt: the class gets one result, and every request gets the same score."""
    teacher = share(app.url)
    student = client(app.url)
    student.predict(teacher.code, "Quick Clicker", api_name="/join_quiz")
    answers = key_of(teacher.quiz)[:7] + [None] * 3
    jobs = [student.submit(answers, api_name="/grade_quiz") for _ in range(4)]
    assert [job.result(timeout=60)["score"] for job in jobs] == [7] * 4
    results = teacher.client.predict(teacher.code, teacher.token, api_name="/class_results")
    assert [(p["name"], p["score"]) for p in results["participants"]] == [("Quick Clicker", 7)]


# -- exports ---------------------------------------------------------------------------------------


def test_exports_carry_the_key_only_once_it_is_no_secret(app):
    teacher = share(app.url)
    quiz, key = teacher.quiz, key_of(teacher.quiz)
    questions = [q["question"] for q in quiz["questions"]]
    options = [q["options"] for q in quiz["questions"]]
    student = client(app.url)
    student.predict(teacher.code, "Ada", api_name="/join_quiz")

    # Before grading: the student's copy, questions and options only.
    student_json = json.loads(read(student.predict("json", api_name="/export_quiz")))
    assert student_json["audience"] == "student"
    assert [q["question"] for q in student_json["questions"]] == questions
    assert [list(q["options"].values()) for q in student_json["questions"]] == options
    assert not json_keys(student_json) & {"answer", "explanation"}
    csv_path = student.predict("csv", api_name="/export_quiz")
    assert Path(csv_path).name == "photosynthesis-student.csv"
    rows = list(csv.reader(io.StringIO(read(csv_path).decode("utf-8-sig"))))
    assert rows[0] == ["question", "A", "B", "C", "D"] and [r[0] for r in rows[1:]] == questions
    assert [q.answer for q in import_csv(read(csv_path))] == [None] * 10
    page = read(student.predict("html", api_name="/export_quiz")).decode()
    assert all(q.replace("'", "&#x27;") in page for q in questions)
    assert "Answer key" not in page
    for data in (json.dumps(student_json), read(csv_path).decode("utf-8-sig"), page):
        assert not any(explanation[:25] in data for explanation in EXPLANATIONS)
    with pytest.raises(Exception, match=r"^A GIFT file carries the answer key: submit your answers first, or share "
                                        r"the quiz and download it from the teacher's page.$"):
        student.predict("gift", api_name="/export_quiz")

    # After grading: the key is no secret to the student any more, and the files carry it.
    student.predict([0] * 10, api_name="/grade_quiz")
    graded_json = json.loads(read(student.predict("json", api_name="/export_quiz")))
    assert graded_json["audience"] == "teacher"
    assert [q["answer"] for q in graded_json["questions"]] == ["ABCD"[k] for k in key]
    assert {q["explanation"] for q in graded_json["questions"]} <= set(EXPLANATIONS)
    assert "Answer key" in read(student.predict("html", api_name="/export_quiz")).decode()
    assert [q.answer for q in gift_to_questions(read(student.predict("gift", api_name="/export_quiz")).decode())] == key

    # The teacher's files read back to the same quiz: JSON through the quiz parser, CSV through
    # import_csv, GIFT through a strict reader of Moodle's grammar.
    expected = [(q, o, k) for q, o, k in zip(questions, options, key)]
    teacher_json = teacher.client.predict("json", api_name="/export_quiz")
    assert Path(teacher_json).name == "photosynthesis-teacher.json"
    parsed = parse_quiz(read(teacher_json).decode())
    assert [(q.question, q.options, q.answer) for q in parsed] == expected
    assert all(q.explanation in EXPLANATIONS for q in parsed)
    from_csv = import_csv(read(teacher.client.predict("csv", api_name="/export_quiz")))
    assert [(q.question, q.options, q.answer) for q in from_csv] == expected
    gift_path = teacher.client.predict("gift", api_name="/export_quiz")
    assert Path(gift_path).name == "photosynthesis-gift.txt"
    gift = read(gift_path).decode()
    assert [(g.text, [a.text for a in g.answers]) for g in read_gift(gift)] == list(zip(questions, options))
    assert [(q.question, q.options, q.answer) for q in gift_to_questions(gift)] == expected
    teacher_page = read(teacher.client.predict("html", api_name="/export_quiz")).decode()
    assert teacher_page.index("Answer key") > max(teacher_page.index(o.replace("'", "&#x27;")) for o in options[-1])


# -- quizzes about the user's material --------------------------------------------------------------


def test_a_quiz_about_the_material_sent_asks_only_about_it(app):
    me = client(app.url)
    quiz = me.predict("", "easy", MATERIAL, "auto", api_name="/generate_quiz")
    assert (quiz["topic"], quiz["difficulty"], len(quiz["questions"])) == ("Volcanoes of Iceland", "easy", 10)
    sentences = material_sentences(MATERIAL)
    for q in quiz["questions"]:
        start = re.fullmatch(r'In the material, how does this sentence end: "(.*) \.\.\."\?', q["question"]).group(1)
        assert any(s.startswith(start) for s in sentences), start
    assert not json_keys(quiz) & KEY_FIELDS
    result = me.predict([None] * 10, api_name="/grade_quiz")
    for f in result["feedback"]:
        # Each explanation ends with the sentence it comes from, checked against the material.
        quote = re.fullmatch(r'The material says so\. \u2014 "(.*)"', f["explanation"]).group(1)
        assert quote in MATERIAL and quote.rstrip(".").endswith(f["correct_text"])
    assert app.backend.quiz_writer.topics[-1] == "Volcanoes of Iceland"
    assert app.backend.quiz_writer.sections[-1] == MATERIAL.strip()

    # A topic names the quiz; a chosen language reaches the model.
    named = me.predict("Icelandic volcanoes", "hard", MATERIAL, "French", api_name="/generate_quiz")
    assert named["topic"] == "Icelandic volcanoes"
    prompt = app.backend.calls[-1][1][0][-1]["content"]
    assert prompt.startswith("Write 3 multiple-choice questions about the material below (Icelandic volcanoes).")
    assert "Language: French. Write the questions, options and explanations in French." in prompt


def test_material_too_long_or_without_text_is_one_clear_line(app):
    me = client(app.url)
    calls = len(app.backend.calls)
    with pytest.raises(Exception, match=r"^'material' is too long: 200,001 characters, the limit is 200,000\. "
                                        r"Shorten it or send it in parts\.$"):
        me.predict("", "easy", "z" * 200_001, "auto", api_name="/generate_quiz")
    with pytest.raises(Exception, match=r"^'the material' is empty: give the notes or text the quiz should be "
                                        r"about$"):
        me.predict("", "easy", "\x0c\x07 \n", "auto", api_name="/generate_quiz")
    with pytest.raises(Exception, match=r"^The quiz topic is empty"):
        me.predict("", "easy", "   \n  ", "auto", api_name="/generate_quiz")
    assert len(app.backend.calls) == calls  # refused before the model was asked
    raw = call(app.url, "generate_quiz", ["", "easy", "z" * 200_001, "auto"])
    assert error_message(raw) == ("'material' is too long: 200,001 characters, the limit is 200,000. "
                                  "Shorten it or send it in parts.")


def test_the_class_snippet_in_the_readme_runs(app, capsys):
    docs = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    snippet = next(block for block in re.findall(r"```python\n(.*?)```", docs, re.DOTALL) if "/share_quiz" in block)
    assert 'open("notes.md", encoding="utf-8").read()' in snippet
    code = snippet.replace("http://127.0.0.1:7860/", app.url).replace(
        'open("notes.md", encoding="utf-8").read()', repr(MATERIAL))
    exec(compile(code, "README.md", "exec"), {"Client": Client})
    printed = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("Loaded as API")]
    assert re.fullmatch(r"\d+", printed[0])
    assert printed[1] == f"[('Ada', {printed[0]})]"
    assert printed[2].startswith("// photosynthesis (medium), 10 questions, from Llama Tutor")
    assert app.backend.quiz_writer.topics[-1] == "Volcanoes of Iceland"

"""Grading: scores, per-question feedback, the Markdown result panel and the retry quiz."""

from __future__ import annotations

import pytest

from quiz import Question, Quiz, grade, retry_quiz
from quiz.grade import CORRECT, INCORRECT, UNANSWERED


@pytest.fixture
def quiz() -> Quiz:
    return Quiz("geography", "easy", [
        Question("What is the capital of France?", ["Berlin", "Paris", "Rome", "Madrid"], 1,
                 "Paris has been the capital for centuries."),
        Question("Which is the largest ocean?", ["Atlantic", "Indian", "Arctic", "Pacific"], 3),
        Question("Which river flows through Cairo?", ["Nile", "Amazon", "Danube", "Volga"], 0,
                 "The Nile runs through the middle of Cairo."),
    ], seed=11)


def test_all_right(quiz: Quiz) -> None:
    result = grade(quiz, [1, 3, 0])
    assert (result.score, result.total, result.percent, result.mistakes) == (3, 3, 100, [])
    assert [f.status for f in result.feedback] == [CORRECT] * 3
    markdown = result.to_markdown()
    assert markdown.startswith("### Score: 3/3 (100%)\n")
    assert markdown.count("✓") == 3 and "✗" not in markdown and "Right answer" not in markdown


def test_all_wrong_shows_the_right_answers(quiz: Quiz) -> None:
    result = grade(quiz, [0, 0, 3])
    assert (result.score, result.total, result.mistakes) == (0, 3, [0, 1, 2])
    first = result.feedback[0]
    assert (first.status, first.chosen, first.chosen_text, first.correct, first.correct_text) == (
        INCORRECT, 0, "Berlin", 1, "Paris")
    markdown = result.to_markdown()
    assert "Score: 0/3" in markdown and markdown.count("✗") == 3
    assert "Your answer: A) Berlin" in markdown and "Right answer: **B) Paris**" in markdown
    assert "Right answer: **D) Pacific**" in markdown and "Right answer: **A) Nile**" in markdown


def test_unanswered_questions_count_as_mistakes(quiz: Quiz) -> None:
    result = grade(quiz, [1, None, None])
    assert (result.score, result.mistakes) == (1, [1, 2])
    assert [f.status for f in result.feedback] == [CORRECT, UNANSWERED, UNANSWERED]
    assert result.feedback[1].chosen_text is None
    assert result.to_markdown().count("Your answer: not answered") == 2


def test_explanations_are_shown_where_there_is_one(quiz: Quiz) -> None:
    result = grade(quiz, [1, 0, 1])
    assert [f.explanation for f in result.feedback] == [
        "Paris has been the capital for centuries.", None, "The Nile runs through the middle of Cairo."]
    markdown = result.to_markdown()
    assert "*Why:* Paris has been the capital for centuries." in markdown
    assert "*Why:* The Nile runs through the middle of Cairo." in markdown
    assert markdown.count("*Why:*") == 2


def test_the_markdown_panel_layout(quiz: Quiz) -> None:
    assert grade(quiz, [1, 0, None]).to_markdown() == (
        "### Score: 1/3 (33%)\n\n"
        "**1. ✓** What is the capital of France?  \nYour answer: B) Paris  \n"
        "*Why:* Paris has been the capital for centuries.\n\n"
        "**2. ✗** Which is the largest ocean?  \nYour answer: A) Atlantic  \nRight answer: **D) Pacific**\n\n"
        "**3. ✗** Which river flows through Cairo?  \nYour answer: not answered  \nRight answer: **A) Nile**  \n"
        "*Why:* The Nile runs through the middle of Cairo.\n")


def test_model_text_cannot_inject_html_or_markdown() -> None:
    quiz = Quiz("web", "hard", [Question('<img src=x onerror="alert(1)"> Which **tag**?\n- item\n1. step',
                                         ["<script>alert(1)</script>", "[click](http://evil)", "a & b", "x"], 2,
                                         "Use <b>bold</b> & [links](http://evil)")])
    markdown = grade(quiz, [0]).to_markdown()
    assert "<" not in markdown and ">" not in markdown
    assert "&lt;script&gt;" in markdown and "a &amp; b" in markdown
    assert "\\[links\\](http://evil)" in markdown and "\\*\\*tag\\*\\*" in markdown
    assert "  \n\\- item  \n1\\. step" in markdown


def test_retry_quiz_holds_the_mistakes_with_their_keys(quiz: Quiz) -> None:
    result = grade(quiz, [1, 0, None])
    retry = retry_quiz(quiz, result, seed=3)
    assert (retry.topic, retry.difficulty, retry.seed) == ("geography", "easy", 3)
    assert [q.question for q in retry.questions] == ["Which is the largest ocean?", "Which river flows through Cairo?"]
    assert [q.correct_option for q in retry.questions] == ["Pacific", "Nile"]
    assert [sorted(q.options) for q in retry.questions] == [sorted(quiz.questions[1].options),
                                                            sorted(quiz.questions[2].options)]
    assert retry.questions[1].explanation == "The Nile runs through the middle of Cairo."
    assert grade(retry, [q.answer for q in retry.questions]).score == 2


def test_retry_reshuffles_the_options(quiz: Quiz) -> None:
    result = grade(quiz, [0, 0, 3])
    orders = {tuple(tuple(q.options) for q in retry_quiz(quiz, result, seed=s).questions) for s in range(20)}
    assert len(orders) > 1


def test_nothing_to_retry_is_a_clear_error(quiz: Quiz) -> None:
    with pytest.raises(ValueError, match="nothing to retry: every question was answered correctly"):
        retry_quiz(quiz, grade(quiz, [1, 3, 0]))


@pytest.mark.parametrize("answers, message", [
    ([1, 3], "got 2 answers for a 3-question quiz: pass one entry per question, None for an unanswered one"),
    ([1, 3, 0, 1], "got 4 answers for a 3-question quiz"),
    ([1, 4, 0], "answer 2 is 4, but question 2 has options 0-3"),
    ([1, -1, 0], "answer 2 is -1, but question 2 has options 0-3"),
    ([1, "B", 0], "answer 2 must be an option index or None, got 'B'"),
    ([True, 3, 0], "answer 1 must be an option index or None, got True"),
])
def test_bad_answers_are_clear_errors(quiz: Quiz, answers: list, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        grade(quiz, answers)


def test_a_question_without_a_key_cannot_be_graded() -> None:
    quiz = Quiz("x", "easy", [Question("Unkeyed?", ["a", "b"], None)])
    with pytest.raises(ValueError, match="question 1 has no answer key, so it cannot be graded"):
        grade(quiz, [0])


def test_a_question_rejects_an_answer_outside_its_options() -> None:
    with pytest.raises(ValueError, match="answer index 2 is outside the 2 options"):
        Question("Two options?", ["a", "b"], 2)

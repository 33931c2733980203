"""Quizzes for Llama Tutor: written by the model, parsed from whatever layout it chose, graded.

    from quiz import generate_quiz, grade
    quiz = generate_quiz(backend, "the French Revolution", n=10, difficulty="medium")
    result = grade(quiz, answers)        # answers: one option index (or None) per question
    print(result.to_markdown())

    text = read_material("cells.pdf", data)  # .txt, .md or .pdf; MaterialError says what is wrong
    quiz = generate_quiz(backend, "", material=text, language="French")

Importing this package loads the standard library only (no torch, no transformers).
"""

from quiz.generate import QuizGenerationError, generate_quiz
from quiz.grade import QuestionFeedback, QuizResult, grade, render_markdown, retry_quiz
from quiz.material import MaterialError, material_title, read_material
from quiz.parse import extract_choice, parse_quiz
from quiz.question import Question, Quiz

__all__ = [
    "Question", "Quiz", "QuizResult", "QuestionFeedback", "QuizGenerationError",
    "parse_quiz", "extract_choice", "generate_quiz", "grade", "retry_quiz", "render_markdown",
    "read_material", "material_title", "MaterialError",
]

"""The prompt that asks the model for quiz questions.

One layout only, shown by a worked example: small (3B) models copy a concrete example far more
reliably than they follow a description, and the parser reads exactly this layout first.
"""

from __future__ import annotations

SYSTEM = (
    "You are a patient teacher who writes clear, accurate multiple-choice quiz questions. "
    "You follow the requested layout exactly and write nothing else."
)

DIFFICULTY = {
    "easy": "easy: basic facts and definitions a beginner meets first, in plain words, with no tricks",
    "medium": "medium: test understanding, not just recall - apply an idea, explain a cause, compare two concepts",
    "hard": ("hard: multi-step reasoning, subtle distinctions and common misconceptions; every wrong "
             "option must look plausible to a student who only half understands"),
}

# Each chunk of a quiz asks for a different angle, so parallel requests do not write the same
# questions and two users asking for the same topic get different quizzes.
FOCUSES = (
    "key terms and definitions", "how and why it works", "examples and real-world applications",
    "comparisons and differences", "common mistakes and misconceptions",
    "important facts, people, places, dates or numbers", "causes and effects",
    "a short scenario or problem to solve", "the main ideas and their consequences",
)

# The worked example, on a topic far from most requests. Questions copied from it are rejected.
EXAMPLE_QUESTIONS = (
    "Which gas do plants take in from the air to make their food?",
    "What is the main job of the roots of a plant?",
)
EXAMPLE = f"""1. {EXAMPLE_QUESTIONS[0]}
A) Oxygen
B) Nitrogen
C) Carbon dioxide
D) Helium
Answer: C
Explanation: In photosynthesis, plants combine carbon dioxide and water into sugar using light.

2. {EXAMPLE_QUESTIONS[1]}
A) To take in water and minerals from the soil
B) To make seeds
C) To turn sunlight into sugar
D) To attract insects
Answer: A
Explanation: Roots anchor the plant and absorb water and dissolved minerals."""


def build_messages(topic: str, count: int, difficulty: str, focus: str, avoid: list[str]) -> list[dict]:
    """The conversation for one request: ``count`` questions on ``topic``."""
    lines = [
        f"Write {count} multiple-choice question{'s' if count > 1 else ''} about: {topic}",
        f"Difficulty: {DIFFICULTY[difficulty]}.",
        f"Focus on {focus}.",
        "",
        "Rules:",
        "- Number the questions 1, 2, 3 ...",
        "- Each question has exactly 4 options labelled A) B) C) D), and exactly one is correct.",
        "- Every option is a specific answer. Never write \"All of the above\", \"None of the above\" "
        "or an option that combines other options (like \"Both A and B\").",
        "- After the options write \"Answer:\" with the correct letter, then \"Explanation:\" with one "
        "short sentence.",
        "- Write only the questions: no introduction, no closing remarks.",
    ]
    if avoid:
        lines += ["", "Do not repeat these questions, which are already in the quiz:"]
        lines += [f"- {stem[:120]}" for stem in avoid]
    lines += ["", "Use exactly this layout (the example is about a different topic - do not copy it):",
              "", EXAMPLE]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]

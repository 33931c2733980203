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


# -- JSON mode: for backends that constrain output to a schema (llama.cpp, OpenAI-compatible servers) --
# The schema fixes the structure, so the prompt only has to ask for good content. Everything that does
# not depend on the request comes first and the topic last, so a backend that reuses the KV cache of a
# shared prefix (llama.cpp here) reads only the last few lines for a new quiz.
JSON_SYSTEM = (
    "You are a patient teacher who writes clear, accurate multiple-choice quiz questions as JSON. "
    "Each question has exactly 4 specific options, exactly one of them correct; never \"All of the above\", "
    "\"None of the above\" or an option that refers to other options. \"answer\" is the letter of the correct "
    "option (A-D) and \"explanation\" is one short sentence saying why it is right."
)
# Lengths in characters: room for real questions, and a bound on what a runaway model can write.
STEM_CHARS, OPTION_CHARS, EXPLANATION_CHARS = 300, 150, 300


def quiz_schema(count: int) -> dict:
    """The JSON schema of a reply with exactly ``count`` questions."""
    question = {
        "type": "object",
        "properties": {
            "question": {"type": "string", "minLength": 8, "maxLength": STEM_CHARS},
            "options": {"type": "array", "minItems": 4, "maxItems": 4,
                        "items": {"type": "string", "minLength": 1, "maxLength": OPTION_CHARS}},
            "answer": {"type": "string", "enum": ["A", "B", "C", "D"]},
            "explanation": {"type": "string", "minLength": 8, "maxLength": EXPLANATION_CHARS},
        },
        "required": ["question", "options", "answer", "explanation"],
        "additionalProperties": False,
    }
    return {"type": "object", "properties": {"questions": {"type": "array", "minItems": count, "maxItems": count,
                                                           "items": question}},
            "required": ["questions"], "additionalProperties": False}


def build_json_messages(topic: str, count: int, difficulty: str, avoid: list[str]) -> list[dict]:
    """The conversation for one JSON-mode request: ``count`` questions on ``topic``."""
    lines = ["Write the quiz below as JSON: {\"questions\": [{\"question\": ..., \"options\": [4 texts], "
             "\"answer\": \"A\"-\"D\", \"explanation\": ...}, ...]}.", ""]
    if avoid:
        lines += ["Do not repeat these questions, which are already in the quiz:"]
        lines += [f"- {stem[:120]}" for stem in avoid] + [""]
    lines += [f"Difficulty: {DIFFICULTY[difficulty]}.",
              f"Number of questions: {count}.",
              f"Topic: {topic}"]
    return [{"role": "system", "content": JSON_SYSTEM}, {"role": "user", "content": "\n".join(lines)}]

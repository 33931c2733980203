"""The prompt that asks the model for quiz questions.

One layout only, shown by a worked example: small (3B) models copy a concrete example far more
reliably than they follow a description, and the parser reads exactly this layout first.

A quiz about the user's material gets one section of the material per request, and every question
must carry a "Quote:" copied from it (checked afterwards). The language line names the language the
quiz is written in; the labels and JSON keys stay English, because that is what the parser and the
schema expect first.
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


# The example for quizzes about the user's material: a passage, and questions quoting it word for word.
EXAMPLE_PASSAGE = ("Plants take in carbon dioxide from the air through tiny pores in their leaves. Their roots "
                   "take in water and minerals from the soil and hold the plant in place.")
EXAMPLE_QUOTES = ("Plants take in carbon dioxide from the air through tiny pores in their leaves.",
                  "Their roots take in water and minerals from the soil")
EXAMPLE_FROM_MATERIAL = EXAMPLE.replace(
    "Answer: C\n", f'Answer: C\nQuote: "{EXAMPLE_QUOTES[0]}"\n').replace(
    "Answer: A\n", f'Answer: A\nQuote: "{EXAMPLE_QUOTES[1]}"\n')


def language_line(chosen: str | None, detected: str | None, about: str) -> str:
    """The prompt line that says which language to write in: the one chosen, the one ``about`` (the topic
    or the material) was recognised to be in, or else whatever it is written in."""
    what = "Write the questions, options and explanations in"
    if chosen:
        return f"Language: {chosen}. {what} {chosen}."
    if detected:
        return f"Language: {detected} (the language of the {about}). {what} {detected}."
    return f"Language: the one the {about} is written in. {what} that language."


def _material_block(material: str, part: tuple[int, int]) -> list[str]:
    label = "The material" if part[1] == 1 else f"The material (part {part[0]} of {part[1]})"
    return [f"{label}:", '"""', material, '"""']


def build_messages(topic: str, count: int, difficulty: str, focus: str, avoid: list[str], *,
                   language: str | None = None, material: str | None = None,
                   part: tuple[int, int] = (1, 1)) -> list[dict]:
    """The conversation for one request: ``count`` questions on ``topic``, or about ``material`` (one
    section of the user's material, part ``part[0]`` of ``part[1]``), in the language ``language`` says."""
    plural = "s" if count > 1 else ""
    if material is None:
        lines = [f"Write {count} multiple-choice question{plural} about: {topic}"]
        answer_rule = ("- After the options write \"Answer:\" with the correct letter, then \"Explanation:\" with one "
                       "short sentence.")
    else:
        lines = [f"Write {count} multiple-choice question{plural} about the material below ({topic}).",
                 "Use only what the material says: every question must be answerable from the material alone."]
        answer_rule = ("- After the options write \"Answer:\" with the correct letter, then \"Quote:\" with the "
                       "sentence of the material that gives the answer, copied word for word, then "
                       "\"Explanation:\" with one short sentence.")
    lines += [
        f"Difficulty: {DIFFICULTY[difficulty]}.",
        f"Focus on {focus}.",
        language or language_line(None, None, "topic" if material is None else "material"),
        "",
        "Rules:",
        "- Number the questions 1, 2, 3 ...",
        "- Each question has exactly 4 options labelled A) B) C) D), and exactly one is correct.",
        "- Every option is a specific answer. Never write \"All of the above\", \"None of the above\" "
        "or an option that combines other options (like \"Both A and B\").",
        answer_rule,
        "- Keep the labels A) B) C) D), \"Answer:\"" + (", \"Quote:\"" if material is not None else "")
        + " and \"Explanation:\" in English, as in the example.",
        "- Write only the questions: no introduction, no closing remarks.",
    ]
    if avoid:
        lines += ["", "Do not repeat these questions, which are already in the quiz:"]
        lines += [f"- {stem[:120]}" for stem in avoid]
    if material is None:
        lines += ["", "Use exactly this layout (the example is about a different topic - do not copy it):",
                  "", EXAMPLE]
    else:
        lines += ["", "Use exactly this layout (the example is about a different text - do not copy it):", "",
                  f"Example text: \"{EXAMPLE_PASSAGE}\"", "", EXAMPLE_FROM_MATERIAL, "",
                  *_material_block(material, part), "",
                  f"Now write {count} question{plural} about this material, each with Answer, Quote and "
                  f"Explanation lines."]
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
JSON_MATERIAL_RULE = ("Write only about the material you are given: every question must be answerable from it "
                      "alone. \"quote\" is the sentence of the material that gives the answer, copied word for word.")
# Lengths in characters: room for real questions, and a bound on what a runaway model can write.
STEM_CHARS, OPTION_CHARS, EXPLANATION_CHARS, QUOTE_CHARS = 300, 150, 300, 300


def quiz_schema(count: int, *, quote: bool = False) -> dict:
    """The JSON schema of a reply with exactly ``count`` questions (each with a "quote" of the material,
    before its explanation, when ``quote``)."""
    properties: dict = {
        "question": {"type": "string", "minLength": 8, "maxLength": STEM_CHARS},
        "options": {"type": "array", "minItems": 4, "maxItems": 4,
                    "items": {"type": "string", "minLength": 1, "maxLength": OPTION_CHARS}},
        "answer": {"type": "string", "enum": ["A", "B", "C", "D"]},
    }
    if quote:
        properties["quote"] = {"type": "string", "minLength": 12, "maxLength": QUOTE_CHARS}
    properties["explanation"] = {"type": "string", "minLength": 8, "maxLength": EXPLANATION_CHARS}
    question = {"type": "object", "properties": properties, "required": list(properties),
                "additionalProperties": False}
    return {"type": "object", "properties": {"questions": {"type": "array", "minItems": count, "maxItems": count,
                                                           "items": question}},
            "required": ["questions"], "additionalProperties": False}


def build_json_messages(topic: str, count: int, difficulty: str, avoid: list[str], *, language: str | None = None,
                        material: str | None = None, part: tuple[int, int] = (1, 1)) -> list[dict]:
    """The conversation for one JSON-mode request: ``count`` questions on ``topic``, or about ``material``
    (one section of the user's material), in the language ``language`` says."""
    quote = "" if material is None else "\"quote\": ..., "
    lines = ["Write the quiz below as JSON: {\"questions\": [{\"question\": ..., \"options\": [4 texts], "
             f"\"answer\": \"A\"-\"D\", {quote}\"explanation\": ...}}, ...]}}. Keep the JSON keys in English.", ""]
    if avoid:
        lines += ["Do not repeat these questions, which are already in the quiz:"]
        lines += [f"- {stem[:120]}" for stem in avoid] + [""]
    # The language line before the difficulty: for most topics it is the same line, so it stays in the
    # prefix a backend's prompt cache keeps (see generate.warm_up).
    lines += [language or language_line(None, None, "topic" if material is None else "material"),
              f"Difficulty: {DIFFICULTY[difficulty]}.",
              f"Number of questions: {count}."]
    if material is not None:
        lines += [*_material_block(material, part)]
    lines.append(f"Topic: {topic}")
    system = JSON_SYSTEM if material is None else f"{JSON_SYSTEM} {JSON_MATERIAL_RULE}"
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]

"""Write a fresh quiz with a model: prompt in chunks, parse, validate, balance, top up.

    from quiz import generate_quiz
    quiz = generate_quiz(backend, "photosynthesis", n=10, difficulty="easy")
    quiz = generate_quiz(backend, "", material=read_material("cells.pdf", data), language="French")

Any object with the ``inference.backend.Backend`` protocol works. Standard library only at import:
``inference.backend`` is imported when a quiz is generated.
"""

from __future__ import annotations

import logging
import math
import random
import secrets
import unicodedata
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from quiz._language import check_language, detect_language
from quiz._prompt import DIFFICULTY, FOCUSES, build_json_messages, build_messages, language_line, quiz_schema
from quiz._quotes import Material
from quiz._rounds import (CHUNK_SIZE, MATERIAL_JSON_CHUNK, TOKENS_PER_JSON_QUESTION, TOKENS_PER_QUESTION,
                          Collector, MaterialPlan, config, material_round, stream_json)
from quiz._validate import REASONS
from quiz.material import MaterialError, clean_material, material_title
from quiz.parse import parse_sourced
from quiz.question import Question, Quiz

if TYPE_CHECKING:
    from inference.backend import Backend

__all__ = ["generate_quiz", "QuizGenerationError", "MaterialError", "clean_topic", "check_difficulty", "warm_up",
           "constrained", "CHUNK_SIZE", "MATERIAL_JSON_CHUNK", "TOKENS_PER_QUESTION", "TOKENS_PER_JSON_QUESTION",
           "MAX_TOPIC_CHARS", "MAX_QUESTIONS", "MAX_EXTRA_ROUNDS"]

log = logging.getLogger(__name__)

MAX_TOPIC_CHARS = 200
MAX_QUESTIONS = 50
MAX_EXTRA_ROUNDS = 3


class QuizGenerationError(RuntimeError):
    """The model did not write enough valid questions; ``raw_outputs`` keeps everything it wrote
    and ``rejections`` counts why questions were turned down."""

    def __init__(self, message: str, raw_outputs: list[str], rejections: Counter) -> None:
        super().__init__(message)
        self.raw_outputs = raw_outputs
        self.rejections = rejections


def clean_topic(topic: str) -> str:
    """The topic as it goes into the prompt: control characters removed, spaces squeezed, at most
    ``MAX_TOPIC_CHARS`` characters. An empty topic is a ValueError."""
    if not isinstance(topic, str):
        raise TypeError(f"topic must be a str, got {type(topic).__name__}")
    # Whitespace of any kind becomes a space; other control and format characters go.
    kept = "".join(" " if c.isspace() else "" if unicodedata.category(c)[0] == "C" else c for c in topic)
    cleaned = " ".join(kept.split())
    if len(cleaned) > MAX_TOPIC_CHARS:
        cut = cleaned[:MAX_TOPIC_CHARS]
        cleaned = cut.rsplit(" ", 1)[0] if " " in cut else cut  # end on a whole word
    if not cleaned:
        raise ValueError("the quiz topic is empty: type a subject to be quizzed on, e.g. 'photosynthesis'")
    return cleaned


def check_difficulty(difficulty: str) -> str:
    """The difficulty in lower case; a clear ValueError unless it is easy, medium or hard."""
    value = difficulty.strip().lower() if isinstance(difficulty, str) else difficulty
    if value not in DIFFICULTY:
        raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTY)}, got {difficulty!r}")
    return value


def warm_up(backend: Backend) -> bool:
    """Let a backend that keeps prompt caches read the quiz instructions once now (they open every quiz
    prompt; only the difficulty and topic lines differ), so the first quiz starts as fast as later ones.
    Returns whether it did."""
    remember = getattr(backend, "remember", None)
    if remember is None or not constrained(backend):
        return False
    remember(build_json_messages("", 10, "medium", []))
    return True


def constrained(backend: Backend) -> bool:
    """Whether ``backend`` can constrain its reply to a JSON schema (then a quiz always parses)."""
    return bool(getattr(getattr(backend, "capabilities", None), "json_schema", False))


def _requests(topic: str, missing: int, difficulty: str, rng: random.Random, avoid: list[str], language: str
              ) -> list[list[dict]]:
    chunks = math.ceil(missing / CHUNK_SIZE)
    focuses = rng.sample(FOCUSES, min(chunks, len(FOCUSES)))
    return [build_messages(topic, CHUNK_SIZE, difficulty, focuses[i % len(focuses)], avoid, language=language)
            for i in range(chunks)]


def _accept(replies: list[str], collector: Collector) -> None:
    """Parse the replies and offer every question to the collector, in order."""
    for reply in replies:
        found = parse_sourced(reply)
        if not found:
            collector.rejected["reply without questions"] += 1
        for one in found:
            collector.offer(one)


def _topic_round(backend: Backend, collector: Collector, *, topic: str, difficulty: str, language: str,
                 rng: random.Random, json_mode: bool, on_progress: Callable[[int, int], None] | None) -> list[str]:
    """One round of requests for the questions still missing from a quiz on a topic."""
    avoid = [q.question for q in collector.questions[-10:]]
    missing = collector.n - len(collector.questions)
    if json_mode:
        messages = build_json_messages(topic, missing, difficulty, avoid, language=language)
        generation = config(missing, rng.randrange(2**31), quiz_schema(missing))
        return [stream_json(backend, messages, generation, collector, collector.offer, on_progress)]
    conversations = _requests(topic, missing, difficulty, rng, avoid, language)
    replies = backend.chat_batch(conversations, config(CHUNK_SIZE, rng.randrange(2**31)))
    _accept(replies, collector)
    return list(replies)


def _quiz_topic(topic: str | None, material: str | None) -> str:
    """The cleaned topic; with material and no topic, a title taken from the material."""
    if topic is None and material is not None:
        topic = ""
    try:
        return clean_topic(topic)
    except ValueError:
        if material is None:
            raise
        return clean_topic(material_title(material))


def _failure(topic: str, n: int, accepted: int, rounds: int, rejected: Counter, raw: list[str],
             from_material: bool) -> QuizGenerationError:
    order = {reason: i for i, reason in enumerate(REASONS)}
    most_first = sorted(rejected.items(), key=lambda item: (-item[1], order.get(item[0], len(order))))
    counts = ", ".join(f"{count} {reason}" for reason, count in most_first)
    fix = ("ask for fewer questions, give more material" if from_material else "choose a broader topic")
    message = (f"could not write {n} valid questions about {topic!r}: got {accepted} after {rounds} "
               f"round{'' if rounds == 1 else 's'} "
               f"(rejected: {counts or 'none'}); try again, {fix}, or use a stronger "
               f"or fine-tuned model")
    return QuizGenerationError(message, raw, rejected)


def generate_quiz(backend: Backend, topic: str, n: int = 10, difficulty: str = "medium", *,
                  material: str | None = None, language: str | None = None,
                  seed: int | None = None, max_extra_rounds: int = MAX_EXTRA_ROUNDS,
                  on_progress: Callable[[int, int], None] | None = None,
                  on_question: Callable[[int, Question], None] | None = None) -> Quiz:
    """Write a quiz of exactly ``n`` validated questions about ``topic``, or about ``material``.

    A backend that can constrain its output to a JSON schema gets one streamed request for all the
    questions, in a schema that makes every reply parse; each question is validated as soon as its
    JSON object is complete. Other backends get ``chat_batch`` requests in chunks of ``CHUNK_SIZE``
    questions, each with a different focus, read by the tolerant parser. A question is kept when it
    has a stem, 4 distinct non-empty options, no "all/none of the above"-style option, a key, and is
    new. Missing questions are asked for again, at most ``max_extra_rounds`` times, then
    ``QuizGenerationError`` says what went wrong.

    ``material`` (the user's notes, pasted or from ``quiz.material.read_material``): the questions are
    about it only. It is cut into sections that fit the context and the ``n`` questions are spread over
    them in proportion to their length, so a long document is covered from start to end. Each question
    must quote the passage it comes from; a quote that is not in the material rejects the question
    (counted like the other reasons), and a checked quote ends its explanation. ``topic`` may then be
    empty: the material's first heading (or first line) names the quiz. ``MaterialError`` for empty or
    over-long material.

    ``language``: the language to write the quiz in ("French", "de", "pt-BR"); None (or "auto") writes
    it in the language of the material or topic. The layout labels and JSON keys stay English.

    The options are shuffled so the key's position is uniform. ``seed=None`` draws a fresh sampling
    seed, so every call gives a new quiz, and places the keys from the operating system's secret
    random source: nothing a quiz-taker can see (the questions, the option order, even the sampling
    seed stored on the quiz) predicts them. An explicit ``seed`` reproduces the whole quiz, key
    positions included — for tests and offline use, never for quizzes shown to students.
    ``on_progress(done, n)`` is called after each round (and each question in JSON mode);
    ``on_question(index, question)`` as each question is accepted, already in its final form.
    """
    if material is not None:
        material = clean_material(material)
    topic = _quiz_topic(topic, material)
    difficulty = check_difficulty(difficulty)
    if not isinstance(n, int) or not 1 <= n <= MAX_QUESTIONS:
        raise ValueError(f"n must be a whole number from 1 to {MAX_QUESTIONS}, got {n!r}")
    if not isinstance(max_extra_rounds, int) or max_extra_rounds < 0:
        raise ValueError(f"max_extra_rounds must be 0 or more, got {max_extra_rounds!r}")
    chosen = check_language(language)
    detected = None if chosen else detect_language(topic if material is None else material)
    language_text = language_line(chosen, detected, "topic" if material is None else "material")
    key_rng = random.Random(f"key-positions-{seed}") if seed is not None else secrets.SystemRandom()
    seed = secrets.randbits(32) if seed is None else seed
    rng = random.Random(seed)
    collector = Collector(n, key_rng, on_question, None if material is None else Material(material))
    plan = None if material is None else MaterialPlan(material, n)
    raw: list[str] = []
    json_mode = constrained(backend)
    for round_index in range(1 + max_extra_rounds):
        if plan is not None:
            raw.extend(material_round(backend, plan, collector, topic=topic, difficulty=difficulty,
                                      language=language_text, rng=rng, json_mode=json_mode, on_progress=on_progress))
        else:
            raw.extend(_topic_round(backend, collector, topic=topic, difficulty=difficulty, language=language_text,
                                    rng=rng, json_mode=json_mode, on_progress=on_progress))
        log.info("quiz round %d: %d/%d questions on %r (rejected so far: %s)",
                 round_index + 1, len(collector.questions), n, topic, dict(collector.rejected))
        if on_progress is not None:
            on_progress(len(collector.questions), n)
        if collector.full:
            return Quiz(topic, difficulty, collector.questions, seed=seed, raw_outputs=raw)
    raise _failure(topic, n, len(collector.questions), 1 + max_extra_rounds, collector.rejected, raw,
                   material is not None)

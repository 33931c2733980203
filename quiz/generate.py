"""Write a fresh quiz with a model: prompt in chunks, parse, validate, balance, top up.

    from quiz import generate_quiz
    quiz = generate_quiz(backend, "photosynthesis", n=10, difficulty="easy")

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

from quiz._json import parse_json
from quiz._prompt import DIFFICULTY, FOCUSES, build_json_messages, build_messages, quiz_schema
from quiz._text import squash
from quiz._validate import N_OPTIONS, REASONS, rejection
from quiz.parse import parse_quiz
from quiz.question import Question, Quiz, balanced_positions

if TYPE_CHECKING:
    from inference.backend import Backend, GenerationConfig

log = logging.getLogger(__name__)

MAX_TOPIC_CHARS = 200
MAX_QUESTIONS = 50
CHUNK_SIZE = 3  # questions per request: short replies keep a 3B model on format and off truncation
MAX_EXTRA_ROUNDS = 3
TOKENS_PER_QUESTION = 160  # stem + 4 options + answer + one-sentence explanation, with room to spare
# JSON mode: the schema bounds each string (quiz/_prompt.py), so a question cannot run past this.
TOKENS_PER_JSON_QUESTION = 220


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


def _config(count: int, seed: int, schema: dict | None = None) -> GenerationConfig:
    from inference.backend import GenerationConfig  # pure Python, but keeps `import quiz` minimal

    per_question = TOKENS_PER_JSON_QUESTION if schema else TOKENS_PER_QUESTION
    return GenerationConfig(max_new_tokens=count * per_question + 64, temperature=0.7, top_p=0.9, seed=seed,
                            json_schema=schema)


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


class _Collector:
    """Accepted questions, each placed at its key position as it arrives (so it can be shown at once)."""

    def __init__(self, n: int, key_rng: random.Random,
                 on_question: Callable[[int, Question], None] | None) -> None:
        self.n, self.key_rng, self.on_question = n, key_rng, on_question
        self.positions = balanced_positions(n, N_OPTIONS, key_rng)
        self.questions: list[Question] = []
        self.seen: set[str] = set()
        self.rejected: Counter = Counter()

    def offer(self, question: Question) -> None:
        reason = rejection(question, self.seen)
        if reason is not None:
            self.rejected[reason] += 1
            return
        if len(self.questions) == self.n:
            return
        placed = question.with_answer_at(self.positions[len(self.questions)], self.key_rng)
        self.questions.append(placed)
        self.seen.add(squash(question.question))
        if self.on_question is not None:
            self.on_question(len(self.questions) - 1, placed)


def _requests(topic: str, missing: int, difficulty: str, rng: random.Random, avoid: list[str]
              ) -> list[list[dict]]:
    chunks = math.ceil(missing / CHUNK_SIZE)
    focuses = rng.sample(FOCUSES, min(chunks, len(FOCUSES)))
    return [build_messages(topic, CHUNK_SIZE, difficulty, focuses[i % len(focuses)], avoid)
            for i in range(chunks)]


def _accept(replies: list[str], collector: _Collector) -> None:
    """Parse the replies and offer every question to the collector, in order."""
    for reply in replies:
        questions = parse_quiz(reply)
        if not questions:
            collector.rejected["reply without questions"] += 1
        for question in questions:
            collector.offer(question)


def _json_round(backend: Backend, topic: str, missing: int, difficulty: str, avoid: list[str], seed: int,
                collector: _Collector, on_progress: Callable[[int, int], None] | None) -> str:
    """One schema-constrained request, streamed: each question is offered as soon as its object closes."""
    messages = build_json_messages(topic, missing, difficulty, avoid)
    text, offered = "", 0
    for delta in backend.stream_chat(messages, _config(missing, seed, quiz_schema(missing))):
        text += delta
        if "}" not in delta:
            continue
        complete = parse_json(text)
        for question in complete[offered:]:
            collector.offer(question)
            if on_progress is not None:
                on_progress(len(collector.questions), collector.n)
        offered = max(offered, len(complete))
    for question in parse_json(text)[offered:]:
        collector.offer(question)
    if offered == 0 and not parse_json(text):
        collector.rejected["reply without questions"] += 1
    return text


def _failure(topic: str, n: int, accepted: int, rounds: int, rejected: Counter,
             raw: list[str]) -> QuizGenerationError:
    order = {reason: i for i, reason in enumerate(REASONS)}
    most_first = sorted(rejected.items(), key=lambda item: (-item[1], order.get(item[0], len(order))))
    counts = ", ".join(f"{count} {reason}" for reason, count in most_first)
    message = (f"could not write {n} valid questions about {topic!r}: got {accepted} after {rounds} "
               f"round{'' if rounds == 1 else 's'} "
               f"(rejected: {counts or 'none'}); try again, choose a broader topic, or use a stronger "
               f"or fine-tuned model")
    return QuizGenerationError(message, raw, rejected)


def generate_quiz(backend: Backend, topic: str, n: int = 10, difficulty: str = "medium", *,
                  seed: int | None = None, max_extra_rounds: int = MAX_EXTRA_ROUNDS,
                  on_progress: Callable[[int, int], None] | None = None,
                  on_question: Callable[[int, Question], None] | None = None) -> Quiz:
    """Write a quiz of exactly ``n`` validated questions about ``topic``.

    A backend that can constrain its output to a JSON schema gets one streamed request for all the
    questions, in a schema that makes every reply parse; each question is validated as soon as its
    JSON object is complete. Other backends get ``chat_batch`` requests in chunks of ``CHUNK_SIZE``
    questions, each with a different focus, read by the tolerant parser. A question is kept when it
    has a stem, 4 distinct non-empty options, no "all/none of the above"-style option, a key, and is
    new. Missing questions are asked for again, at most ``max_extra_rounds`` times, then
    ``QuizGenerationError`` says what went wrong.

    The options are shuffled so the key's position is uniform. ``seed=None`` draws a fresh sampling
    seed, so every call gives a new quiz, and places the keys from the operating system's secret
    random source: nothing a quiz-taker can see (the questions, the option order, even the sampling
    seed stored on the quiz) predicts them. An explicit ``seed`` reproduces the whole quiz, key
    positions included — for tests and offline use, never for quizzes shown to students.
    ``on_progress(done, n)`` is called after each round (and each question in JSON mode);
    ``on_question(index, question)`` as each question is accepted, already in its final form.
    """
    topic = clean_topic(topic)
    difficulty = check_difficulty(difficulty)
    if not isinstance(n, int) or not 1 <= n <= MAX_QUESTIONS:
        raise ValueError(f"n must be a whole number from 1 to {MAX_QUESTIONS}, got {n!r}")
    if not isinstance(max_extra_rounds, int) or max_extra_rounds < 0:
        raise ValueError(f"max_extra_rounds must be 0 or more, got {max_extra_rounds!r}")
    key_rng = random.Random(f"key-positions-{seed}") if seed is not None else secrets.SystemRandom()
    seed = secrets.randbits(32) if seed is None else seed
    rng = random.Random(seed)
    collector = _Collector(n, key_rng, on_question)
    raw: list[str] = []
    json_mode = constrained(backend)
    for round_index in range(1 + max_extra_rounds):
        avoid = [q.question for q in collector.questions[-10:]]
        missing = n - len(collector.questions)
        if json_mode:
            raw.append(_json_round(backend, topic, missing, difficulty, avoid, rng.randrange(2**31), collector,
                                   on_progress))
        else:
            conversations = _requests(topic, missing, difficulty, rng, avoid)
            replies = backend.chat_batch(conversations, _config(CHUNK_SIZE, rng.randrange(2**31)))
            raw.extend(replies)
            _accept(replies, collector)
        log.info("quiz round %d: %d/%d questions on %r (rejected so far: %s)",
                 round_index + 1, len(collector.questions), n, topic, dict(collector.rejected))
        if on_progress is not None:
            on_progress(len(collector.questions), n)
        if len(collector.questions) == n:
            return Quiz(topic, difficulty, collector.questions, seed=seed, raw_outputs=raw)
    raise _failure(topic, n, len(collector.questions), 1 + max_extra_rounds, collector.rejected, raw)

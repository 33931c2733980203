"""The requests that write a quiz, and where their questions go: the collector that validates and places
each question, streamed JSON requests, and the rounds of a quiz about the user's material (one request
per section, the questions spread over the whole document)."""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

from quiz._json import parse_json
from quiz._prompt import FOCUSES, build_json_messages, build_messages, quiz_schema
from quiz._quotes import Material, Sourced, cite
from quiz._sections import nearest_open, split_sections, spread
from quiz._text import squash
from quiz._validate import N_OPTIONS, rejection
from quiz.parse import parse_sourced
from quiz.question import Question, balanced_positions

if TYPE_CHECKING:
    from inference.backend import Backend, GenerationConfig

log = logging.getLogger(__name__)

CHUNK_SIZE = 3  # questions per request: short replies keep a 3B model on format and off truncation
TOKENS_PER_QUESTION = 160  # stem + 4 options + answer + one-sentence explanation, with room to spare
# JSON mode: the schema bounds each string (quiz/_prompt.py), so a question cannot run past this.
TOKENS_PER_JSON_QUESTION = 220
TOKENS_PER_QUOTE = 90  # a quote of the material, at most QUOTE_CHARS characters
# JSON requests about a section of material: 5 questions of ~310 tokens, a section of ~1,200 tokens and
# the instructions stay well inside a 4,096-token context.
MATERIAL_JSON_CHUNK = 5


def config(count: int, seed: int, schema: dict | None = None, quotes: bool = False) -> GenerationConfig:
    from inference.backend import GenerationConfig  # pure Python, but keeps `import quiz` minimal

    per_question = (TOKENS_PER_JSON_QUESTION if schema else TOKENS_PER_QUESTION) + (TOKENS_PER_QUOTE if quotes else 0)
    return GenerationConfig(max_new_tokens=count * per_question + 64, temperature=0.7, top_p=0.9, seed=seed,
                            json_schema=schema)


class Collector:
    """Accepted questions, each placed at its key position as it arrives (so it can be shown at once).

    With ``material``, a question is accepted only when its quote is a passage of the material; the
    quote then goes into its explanation."""

    def __init__(self, n: int, key_rng: random.Random, on_question: Callable[[int, Question], None] | None,
                 material: Material | None = None) -> None:
        self.n, self.key_rng, self.on_question, self.material = n, key_rng, on_question, material
        self.positions = balanced_positions(n, N_OPTIONS, key_rng)
        self.questions: list[Question] = []
        self.seen: set[str] = set()
        self.rejected: Counter = Counter()

    @property
    def full(self) -> bool:
        return len(self.questions) == self.n

    def offer(self, found: Sourced) -> bool:
        """Validate and place one question; whether it was taken."""
        question, quote = found
        reason = rejection(question, self.seen, self.material, quote)
        if reason is not None:
            self.rejected[reason] += 1
            return False
        if self.full:
            return False
        placed = cite(question, quote).with_answer_at(self.positions[len(self.questions)], self.key_rng)
        self.questions.append(placed)
        self.seen.add(squash(question.question))
        if self.on_question is not None:
            self.on_question(len(self.questions) - 1, placed)
        return True


def stream_json(backend: Backend, messages: list[dict], generation: GenerationConfig, collector: Collector,
                offer: Callable[[Sourced], object], on_progress: Callable[[int, int], None] | None) -> str:
    """One schema-constrained request, streamed: each question is offered as soon as its object closes."""
    text, offered = "", 0
    for delta in backend.stream_chat(messages, generation):
        text += delta
        if "}" not in delta:
            continue
        complete = parse_json(text)
        for found in complete[offered:]:
            offer(found)
            if on_progress is not None:
                on_progress(len(collector.questions), collector.n)
        offered = max(offered, len(complete))
    for found in parse_json(text)[offered:]:
        offer(found)
    if offered == 0 and not parse_json(text):
        collector.rejected["reply without questions"] += 1
    return text


class MaterialPlan:
    """Which section of the material each question is asked from, and how many each has given.

    The ``n`` questions are spread over the sections in proportion to their length. A section that
    gives no valid question in a round (a table of contents, a reference list) hands what it still
    owes to its nearest neighbour, so the quiz is still spread over the document."""

    def __init__(self, material: str, n: int) -> None:
        self.sections = split_sections(material)
        self.quotas = spread([len(s) for s in self.sections], n)
        self.accepted = [0] * len(self.sections)
        self.closed: set[int] = set()
        self.stems: dict[int, list[str]] = defaultdict(list)
        self.round_got: Counter = Counter()
        self.extra = 0  # questions a reply wrote beyond what was asked for (not used, logged)

    def requests(self, chunk: int) -> list[tuple[int, int]]:
        """(section, number of questions) for each request of the next round."""
        for section in sorted(self.closed):
            owed = self.quotas[section] - self.accepted[section]
            target = nearest_open(section, self.closed, len(self.sections)) if owed > 0 else None
            if target is not None:
                self.quotas[section] -= owed
                self.quotas[target] += owed
        self.round_got.clear()
        wanted = []
        for section, quota in enumerate(self.quotas):
            owed = quota - self.accepted[section]
            while owed > 0:
                wanted.append((section, min(chunk, owed)))
                owed -= chunk
        return wanted

    def offer_to(self, collector: Collector, section: int, count: int) -> Callable[[Sourced], bool]:
        """An ``offer`` for the reply to one request: it takes at most ``count`` questions."""
        taken = 0

        def offer(found: Sourced) -> bool:
            nonlocal taken
            if taken >= count:
                self.extra += 1
                return False
            if not collector.offer(found):
                return False
            taken += 1
            self.accepted[section] += 1
            self.round_got[section] += 1
            self.stems[section].append(found.question.question)
            return True

        return offer

    def end_round(self, asked: list[tuple[int, int]]) -> None:
        self.closed.update(section for section, _ in asked if self.round_got[section] == 0)
        if self.extra:
            log.info("quiz from material: %d questions beyond those asked for were not used", self.extra)
            self.extra = 0


def material_round(backend: Backend, plan: MaterialPlan, collector: Collector, *, topic: str, difficulty: str,
                   language: str, rng: random.Random, json_mode: bool,
                   on_progress: Callable[[int, int], None] | None) -> list[str]:
    """One round of requests about the sections that still owe questions; returns the replies."""
    asked = plan.requests(MATERIAL_JSON_CHUNK if json_mode else CHUNK_SIZE)
    parts = len(plan.sections)
    raw: list[str] = []
    if json_mode:
        for section, count in asked:  # one after another, so each avoids what the last one wrote
            messages = build_json_messages(topic, count, difficulty, plan.stems[section][-10:], language=language,
                                           material=plan.sections[section], part=(section + 1, parts))
            generation = config(count, rng.randrange(2**31), quiz_schema(count, quote=True), quotes=True)
            raw.append(stream_json(backend, messages, generation, collector, plan.offer_to(collector, section, count),
                                   on_progress))
    elif asked:
        focuses = rng.sample(FOCUSES, len(FOCUSES))
        conversations = [build_messages(topic, count, difficulty, focuses[i % len(focuses)], plan.stems[section][-10:],
                                        language=language, material=plan.sections[section], part=(section + 1, parts))
                         for i, (section, count) in enumerate(asked)]
        raw = backend.chat_batch(conversations, config(CHUNK_SIZE, rng.randrange(2**31), quotes=True))
        for (section, count), reply in zip(asked, raw):
            found = parse_sourced(reply)
            if not found:
                collector.rejected["reply without questions"] += 1
            offer = plan.offer_to(collector, section, count)
            for one in found:
                offer(one)
    plan.end_round(asked)
    return list(raw)

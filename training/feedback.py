"""The app's feedback file, and the preference pairs it gives for DPO.

    python -m training dpo --dataset feedback.jsonl

``app.py --feedback-file PATH`` appends one JSON object per rated reply (``FEEDBACK_VERSION`` 1)::

    {"version": 1, "time": "2026-12-02T10:00:00Z",
     "conversation": [{"role": "system" | "user" | "assistant", "content": "..."}, ...],  # ends with the user's
                                                                                     # message the reply answers
     "reply": "...", "rating": "up" | "down" | null,
     "better": "..." | null, "better_source": "edit" | "regenerate" | null, "model": "..."}

Required: ``version``, ``conversation``, ``reply``, ``rating``; the others may be absent or null.
``new_record`` builds a valid record, so the app and this reader share the field names.

Pairs (``pairs_from_lines``), in file order of the reply that is rejected:

- **better reply**: a record rated ``down`` or not rated, whose ``better`` is non-empty and differs from
  ``reply`` -> chosen = ``better``, rejected = ``reply`` (an edited answer, or a regenerated one the user
  preferred). A liked reply's ``better`` is not used: the user liked the reply itself.
- **liked vs disliked**: records with the same ``conversation`` (the same list, message for message),
  one reply rated ``up`` and another rated ``down`` -> chosen = the liked one, rejected = the disliked one;
  each disliked reply once against each distinct liked reply.

A record identical to an earlier one (same conversation, reply, rating and better reply) is counted once,
and a pair that two records give (a regenerated reply recorded both as the ``better`` of the disliked one and
as a liked reply) is kept once. Every record that gives no pair is counted with its reason, and
``FeedbackPairs.summary()`` says it in one line. Standard library only: the app may import it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

FEEDBACK_VERSION = 1
FIELDS = ("version", "time", "conversation", "reply", "rating", "better", "better_source", "model")
REQUIRED_FIELDS = ("version", "conversation", "reply", "rating")
RATINGS = ("up", "down", None)
BETTER_SOURCES = ("edit", "regenerate", None)
ROLES = ("system", "user", "assistant")

BETTER_REPLY = "better reply"
LIKED_VS_DISLIKED = "liked vs disliked"

# Why a record gave no pair (metrics.json "skipped_rows" keys).
LIKED_ALONE = "liked, nothing to compare with"
DISLIKED_ALONE = "disliked, no better reply"
UNRATED_ALONE = "not rated, no better reply"
BETTER_IS_REPLY = "better reply equals the reply"
SAME_REPLY_BOTH_WAYS = "the same reply was both liked and disliked"
REPEATED = "repeats an earlier record"


class InvalidRecord(ValueError):
    """A line that is not a usable record; ``str(exc)`` is the reason that gets counted."""


@dataclass(frozen=True)
class Pair:
    """One preference pair: the conversation so far (ending with the user's message) and two replies."""

    prompt: list[dict[str, str]]
    chosen: str
    rejected: str
    source: str = ""

    def key(self) -> str:
        return json.dumps([self.prompt, self.chosen.strip(), self.rejected.strip()], sort_keys=True)


@dataclass
class FeedbackPairs:
    """The pairs a feedback file gave, and why its other records gave none."""

    pairs: list[Pair]
    records: int  # non-blank lines read
    skipped: Counter = field(default_factory=Counter)  # reason -> records that gave no pair

    def by_source(self) -> Counter:
        return Counter(p.source for p in self.pairs if p.source)

    def summary(self, name: str = "feedback file", unit: str = "record") -> str:
        """E.g. ``feedback.jsonl: 7 records gave 3 preference pairs (2 better reply, 1 liked vs disliked);
        4 records gave none: 2 liked, nothing to compare with; 1 disliked, no better reply; ...``"""
        sources = ", ".join(f"{n} {source}" for source, n in sorted(self.by_source().items()))
        text = (f"{name}: {self.records} {unit}{'s' if self.records != 1 else ''} gave {len(self.pairs)} "
                f"preference pair{'s' if len(self.pairs) != 1 else ''}{f' ({sources})' if sources else ''}")
        unused = sum(self.skipped.values())
        if unused:
            reasons = "; ".join(f"{n} {reason}" for reason, n in self.skipped.most_common())
            text += f"; {unused} {unit}{'s' if unused != 1 else ''} gave none: {reasons}"
        return text


def new_record(conversation: list[dict[str, str]], reply: str, rating: str | None, better: str | None = None,
               better_source: str | None = None, model: str = "", time: str | None = None) -> dict[str, Any]:
    """A record in the current format, checked as the trainer will read it (ValueError names the problem)."""
    record = {"version": FEEDBACK_VERSION,
              "time": time or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "conversation": [{"role": m.get("role"), "content": m.get("content")} if isinstance(m, dict) else m
                               for m in conversation],
              "reply": reply, "rating": rating, "better": better, "better_source": better_source, "model": model}
    parse_record(record)
    return record


@dataclass(frozen=True)
class _Record:
    line: int
    prompt: list[dict[str, str]]
    reply: str
    rating: str | None
    better: str | None

    @property
    def conversation_key(self) -> str:
        return json.dumps(self.prompt, sort_keys=True)

    @property
    def signature(self) -> tuple:
        return (self.conversation_key, self.reply.strip(), self.rating, (self.better or "").strip())


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidRecord(f"{name} is not text")
    return value


def _conversation(value: Any) -> list[dict[str, str]]:
    from training.formats import SkipRow, check_prompt

    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise InvalidRecord("conversation is not a list of role/content messages")
    messages = []
    for message in value:
        if message.get("role") not in ROLES or not isinstance(message.get("content"), str):
            raise InvalidRecord("conversation is not a list of role/content messages")
        messages.append({"role": message["role"], "content": message["content"]})
    try:
        return check_prompt(messages)
    except SkipRow as reason:
        raise InvalidRecord(f"conversation: {reason}") from None


def parse_record(obj: Any, line: int = 0) -> _Record:
    """Check one decoded line; ``InvalidRecord`` says what is wrong with it."""
    if not isinstance(obj, dict):
        raise InvalidRecord("line is not a JSON object")
    missing = [name for name in REQUIRED_FIELDS if name not in obj]
    if missing:
        raise InvalidRecord(f"missing field {missing[0]}")
    if obj["version"] != FEEDBACK_VERSION:
        raise InvalidRecord(f"unsupported version {obj['version']!r} (this trainer reads version {FEEDBACK_VERSION})")
    prompt = _conversation(obj["conversation"])
    reply = _text(obj["reply"], "reply")
    if not reply.strip():
        raise InvalidRecord("empty reply")
    if obj["rating"] not in RATINGS:
        raise InvalidRecord(f"unknown rating {obj['rating']!r} (expected up, down or null)")
    better = obj.get("better")
    if better is not None:
        better = _text(better, "better")
    if obj.get("better_source") not in BETTER_SOURCES:
        raise InvalidRecord(f"unknown better_source {obj['better_source']!r} (expected edit, regenerate or null)")
    return _Record(line, prompt, reply, obj["rating"], better if better and better.strip() else None)


def _decode(lines: Iterable[Any], skipped: Counter) -> tuple[list[_Record], int]:
    """Records from raw lines (or rows already decoded, e.g. from a hub dataset); blank lines are not counted."""
    records, bad_json, count = [], [], 0
    for number, line in enumerate(lines, start=1):
        if isinstance(line, str):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                count += 1
                bad_json.append(number)
                continue
        else:
            obj = line
        count += 1
        try:
            records.append(parse_record(obj, number))
        except InvalidRecord as reason:
            skipped[str(reason)] += 1
    if bad_json:
        shown = ", ".join(map(str, bad_json[:5])) + (", ..." if len(bad_json) > 5 else "")
        skipped[f"line{'s' if len(bad_json) > 1 else ''} {shown} {'are' if len(bad_json) > 1 else 'is'} not "
                f"valid JSON"] += len(bad_json)
    return records, count


def _same(a: str, b: str) -> bool:
    return a.strip() == b.strip()


def _liked_replies(records: list[_Record]) -> dict[str, list[list[_Record]]]:
    """Per conversation, its distinct liked replies in file order, each with every record that liked it."""
    liked: dict[str, list[list[_Record]]] = {}
    for record in records:
        if record.rating != "up":
            continue
        same_text = liked.setdefault(record.conversation_key, [])
        match = next((group for group in same_text if _same(group[0].reply, record.reply)), None)
        if match is None:
            same_text.append([record])
        else:
            match.append(record)
    return liked


def pairs_from_lines(lines: Iterable[Any]) -> FeedbackPairs:
    """All pairs of a feedback file's lines (see the module docstring for the rules)."""
    skipped: Counter = Counter()
    decoded, count = _decode(lines, skipped)
    records, signatures = [], set()
    for record in decoded:
        if record.signature in signatures:
            skipped[REPEATED] += 1
        else:
            signatures.add(record.signature)
            records.append(record)
    liked = _liked_replies(records)
    pairs: list[Pair] = []
    seen: set[str] = set()
    used: set[int] = set()

    def offer(pair: Pair, sources: list[_Record]) -> None:
        used.update(r.line for r in sources)  # a pair given twice still holds what each source said
        if pair.key() not in seen:
            seen.add(pair.key())
            pairs.append(pair)

    for record in records:
        if record.rating != "up" and record.better and not _same(record.better, record.reply):
            offer(Pair(record.prompt, record.better, record.reply, BETTER_REPLY), [record])
        if record.rating == "down":
            for group in liked.get(record.conversation_key, []):
                if not _same(group[0].reply, record.reply):
                    offer(Pair(record.prompt, group[0].reply, record.reply, LIKED_VS_DISLIKED), [*group, record])
    disliked = {(r.conversation_key, r.reply.strip()) for r in records if r.rating == "down"}
    both_ways = {(r.conversation_key, r.reply.strip()) for r in records if r.rating == "up"} & disliked
    for record in records:
        if record.line not in used:
            skipped[_why_unused(record, both_ways)] += 1
    return FeedbackPairs(pairs, count, skipped)


def _why_unused(record: _Record, both_ways: set[tuple[str, str]]) -> str:
    if record.rating is not None and (record.conversation_key, record.reply.strip()) in both_ways:
        return SAME_REPLY_BOTH_WAYS
    if record.rating == "up":
        return LIKED_ALONE
    if record.better and _same(record.better, record.reply):
        return BETTER_IS_REPLY
    return DISLIKED_ALONE if record.rating == "down" else UNRATED_ALONE


def read_feedback(path: str | Path) -> FeedbackPairs:
    """The pairs of a feedback file (UTF-8 JSON Lines)."""
    with open(Path(path).expanduser(), encoding="utf-8-sig") as f:
        return pairs_from_lines(f)


def looks_like_feedback(row: Any) -> bool:
    """A decoded row that carries the feedback record's fields (format auto-detection)."""
    return isinstance(row, dict) and {"conversation", "reply", "rating"} <= set(row)

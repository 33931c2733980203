"""Preference data for DPO: every supported layout -> ``Pair(prompt messages, chosen text, rejected text)``.

Formats (``--dataset_format``; ``auto`` tells them apart by their fields):

- ``pairs``: ``{"prompt", "chosen", "rejected"}``; the prompt is text (one user turn, with an optional
  ``system`` field) or a message list, each reply text or a one-message assistant list (TRL's explicit prompt);
- ``conversational``: ``{"chosen": [messages], "rejected": [messages]}``, two whole conversations that share
  everything but the last assistant reply (TRL's implicit prompt);
- ``hh-rlhf``: Anthropic's ``{"chosen": "\\n\\nHuman: ...\\n\\nAssistant: ...", "rejected": "..."}`` transcripts:
  the shared turns are the prompt, the two last Assistant turns the replies;
- ``sharegpt``: LLaMA-Factory's ``{"conversations": [{"from", "value"}...], "chosen": {"from": "gpt", "value"},
  "rejected": {...}}`` (optional ``system``);
- ``feedback``: the app's ratings file (training/feedback.py).

A pair is valid when its prompt alternates user/assistant from the user and ends with the user's message,
and both replies are non-empty and differ. Other rows are skipped and counted by reason; the counts go to
the log and metrics.json. Prompts are rendered with the training chat template, as the app renders them.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.errors import TrainingError
from training.feedback import FeedbackPairs, Pair, looks_like_feedback, pairs_from_lines
from training.formats import SkipRow, check_prompt, message

logger = logging.getLogger(__name__)

HH_MARKER = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")


@dataclass
class PreferenceData:
    """Pairs ready for templating, and why rows were left out."""

    train: list[Pair]
    eval: list[Pair]
    format: str
    skipped: Counter = field(default_factory=Counter)
    summary: str = ""  # one line: how many pairs the rows gave, and why the others gave none


def _messages(value: Any, what: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value or not all(isinstance(m, dict) for m in value):
        raise SkipRow(f"{what} is not a list of messages")
    return [message(m.get("role", m.get("from")), m.get("content", m.get("value"))) for m in value]


def _reply(value: Any, what: str) -> str:
    """A reply given as text, a ``{"role"/"from", "content"/"value"}`` message or a one-message list."""
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, list):
        messages = _messages(value, what)
        if len(messages) != 1 or messages[0]["role"] != "assistant":
            raise SkipRow(f"{what} is not one assistant reply")
        value = messages[0]["content"]
    if not isinstance(value, str):
        raise SkipRow(f"missing {what}")
    return value


def make_pair(prompt: list[dict[str, str]], chosen: str, rejected: str) -> Pair:
    """The checks every format's output passes (see the module docstring)."""
    check_prompt(prompt)
    if not chosen.strip():
        raise SkipRow("empty chosen reply")
    if not rejected.strip():
        raise SkipRow("empty rejected reply")
    if chosen.strip() == rejected.strip():
        raise SkipRow("chosen and rejected are the same reply")
    return Pair(prompt, chosen, rejected)


def _with_system(row: dict[str, Any], prompt: list[dict[str, str]]) -> list[dict[str, str]]:
    system = row.get("system")
    if isinstance(system, str) and system.strip() and not (prompt and prompt[0]["role"] == "system"):
        return [{"role": "system", "content": system}, *prompt]
    return prompt


def pairs_to_pair(row: dict[str, Any]) -> Pair:
    """``{"prompt": text | messages, "chosen": ..., "rejected": ...}``."""
    prompt = row.get("prompt")
    if isinstance(prompt, str):
        messages = [{"role": "user", "content": prompt}]
    elif isinstance(prompt, list):
        messages = _messages(prompt, "prompt")
    else:
        raise SkipRow("missing prompt")
    return make_pair(_with_system(row, messages), _reply(row.get("chosen"), "chosen reply"),
                     _reply(row.get("rejected"), "rejected reply"))


def conversational_to_pair(row: dict[str, Any]) -> Pair:
    """``{"chosen": [messages], "rejected": [messages]}``: the same conversation with two last replies."""
    if "prompt" in row:
        return pairs_to_pair(row)
    chosen, rejected = _messages(row.get("chosen"), "chosen"), _messages(row.get("rejected"), "rejected")
    if chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
        raise SkipRow("a conversation does not end with an assistant reply")
    if chosen[:-1] != rejected[:-1]:
        raise SkipRow("chosen and rejected conversations differ before the last reply")
    return make_pair(chosen[:-1], chosen[-1]["content"], rejected[-1]["content"])


def _hh_turns(text: Any, what: str) -> list[dict[str, str]]:
    if not isinstance(text, str):
        raise SkipRow(f"missing {what} transcript")
    parts = HH_MARKER.split(text)
    if len(parts) < 3:
        raise SkipRow("no '\\n\\nHuman:' / '\\n\\nAssistant:' turns")
    if parts[0].strip():
        raise SkipRow("text before the first '\\n\\nHuman:' turn")
    return [{"role": "user" if speaker == "Human" else "assistant", "content": content.strip()}
            for speaker, content in zip(parts[1::2], parts[2::2])]


def hh_rlhf_to_pair(row: dict[str, Any]) -> Pair:
    """Anthropic HH-RLHF: two transcripts that differ only in the last Assistant turn."""
    chosen, rejected = _hh_turns(row.get("chosen"), "chosen"), _hh_turns(row.get("rejected"), "rejected")
    if chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
        raise SkipRow("a transcript does not end with an Assistant turn")
    if chosen[:-1] != rejected[:-1]:
        raise SkipRow("chosen and rejected transcripts differ before the last reply")
    return make_pair(chosen[:-1], chosen[-1]["content"], rejected[-1]["content"])


def sharegpt_to_pair(row: dict[str, Any]) -> Pair:
    """LLaMA-Factory's ShareGPT preference rows (its dpo_en_demo.json)."""
    prompt = _messages(row.get("conversations"), "conversations")
    return make_pair(_with_system(row, prompt), _reply(row.get("chosen"), "chosen reply"),
                     _reply(row.get("rejected"), "rejected reply"))


CONVERTERS: dict[str, Callable[[dict[str, Any]], Pair]] = {
    "pairs": pairs_to_pair,
    "conversational": conversational_to_pair,
    "hh-rlhf": hh_rlhf_to_pair,
    "sharegpt": sharegpt_to_pair,
}


def detect_preference_format(rows: list[Any]) -> str | None:
    """The format of the first object rows, from their fields; ``None`` when nothing matches."""
    for row in rows[:20]:
        if not isinstance(row, dict):
            continue
        if looks_like_feedback(row):
            return "feedback"
        if not {"chosen", "rejected"} <= set(row):
            continue
        if "conversations" in row:
            return "sharegpt"
        if "prompt" in row:
            return "pairs"
        if isinstance(row["chosen"], str) and HH_MARKER.search(row["chosen"]):
            return "hh-rlhf"
        if isinstance(row["chosen"], list):
            return "conversational"
    return None


def _unknown_format(rows: list[Any], source: str) -> TrainingError:
    columns = sorted(rows[0]) if rows and isinstance(rows[0], dict) else "not objects"
    sft = rows and isinstance(rows[0], dict) and ({"messages", "conversations", "instruction", "text"} & set(rows[0]))
    hint = "; it looks like conversations for python -m training sft" if sft else ""
    return TrainingError(f"cannot tell the preference format of {source!r} (columns: {columns}){hint}; a preference "
                         "dataset has chosen and rejected replies: pass --dataset_format "
                         "pairs|conversational|hh-rlhf|sharegpt|feedback")


def to_pairs(rows: list[Any], fmt: str, source: str, skipped: Counter) -> tuple[list[Pair], str, str]:
    """Convert rows in format ``fmt`` (or detected when ``auto``); count the rows that fail.

    Returns the pairs, the format and a one-line account (how many pairs, why the other rows gave none)."""
    if fmt == "auto":
        fmt = detect_preference_format(rows) or ""
        if not fmt:
            raise _unknown_format(rows, source)
        logger.info("dataset %s: detected format %s", source, fmt)
    unreadable = sum(skipped.values())  # lines the reader could not decode
    if fmt == "feedback":
        result: FeedbackPairs = pairs_from_lines(rows)
        skipped.update(result.skipped)
        pairs, summary = result.pairs, result.summary(Path(source).name)
    else:
        pairs, failed = [], Counter()
        for row in rows:
            if not isinstance(row, dict):
                failed["row is not an object"] += 1
                continue
            try:
                pairs.append(CONVERTERS[fmt](row))
            except SkipRow as reason:
                failed[str(reason)] += 1
        skipped.update(failed)
        summary = FeedbackPairs(pairs, len(rows) + unreadable, Counter(skipped)).summary(Path(source).name, "row")
    if not pairs:
        raise TrainingError(f"no usable preference pairs in {source!r} as format {fmt} (skipped: {dict(skipped)}); "
                            "check --dataset_format" + ("; the app writes pairs once a reply is disliked and a "
                                                        "better one is written, regenerated or liked"
                                                        if fmt == "feedback" else ""))
    return pairs, fmt, summary


def _read(name: str, split: str, fmt: str, skipped: Counter) -> list[Any]:
    """Rows of the file or hub dataset; a local JSON Lines file as its raw lines, so that feedback
    records keep their line numbers (the other formats decode them here)."""
    from training.data import looks_local, read_rows

    path = Path(name).expanduser()
    if fmt in ("auto", "feedback") and looks_local(name) and path.suffix.lower() == ".jsonl" and path.is_file():
        from training.data import JSON_EXPECTED, _read_text

        # Split on "\n" alone: str.splitlines() also splits on characters JSON may leave raw inside strings.
        lines = _read_text(path, JSON_EXPECTED).split("\n")
        if fmt == "feedback" or (fmt == "auto" and _first_row_is_feedback(lines)):
            return lines
    return read_rows(name, split, skipped)


def _first_row_is_feedback(lines: list[str]) -> bool:
    import json

    for line in lines[:20]:
        try:
            return looks_like_feedback(json.loads(line))
        except (ValueError, RecursionError):
            continue
    return False


def prepare_pairs(config: Any) -> PreferenceData:
    """All of the data steps of a DPO run, from ``config.dataset`` to train/eval pairs."""
    from training.data import split_eval

    skipped: Counter = Counter()
    fmt = config.dataset_format
    rows = _read(config.dataset, config.dataset_split, fmt, skipped)
    if fmt == "auto" and rows and isinstance(rows[0], str):
        fmt = "feedback"  # raw lines come back only for a feedback file
    train, fmt, summary = to_pairs(rows, fmt, config.dataset, skipped)
    del rows
    logger.info("%s", summary)
    if config.max_samples:
        train = train[: config.max_samples]
    eval_pairs: list[Pair] = []
    if config.eval_dataset:
        eval_skipped: Counter = Counter()
        raw = _read(config.eval_dataset, config.eval_dataset_split, config.dataset_format, eval_skipped)
        eval_pairs, _, _ = to_pairs(raw, config.dataset_format if config.dataset_format != "auto" else
                                    ("feedback" if raw and isinstance(raw[0], str) else "auto"),
                                    config.eval_dataset, eval_skipped)
        skipped.update({f"eval file: {reason}": n for reason, n in eval_skipped.items()})
    if config.eval_split > 0:
        train, held = split_eval(train, config.eval_split, config.seed)
        eval_pairs += held
    logger.info("dataset %s (%s): %d training and %d evaluation pairs; %d rows skipped",
                config.dataset, fmt, len(train), len(eval_pairs), sum(skipped.values()))
    return PreferenceData(train, eval_pairs, fmt, skipped, summary)

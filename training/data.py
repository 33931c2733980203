"""Load a dataset (hub id or local file), turn every row into ``{"messages": [...]}``, split off eval rows.

Rows that cannot become a conversation are skipped and counted by reason (``PreparedData.skipped``);
the counts are logged at the end of a run and written to metrics.json.
"""

from __future__ import annotations

import csv
import json
import logging
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.errors import TrainingError
from training.formats import CONVERTERS, SkipRow, detect_format
from training.mcq import attach_answers, mcq_to_messages, require_answers

logger = logging.getLogger(__name__)

LOCAL_SUFFIXES = (".json", ".jsonl", ".csv", ".parquet")
Conversation = list[dict[str, str]]


@dataclass
class PreparedData:
    """Conversations ready for templating, and why rows were left out."""

    train: list[Conversation]
    eval: list[Conversation]
    format: str
    skipped: Counter = field(default_factory=Counter)


def looks_local(name: str) -> bool:
    path = Path(name).expanduser()
    return path.exists() or path.suffix.lower() in LOCAL_SUFFIXES or name.startswith((".", "/", "~"))


JSON_EXPECTED = "a JSON list of rows or JSON Lines (one object per line)"


def _not_utf8(path: Path, expected: str) -> TrainingError:
    return TrainingError(f"dataset {str(path)!r} is not UTF-8 text: expected {expected}, saved as UTF-8")


def _unreadable(path: Path, exc: OSError) -> TrainingError:
    return TrainingError(f"dataset {str(path)!r} cannot be read ({exc.strerror or exc}): check the path and its "
                         "permissions")


def _read_text(path: Path, expected: str) -> str:
    """The file as UTF-8 text, or one line saying it is not text in the expected format."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise _not_utf8(path, expected) from None
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _too_deep(path: Path) -> TrainingError:
    return TrainingError(f"dataset {str(path)!r} nests JSON deeper than Python can read: expected {JSON_EXPECTED} "
                         "whose rows are conversations a few levels deep")


def _read_json(path: Path, skipped: Counter) -> list[Any]:
    text = _read_text(path, JSON_EXPECTED)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None  # maybe JSON Lines under a .json name
        except RecursionError:
            raise _too_deep(path) from None
        if isinstance(data, list):
            return data
        if isinstance(data, dict):
            raise TrainingError(f"dataset {str(path)!r} is a JSON object; expected a list of rows (or JSON Lines)")
    rows = []
    for line in text.split("\n"):  # not splitlines(): it also splits on U+2028 and others JSON leaves raw in strings
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            skipped["invalid JSON line"] += 1
        except RecursionError:
            skipped["JSON line nested too deeply"] += 1
    if not rows:
        raise TrainingError(f"dataset {str(path)!r} is neither a JSON list nor JSON Lines: expected {JSON_EXPECTED}"
                            f"{f' (unreadable lines: {dict(skipped)})' if skipped else ''}")
    return rows


def _read_csv(path: Path) -> list[Any]:
    expected = "comma-separated text with a header row"
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            return list(csv.DictReader(f))
    except UnicodeDecodeError:
        raise _not_utf8(path, expected) from None
    except csv.Error as exc:
        raise TrainingError(f"dataset {str(path)!r} is not a readable CSV file ({exc}): expected {expected}") from None
    except OSError as exc:
        raise _unreadable(path, exc) from None


def _read_parquet(path: Path) -> list[Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise TrainingError(f"dataset {str(path)!r} is not a readable Parquet file ({first}): expected a Parquet "
                            "table with one row per example; re-export it, or use .json/.jsonl/.csv") from None


def read_local(name: str, skipped: Counter) -> list[Any]:
    """Rows of a local .json/.jsonl/.csv/.parquet file."""
    path = Path(name).expanduser()
    if not path.is_file():
        raise TrainingError(f"dataset file {name!r} not found: pass an existing .json/.jsonl/.csv/.parquet file "
                            "or a hub dataset id like owner/name")
    suffix = path.suffix.lower()
    if suffix in (".json", ".jsonl"):
        return _read_json(path, skipped)
    if suffix == ".csv":
        return _read_csv(path)
    if suffix == ".parquet":
        return _read_parquet(path)
    raise TrainingError(f"dataset file {name!r} has an unsupported type {suffix or '(none)'}: "
                        f"use one of {', '.join(LOCAL_SUFFIXES)}")


def read_hub(name: str, split: str) -> list[Any]:
    """Rows of a hub dataset split, with a clear error when the hub cannot provide it."""
    import datasets

    try:
        return list(datasets.load_dataset(name, split=split))
    except ValueError as exc:
        if "split" in str(exc).lower():
            raise TrainingError(f"dataset {name!r} has no split {split!r}: pass --dataset_split") from None
        raise TrainingError(f"could not load dataset {name!r}: {str(exc).splitlines()[0]}") from None
    except (ConnectionError, OSError, datasets.exceptions.DatasetNotFoundError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(
            f"could not load dataset {name!r} from the Hugging Face hub ({first[:200]}); check the id, run where "
            "the hub is reachable, or pass a local .json/.jsonl/.csv/.parquet file with --dataset") from None


def read_rows(name: str, split: str, skipped: Counter) -> list[Any]:
    return read_local(name, skipped) if looks_local(name) else read_hub(name, split)


def to_conversations(rows: list[Any], fmt: str, source: str, skipped: Counter,
                     answers_file: str | None = None) -> tuple[list[Conversation], str]:
    """Convert rows in format ``fmt`` (or detected when ``auto``); count the rows that fail."""
    if fmt == "auto":
        detected = detect_format(rows)
        if detected is None:
            columns = sorted(rows[0]) if rows and isinstance(rows[0], dict) else "not objects"
            raise TrainingError(f"cannot tell the format of {source!r} (columns: {columns}); pass --dataset_format "
                                "sharegpt|alpaca|guanaco|messages|mcq-csv")
        fmt = detected
        logger.info("dataset %s: detected format %s", source, fmt)
    if fmt == "mcq-csv":
        if answers_file:
            rows = attach_answers(rows, answers_file, source)
        require_answers(rows, source)
    convert = mcq_to_messages if fmt == "mcq-csv" else CONVERTERS[fmt]
    conversations = []
    for row in rows:
        if not isinstance(row, dict):
            skipped["row is not an object"] += 1
            continue
        try:
            conversations.append(convert(row))
        except SkipRow as reason:
            skipped[str(reason)] += 1
    if not conversations:
        raise TrainingError(f"no usable rows in {source!r} as format {fmt} (skipped: {dict(skipped)}); "
                            "check --dataset_format")
    return conversations, fmt


def split_eval(conversations: list[Conversation], fraction: float, seed: int) -> tuple[list, list]:
    """Hold out ``fraction`` of the conversations (at least one) with a seeded shuffle."""
    if fraction <= 0:
        return conversations, []
    if len(conversations) < 2:
        raise TrainingError(f"--eval_split needs at least 2 usable rows, the dataset has {len(conversations)}")
    order = list(range(len(conversations)))
    random.Random(seed).shuffle(order)
    n_eval = min(len(order) - 1, max(1, round(len(order) * fraction)))
    held = set(order[:n_eval])
    return ([c for i, c in enumerate(conversations) if i not in held],
            [c for i, c in enumerate(conversations) if i in held])


def prepare_data(config: Any) -> PreparedData:
    """All of the data steps of a run, from ``config.dataset`` to train/eval conversations."""
    skipped: Counter = Counter()
    rows = read_rows(config.dataset, config.dataset_split, skipped)
    train, fmt = to_conversations(rows, config.dataset_format, config.dataset, skipped, config.answers_file)
    del rows
    if config.max_samples:
        train = train[: config.max_samples]
    eval_rows: list[Conversation] = []
    if config.eval_dataset:
        eval_skipped: Counter = Counter()
        raw = read_rows(config.eval_dataset, config.eval_dataset_split, eval_skipped)
        eval_rows, _ = to_conversations(raw, config.dataset_format, config.eval_dataset, eval_skipped)
        skipped.update({f"eval file: {reason}": n for reason, n in eval_skipped.items()})
    if config.eval_split > 0:
        train, held = split_eval(train, config.eval_split, config.seed)
        eval_rows += held
    logger.info("dataset %s (%s): %d training and %d evaluation conversations; %d rows skipped",
                config.dataset, fmt, len(train), len(eval_rows), sum(skipped.values()))
    return PreparedData(train, eval_rows, fmt, skipped)

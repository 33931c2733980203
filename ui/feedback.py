"""The feedback file: one JSON line per rated tutor reply, the training data of ``python -m training dpo``.

    log = FeedbackLog("feedback.jsonl")       # FeedbackFileError (one line) if it cannot be written
    log.append([feedback_record(conversation, reply, "up", model=backend.description)])

Every line is one record (``FEEDBACK_VERSION`` 1)::

    {"version": 1, "time": "2026-12-02T10:00:00Z",
     "conversation": [{"role": "system" | "user" | "assistant", "content": "..."}, ...],  # ends with the
                                                                                   # user's message
     "reply": "...", "rating": "up" | "down" | null,
     "better": "..." | null, "better_source": "edit" | "regenerate" | null, "model": "..."}

Appends never interleave or get lost when many users (threads) or several app processes write at once:
the records of one user action are encoded whole and written with a single ``os.write`` on a file opened
with ``O_APPEND`` (the kernel places each such write at the end, in one piece), under a process-wide lock.
Standard library only, like the trainer's reader (``training/feedback.py``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

FEEDBACK_VERSION = 1
RATINGS = ("up", "down", None)
BETTER_SOURCES = ("edit", "regenerate")
ROLES = ("system", "user", "assistant")
# Conversations hold what students write: only the owner of the app may read the file.
FILE_MODE = 0o600
# Line separators that JSON leaves raw in strings but str.splitlines() and some JSONL readers split on.
_RAW_SEPARATORS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}

_APPEND_LOCK = threading.Lock()  # one writer at a time in this process; O_APPEND orders the processes


class FeedbackFileError(OSError):
    """The feedback file cannot be written; ``str(exc)`` is one line that names the file and the fix."""


def utc_now() -> str:
    """The record's ``time``: UTC, ISO 8601 to the second, with ``Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def feedback_record(conversation: Sequence[dict[str, str]], reply: str, rating: str | None, *,
                    better: str | None = None, better_source: str | None = None, model: str = "",
                    time: str | None = None) -> dict[str, Any]:
    """One record, checked: ``ValueError`` names the field that is wrong (a bug in the caller, not the user's)."""
    messages = [{"role": m.get("role"), "content": m.get("content")} for m in conversation]
    if not messages or any(m["role"] not in ROLES or not isinstance(m["content"], str) for m in messages):
        raise ValueError(f"conversation must be role/content messages with roles {ROLES}, got {conversation!r:.200}")
    if messages[-1]["role"] != "user":
        raise ValueError("conversation must end with the user's message the reply answers")
    if not isinstance(reply, str) or not reply.strip():
        raise ValueError(f"reply must be non-empty text, got {reply!r:.80}")
    if rating not in RATINGS:
        raise ValueError(f"rating must be 'up', 'down' or None, got {rating!r}")
    if (better is None) != (better_source is None):
        raise ValueError("better and better_source go together: both set or both None")
    if better is not None and (not isinstance(better, str) or not better.strip()):
        raise ValueError(f"better must be non-empty text, got {better!r:.80}")
    if better_source is not None and better_source not in BETTER_SOURCES:
        raise ValueError(f"better_source must be one of {BETTER_SOURCES} or None, got {better_source!r}")
    return {"version": FEEDBACK_VERSION, "time": time or utc_now(), "conversation": messages, "reply": reply,
            "rating": rating, "better": better, "better_source": better_source, "model": model}


def encode_line(record: dict[str, Any]) -> bytes:
    """The record as one UTF-8 JSON line: never a raw line break inside, any string encodable."""
    text = json.dumps(record, ensure_ascii=False)
    for raw, escaped in _RAW_SEPARATORS.items():
        text = text.replace(raw, escaped)  # only strings can hold them: JSON's own syntax is ASCII
    # A lone surrogate (from a broken client) becomes the JSON escape "\udc80", which reads back unchanged.
    return text.encode("utf-8", "backslashreplace") + b"\n"


def _open_append(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)


class FeedbackLog:
    """Appends records to a JSON-lines file; checked when created, so a bad path fails at start-up.

    The file is created if missing (its folder must exist) and opened anew for each append, so a file
    moved away (log rotation) is simply started again.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._check()

    def _problem(self, exc: OSError) -> FeedbackFileError:
        parent = self.path.parent
        if isinstance(exc, IsADirectoryError) or self.path.is_dir():
            why = f"it is a folder; give a file in it, e.g. {self.path / 'feedback.jsonl'}"
        elif isinstance(exc, FileNotFoundError) or not parent.exists():
            why = f"the folder {parent} does not exist (create it first, or choose another file)"
        elif isinstance(exc, NotADirectoryError) or not parent.is_dir():
            why = f"{parent} is not a folder"
        elif isinstance(exc, PermissionError):
            why = "permission denied (choose a file in a folder this user may write)"
        else:
            why = exc.strerror or str(exc)
        return FeedbackFileError(f"cannot write the feedback file {self.path}: {why}")

    def _check(self) -> None:
        with _APPEND_LOCK:
            self._open_and_mend()

    def _open_and_mend(self) -> None:
        try:
            fd = _open_append(self.path)
        except OSError as exc:
            raise self._problem(exc) from None
        try:
            # A line cut off earlier (the disk filled up mid-write) must not swallow the next record. Done at
            # start-up: another process writing at that very moment costs at most a blank line, which readers skip.
            if not self._ends_with_newline():
                logger.warning("%s does not end with a line break: adding one before new records", self.path)
                os.write(fd, b"\n")
        except OSError as exc:
            raise self._problem(exc) from None
        finally:
            os.close(fd)

    def _ends_with_newline(self) -> bool:
        """True for an empty file too; a file that cannot be read (write-only) is not second-guessed."""
        try:
            with open(self.path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                return size == 0 or (f.seek(size - 1), f.read(1))[1] == b"\n"
        except PermissionError:
            return True

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        """Write ``records`` (one user action's) as consecutive lines, in one write; FeedbackFileError if not."""
        if not records:
            return
        data = b"".join(encode_line(record) for record in records)
        with _APPEND_LOCK:
            try:
                fd = _open_append(self.path)
            except OSError as exc:
                raise self._problem(exc) from None
            try:
                written = os.write(fd, data)
                # A regular file takes a write whole unless the disk is full; write what is left rather than
                # leave half a line.
                while written < len(data):
                    written += os.write(fd, data[written:])
            except OSError as exc:
                raise FeedbackFileError(f"cannot write the feedback file {self.path}: {exc.strerror or exc}") from None
            finally:
                os.close(fd)

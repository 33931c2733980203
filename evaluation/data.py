"""Reading benchmark files and hub datasets, with one-line errors that say what to fix."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from evaluation.task import EvalError

logger = logging.getLogger(__name__)

DATA_DIR_HINT = "pass --data-dir pointing to a folder laid out like shared/data (the README's Evaluation section lists the files)"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_one(folder: Path, pattern: str, what: str) -> Path:
    """The single file in ``folder`` matching ``pattern``; a clear error when there are none or several."""
    if not folder.is_dir():
        raise EvalError(f"{what}: folder {str(folder)!r} not found; {DATA_DIR_HINT}")
    matches = sorted(folder.glob(pattern))
    if not matches:
        found = ", ".join(sorted(p.name for p in folder.iterdir())[:8]) or "nothing"
        raise EvalError(f"{what}: no file matching {pattern!r} in {str(folder)!r} (found: {found}); "
                        f"{DATA_DIR_HINT}")
    if len(matches) > 1:
        raise EvalError(f"{what}: several files match {pattern!r} in {str(folder)!r} "
                        f"({', '.join(p.name for p in matches)}); keep one")
    return matches[0]


def require_file(path: Path, what: str | None = None) -> Path:
    if not path.is_file():
        raise EvalError(f"{f'{what}: ' if what else ''}{str(path)!r} not found; {DATA_DIR_HINT}")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(require_file(path), encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalError(f"{str(path)!r} line {number} is not valid JSON ({exc.msg}); "
                                "the file is corrupt or truncated: copy it again") from None
            if not isinstance(row, dict):
                raise EvalError(f"{str(path)!r} line {number} is not a JSON object; expected one question per line")
            rows.append(row)
    if not rows:
        raise EvalError(f"{str(path)!r} holds no questions; the file is empty: copy it again")
    return rows


def read_json(path: Path) -> Any:
    try:
        return json.loads(require_file(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise EvalError(f"{str(path)!r} is not valid JSON ({exc.msg} at line {exc.lineno}); "
                        "the file is corrupt or truncated: copy it again") from None


def require_fields(row: dict, fields: tuple[str, ...], where: str) -> None:
    missing = [f for f in fields if f not in row]
    if missing:
        raise EvalError(f"{where} has no {', '.join(repr(f) for f in missing)} field (it has "
                        f"{', '.join(repr(k) for k in row)[:200]}); expected {', '.join(fields)}")


def load_hub(path: str, name: str | None, split: str) -> Any:
    """A hub dataset split, or an EvalError that says to use --data-dir when the hub is unreachable."""
    try:
        import datasets
    except ImportError:
        raise EvalError(f"reading {path} from the hub needs the `datasets` package "
                        f"(pip install -r requirements-train.txt), or {DATA_DIR_HINT}") from None
    logger.info("loading %s%s, split %s, from the hub", path, f" ({name})" if name else "", split)
    try:
        return datasets.load_dataset(path, name, split=split)
    except Exception as exc:  # offline, missing, renamed: datasets raises many types; all mean "not available"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise EvalError(f"could not load {path}{f' ({name})' if name else ''} from the Hugging Face hub "
                        f"({type(exc).__name__}: {reason}); {DATA_DIR_HINT}") from None


def hub_fingerprint(dataset: Any, path: str, name: str | None, split: str) -> dict[str, str]:
    label = f"hub:{path}" + (f"/{name}" if name else "") + f":{split}"
    return {label: str(getattr(dataset, "_fingerprint", "unknown"))}

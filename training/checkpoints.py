"""Checkpoints that are complete or absent, and resuming from the newest complete one.

The trainer writes a checkpoint file by file (weights, optimiser, scheduler, RNG state, then
``trainer_state.json``), so a run killed in the middle of a save used to leave a ``checkpoint-N`` folder
that ``--resume_from_checkpoint`` picked and then failed on. Now each checkpoint is written under
``output_dir/.checkpoint-staging/`` and renamed to ``checkpoint-N`` once every file is on disk (a rename
within one file system is atomic); and resuming skips, naming it, any ``checkpoint-N`` that still lacks
its weights or trainer state (for example one left by an older version, or copied by hand).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from training.errors import TrainingError

logger = logging.getLogger(__name__)

STAGING = ".checkpoint-staging"
STATE_FILE = "trainer_state.json"
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors",
                "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_NAME = re.compile(r"checkpoint-(\d+)")


def missing_part(checkpoint: Path) -> str | None:
    """What keeps ``checkpoint`` from being resumed, or ``None`` when it has its weights and trainer state."""
    if not any((checkpoint / name).is_file() for name in WEIGHT_FILES):
        return "no model weights"
    state = checkpoint / STATE_FILE
    if not state.is_file():
        return f"no {STATE_FILE}"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # ValueError: truncated JSON or not UTF-8
        return f"a truncated {STATE_FILE}"
    return None


def _numbered(folder: Path) -> list[tuple[int, Path]]:
    """``checkpoint-N`` folders directly in ``folder``, newest (highest N) first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.fullmatch(p.name)) and p.is_dir()]
    return sorted(found, reverse=True)


def newest_complete(output_dir: str) -> tuple[Path | None, list[str]]:
    """(the newest complete ``checkpoint-N`` in ``output_dir`` or None, the incomplete ones passed over).

    The second item also names saves that were interrupted in the staging folder, so the user sees why
    the step they expected is not the one resumed from.
    """
    root = Path(output_dir)
    skipped = [f"{STAGING}/{p.name} (a save that was interrupted)" for _, p in _numbered(root / STAGING)]
    for _, path in _numbered(root):
        problem = missing_part(path)
        if problem is None:
            return path, skipped
        skipped.append(f"{path.name} ({problem})")
    return None, skipped


def resume_checkpoint(output_dir: str) -> str:
    """The checkpoint ``--resume_from_checkpoint`` alone means, logging every incomplete one it skipped."""
    path, skipped = newest_complete(output_dir)
    for what in skipped:
        logger.warning("skipping incomplete checkpoint %s: the run probably stopped while writing it", what)
    if path is None:
        found = f" (only incomplete ones: {', '.join(skipped)})" if skipped else " yet"
        raise TrainingError(f"--resume_from_checkpoint: no complete checkpoint-N folder in {output_dir!r}{found}; "
                            "run without it to start fresh, or pass a checkpoint path")
    logger.info("resuming from %s", path)
    return str(path)


def check_resumable(checkpoint: str) -> str:
    """An explicit ``--resume_from_checkpoint PATH``: refuse an incomplete one, pointing at a complete one."""
    problem = missing_part(Path(checkpoint))
    if problem is None:
        return checkpoint
    newest, _ = newest_complete(str(Path(checkpoint).parent))
    instead = f"pass {str(newest)!r} instead" if newest else "start without --resume_from_checkpoint"
    raise TrainingError(f"--resume_from_checkpoint {checkpoint!r} is not a complete checkpoint ({problem}; the run "
                        f"probably stopped while writing it): {instead}")


def _fsync_tree(folder: Path) -> None:
    """Flush the staged files to disk, so after a power cut the renamed folder does not hold empty files."""
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def publish(staged: Path, final: Path) -> None:
    """Move a fully written checkpoint folder into place, replacing an older copy of the same step."""
    _fsync_tree(staged)
    replaced = staged.parent / f"replaced-{final.name}"
    if final.exists():
        shutil.rmtree(replaced, ignore_errors=True)
        os.replace(final, replaced)
    os.replace(staged, final)
    shutil.rmtree(replaced, ignore_errors=True)
    try:
        staged.parent.rmdir()  # the staging folder, once empty
    except OSError:
        pass  # other leftovers in it: resume names them


class AtomicCheckpoints:
    """Trainer mixin (put it before the trainer class): ``checkpoint-N`` appears only once complete.

    ``Trainer._save_checkpoint`` writes into ``self._get_output_dir(trial)/checkpoint-N``; during a save
    that directory is the staging folder, and the finished folder is renamed into ``output_dir``, after
    every process has written its part (each rank saves its own RNG state). ``before_checkpoint`` runs
    first, so a trainer can refuse to save weights that are broken.
    """

    _staging_dir: str | None = None

    def _get_output_dir(self, trial: Any) -> str:
        return self._staging_dir or super()._get_output_dir(trial)  # type: ignore[misc]

    def before_checkpoint(self, name: str) -> None:
        """Hook run before anything of checkpoint ``name`` is written."""

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        from transformers.trainer_utils import rotate_checkpoints

        run_dir = Path(super()._get_output_dir(trial))  # type: ignore[misc]
        name = f"checkpoint-{self.state.global_step}"
        staging = run_dir / STAGING
        self.before_checkpoint(name)
        if self.args.should_save:
            shutil.rmtree(staging / name, ignore_errors=True)  # what an interrupted save of this step left
        self.accelerator.wait_for_everyone()
        self._staging_dir = str(staging)
        try:
            super()._save_checkpoint(model, trial)  # type: ignore[misc]
        finally:
            self._staging_dir = None
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            publish(staging / name, run_dir / name)
            rotate_checkpoints(output_dir=str(run_dir), save_total_limit=self.args.save_total_limit,
                               best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=True)
        self.accelerator.wait_for_everyone()

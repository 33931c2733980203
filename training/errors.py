"""The one exception type of the training package: a problem the user can fix, said in one line."""

from __future__ import annotations


class TrainingError(Exception):
    """A user-facing problem (bad flag, missing file, offline hub id). The CLI prints it as one line."""

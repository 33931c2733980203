"""The one exception type of the training package: a problem the user can fix, said in one line."""

from __future__ import annotations

import typing


class TrainingError(Exception):
    """A user-facing problem (bad flag, missing file, offline hub id). The CLI prints it as one line."""


def fail(message: str) -> typing.NoReturn:
    """Raise ``TrainingError(message)``; argparse's ``error`` hook, so bad flags end in one line too."""
    raise TrainingError(message)

"""What every benchmark loader produces: questions with choices, a gold answer and a log-likelihood prompt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Metric = Literal["mc", "mc2"]


class EvalError(RuntimeError):
    """A problem the user can fix (missing or corrupt file, unknown task, hub unreachable).

    The message is one line naming the problem and the fix; the CLI prints it without a traceback.
    """


@dataclass
class Question:
    """One multiple-choice question.

    ``context`` and ``continuations`` are exactly what lm-evaluation-harness scores in log-likelihood
    mode (its ``doc_to_text`` with few-shot examples, and ``target_delimiter + choice``); ``norm_texts``
    are the strings whose character lengths ``acc_norm`` divides by (lm-eval's ``doc_to_choice``).
    """

    id: str
    question: str
    choices: list[str]
    gold: int | None  # index of the right choice; None when the file has no answer key
    context: str
    continuations: list[str]
    norm_texts: list[str]
    labels: list[int] | None = None  # TruthfulQA mc2: 1 for every true choice
    subject: str | None = None

    @property
    def true_indices(self) -> list[int]:
        """Every choice that counts as right (mc2 has several)."""
        if self.labels is not None:
            return [i for i, label in enumerate(self.labels) if label == 1]
        return [] if self.gold is None else [self.gold]


@dataclass
class TaskData:
    """A loaded benchmark: its questions (file order), how it is scored, and where the data came from."""

    name: str
    questions: list[Question]
    metric: Metric = "mc"
    report_acc_norm: bool = False  # lm-eval reports acc_norm for ARC, not for MMLU or TruthfulQA
    num_fewshot: int = 0
    source: str = "local"
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256
    notes: list[str] = field(default_factory=list)

    @property
    def scored(self) -> list[Question]:
        return [q for q in self.questions if q.gold is not None or q.labels is not None]

    @property
    def unscored(self) -> list[Question]:
        return [q for q in self.questions if q.gold is None and q.labels is None]

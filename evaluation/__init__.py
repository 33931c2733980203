"""Benchmarks (ARC, TruthfulQA MC1/MC2, MMLU, LR1, any MCQ CSV), base vs fine-tuned: ``python -m evaluation``.

    from evaluation.runner import EvalConfig, run
    out = run(EvalConfig(model="unsloth/Llama-3.2-3B-Instruct", tasks=["arc_challenge"], limit=500))
    out.results["tasks"]["arc_challenge"]["acc"]
"""

from evaluation.task import EvalError, Question, TaskData

__all__ = ["EvalError", "Question", "TaskData"]

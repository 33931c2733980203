"""One evaluation run: load the tasks, load the model once, score every task, write the results."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluation import fingerprint, generate, loglik, report, scoring
from evaluation.task import EvalError, TaskData
from evaluation.tasks import load_task

logger = logging.getLogger(__name__)

MODES = ("loglik", "generate")


@dataclass
class EvalConfig:
    model: str
    tasks: list[str]
    adapter: str | None = None
    data_dir: Path | None = None
    limit: int | None = None
    mode: str = "loglik"
    output: Path | None = Path("results.json")
    batch_size: int = 32
    num_fewshot: int | None = None  # mmlu only; None = lm-eval's 5
    seed: int = generate.DEFAULT_SEED
    device: str = "auto"
    quantization: str = "auto"
    max_new_tokens: int = generate.DEFAULT_MAX_NEW_TOKENS
    system_prompt: str | None = None
    progress: bool = True
    # generate mode: the backend (a registry name or auto) and its options; loglik always uses
    # transformers with model/adapter/quantization/device above.
    backend: str = "auto"
    backend_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise EvalError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.mode == "loglik" and self.backend not in ("auto", "transformers"):
            raise EvalError(f"--mode loglik scores log-likelihoods, which only the transformers backend can do; "
                            f"use --mode generate with --backend {self.backend}, or --backend transformers")
        if self.mode == "loglik" and self.backend == "auto":
            from inference.registry import option_fields, spec

            foreign = sorted(set(self.backend_options) - set(option_fields(spec("transformers").options)))
            if foreign:
                flag = "--" + foreign[0].replace("_", "-")
                raise EvalError(f"--mode loglik scores log-likelihoods in this process (transformers), which {flag} "
                                f"does not apply to; use --mode generate to evaluate through that backend")
        if self.limit is not None and self.limit < 1:
            raise EvalError(f"--limit must be a positive number of questions, got {self.limit}")
        if self.batch_size < 1:
            raise EvalError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.num_fewshot is not None and self.num_fewshot < 0:
            raise EvalError(f"--num-fewshot must be 0 or more, got {self.num_fewshot}")


@dataclass
class RunOutput:
    results: dict
    records: dict[str, list[dict]] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)


def load_model_for(config: EvalConfig) -> tuple[Any, dict]:
    """The raw model + tokenizer (loglik) or a chat Backend (generate), and how they were loaded."""
    if config.mode == "loglik":
        from inference.loading import load_model

        loaded = load_model(config.model, config.adapter, config.quantization, config.device,
                            require_chat_template=False)
        return loaded, {"device": loaded.device, "dtype": loaded.dtype, "quantization": loaded.quantization,
                        "adapter_merged": loaded.adapter_merged,
                        "max_length": loglik.model_max_length(loaded.model, loaded.tokenizer)}
    from inference import load_backend

    options = config.backend_options or {"base_model": config.model, "adapter": config.adapter,
                                         "quantization": config.quantization, "device": config.device}
    backend = load_backend(config.backend, **options)
    settings = {"backend": backend.description}
    if backend.name == "openai":  # the model is the one the server serves under that name
        settings["served_model"] = backend.model
    return backend, settings


def score_task(task: TaskData, handle: Any, config: EvalConfig) -> list[dict]:
    if config.mode == "loglik":
        requests = [(q.context, cont) for q in task.questions for cont in q.continuations]
        lls = loglik.loglikelihoods(handle.model, handle.tokenizer, requests, config.batch_size,
                                    desc=task.name, progress=config.progress)
        return scoring.loglik_records(task, lls)
    replies = generate.ask(handle, task.name, task.questions, config.seed, config.batch_size,
                           config.max_new_tokens, config.system_prompt, config.progress)
    return scoring.generate_records(task, replies)


def _header(config: EvalConfig, handle: Any, settings: dict) -> dict:
    model = getattr(handle, "model", None)
    served = settings.get("served_model")
    return {"model": served or config.model, "adapter": config.adapter, "mode": config.mode, "seed": config.seed,
            "limit": config.limit, "batch_size": config.batch_size,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "fingerprints": {"model": {"served_model": served, "server": settings["backend"]} if served
                             else fingerprint.model_fingerprint(config.model, model),
                             "adapter": fingerprint.adapter_fingerprint(config.adapter)},
            "settings": settings, "versions": fingerprint.versions(),
            "scoring": "lm-evaluation-harness 0.4.13 HFLM semantics (see evaluation/loglik.py)"
            if config.mode == "loglik" else "chat template, greedy, shuffled choices (see evaluation/generate.py)"}


def run(config: EvalConfig, backend: Any | None = None) -> RunOutput:
    """Evaluate ``config.tasks``; ``backend`` (generate mode) replaces loading one, e.g. in tests."""
    tasks = [load_task(name, config.data_dir, config.limit, config.num_fewshot) for name in config.tasks]
    if backend is not None:
        handle, settings = backend, {"backend": backend.name}
    else:
        handle, settings = load_model_for(config)
    out = RunOutput(results=_header(config, handle, settings))
    out.results["tasks"] = {}
    for task in tasks:
        start = time.perf_counter()
        records = score_task(task, handle, config)
        summary = scoring.summarize(task, records, config.mode)
        summary["seconds"] = round(time.perf_counter() - start, 2)
        logger.info("%s: %d questions (%s) scored in %.1f s", task.name, len(records), task.source, summary["seconds"])
        out.results["tasks"][task.name] = summary
        out.records[task.name] = records
    _write(out, config)
    return out


def _write(out: RunOutput, config: EvalConfig) -> None:
    if config.output is None:
        return
    stem = config.output.with_suffix("")
    for name, records in out.records.items():
        unscored = [r for r in records if "correct" not in r and "score" not in r]
        if unscored:
            path = report.write_predictions_csv(Path(f"{stem}.{name.replace(':', '_')}_predictions.csv"), unscored)
            out.results["tasks"][name]["predictions_csv"] = str(path)
            out.files[f"{name}_predictions_csv"] = path
    all_records = [r for records in out.records.values() for r in records]
    out.files["predictions"] = report.write_jsonl(Path(f"{stem}.predictions.jsonl"), all_records)
    out.results["predictions_file"] = str(out.files["predictions"])
    out.files["results"] = report.write_json(config.output, out.results)


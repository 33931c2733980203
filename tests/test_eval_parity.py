"""Our loglik mode against lm-evaluation-harness itself: same prompts, same scores, same predictions.

lm-eval runs offline here on the tiny model through local task YAMLs (``dataset_path: json`` with absolute
``data_files``). TruthfulQA and MMLU include lm-eval's own installed YAMLs, so their prompts, the
6-shot QA preamble and ``process_results_mc2`` are lm-eval's, not a copy.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from evaluation.runner import EvalConfig, run
from evaluation.tasks import load_task

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BATCH = 8

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shared_data() -> Path:
    if not (SHARED / "arc").is_dir():
        pytest.skip(f"shared benchmark data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="module")
def lm_eval_tasks_dir() -> Path:
    lm_eval = pytest.importorskip("lm_eval")
    return Path(lm_eval.__file__).parent / "tasks"


def run_lm_eval(model_dir: Path, yaml_dir: Path, task: str, limit: int, peft: Path | None = None,
                num_fewshot: int | None = None) -> list[dict]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    args = f"pretrained={model_dir},dtype=float32" + (f",peft={peft}" if peft else "")
    out = lm_eval.simple_evaluate(
        model="hf", model_args=args, tasks=[task], device="cpu", batch_size=BATCH, limit=limit,
        num_fewshot=num_fewshot, log_samples=True,
        task_manager=TaskManager(include_path=str(yaml_dir), include_defaults=False))
    return sorted(out["samples"][task], key=lambda s: s["doc_id"])


def run_ours(model_dir: Path, data_dir: Path, task: str, limit: int, tmp_path: Path,
             adapter: Path | None = None, num_fewshot: int | None = None) -> list[dict]:
    config = EvalConfig(model=str(model_dir), adapter=str(adapter) if adapter else None, tasks=[task],
                        data_dir=data_dir, limit=limit, batch_size=BATCH, device="cpu", progress=False,
                        num_fewshot=num_fewshot, output=tmp_path / f"{task}.json")
    return run(config).records[task]


def assert_same_requests(theirs: list[dict], task: str, data_dir: Path, limit: int) -> None:
    """lm-eval's (context, continuation) strings are exactly the ones we score."""
    questions = load_task(task, data_dir, limit).questions
    assert len(questions) == len(theirs)
    for q, sample in zip(questions, theirs):
        assert [tuple(a) for a in sample["arguments"]] == [(q.context, c) for c in q.continuations]


def assert_same(ours: list[dict], theirs: list[dict], metrics: tuple[str, ...], exact: bool = True) -> None:
    assert len(ours) == len(theirs)
    for mine, sample in zip(ours, theirs):
        their_lls = [ll for ll, _ in sample["filtered_resps"]]
        if exact:
            assert mine["lls"] == their_lls, f"doc {sample['doc_id']}"
        else:
            assert mine["lls"] == pytest.approx(their_lls, rel=1e-4), f"doc {sample['doc_id']}"
        for metric in metrics:
            mine_value = {"acc": mine.get("correct"), "acc_norm": mine.get("correct_norm")}[metric]
            assert float(mine_value) == sample[metric], f"doc {sample['doc_id']} {metric}"


def test_arc_challenge_matches_lm_eval(tiny_model_dir, shared_data, tmp_path):
    (tmp_path / "parity_arc.yaml").write_text(
        "task: parity_arc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {shared_data / 'arc' / 'llmfoundry_arc_challenge_test.jsonl'}\n"
        "output_type: multiple_choice\ntest_split: test\n"
        "doc_to_text: \"{{query}}\\nAnswer:\"\ndoc_to_choice: \"{{choices}}\"\ndoc_to_target: \"{{gold}}\"\n"
        "metric_list:\n  - metric: acc\n    higher_is_better: true\n  - metric: acc_norm\n    higher_is_better: true\n")
    theirs = run_lm_eval(tiny_model_dir, tmp_path, "parity_arc", 100)
    ours = run_ours(tiny_model_dir, shared_data, "arc_challenge", 100, tmp_path)
    assert_same_requests(theirs, "arc_challenge", shared_data, 100)
    assert_same(ours, theirs, ("acc", "acc_norm"))
    acc = sum(r["correct"] for r in ours) / 100
    assert acc == sum(s["acc"] for s in theirs) / 100


def test_arc_with_adapter_matches_lm_eval_peft(tiny_model_dir, tiny_adapter_dir, shared_data, tmp_path):
    """lm-eval keeps the LoRA unmerged, we merge it (faster): same predictions, scores equal to 1e-4."""
    (tmp_path / "parity_arc_lora.yaml").write_text(
        "task: parity_arc_lora\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {shared_data / 'arc' / 'llmfoundry_arc_challenge_test.jsonl'}\n"
        "output_type: multiple_choice\ntest_split: test\n"
        "doc_to_text: \"{{query}}\\nAnswer:\"\ndoc_to_choice: \"{{choices}}\"\ndoc_to_target: \"{{gold}}\"\n"
        "metric_list:\n  - metric: acc\n    higher_is_better: true\n  - metric: acc_norm\n    higher_is_better: true\n")
    theirs = run_lm_eval(tiny_model_dir, tmp_path, "parity_arc_lora", 40, peft=tiny_adapter_dir)
    ours = run_ours(tiny_model_dir, shared_data, "arc_challenge", 40, tmp_path, adapter=tiny_adapter_dir)
    base = run_ours(tiny_model_dir, shared_data, "arc_challenge", 40, tmp_path)
    assert_same(ours, theirs, ("acc", "acc_norm"), exact=False)
    assert [r["lls"] for r in ours] != [r["lls"] for r in base]  # the adapter really changed the model


def truthfulqa_hub_layout(shared_data: Path, path: Path, n: int) -> None:
    """mc_task.json ({answer: label}) in the hub's layout ({"choices", "labels"}), which lm-eval's YAML reads."""
    docs = json.loads((shared_data / "truthfulqa" / "mc_task.json").read_text())[:n]
    with open(path, "w") as f:
        for doc in docs:
            row = {"question": doc["question"]}
            for key in ("mc1_targets", "mc2_targets"):
                row[key] = {"choices": list(doc[key]), "labels": list(doc[key].values())}
            f.write(json.dumps(row) + "\n")


@pytest.mark.parametrize("variant", ["mc1", "mc2"])
def test_truthfulqa_matches_lm_eval(variant, tiny_model_dir, shared_data, lm_eval_tasks_dir, tmp_path):
    data = tmp_path / "tqa.jsonl"
    truthfulqa_hub_layout(shared_data, data, 40)
    (tmp_path / f"parity_tqa_{variant}.yaml").write_text(
        f"include: {lm_eval_tasks_dir / 'truthfulqa' / f'truthfulqa_{variant}.yaml'}\n"
        f"task: parity_tqa_{variant}\ntag: []\ndataset_path: json\ndataset_name: null\n"
        f"dataset_kwargs:\n  data_files:\n    validation: {data}\n")
    theirs = run_lm_eval(tiny_model_dir, tmp_path, f"parity_tqa_{variant}", 40)
    ours = run_ours(tiny_model_dir, shared_data, f"truthfulqa_{variant}", 40, tmp_path)
    assert_same_requests(theirs, f"truthfulqa_{variant}", shared_data, 40)
    assert theirs[0]["arguments"][0][0].startswith("Q: What is human life expectancy in the United States?\n")
    for mine, sample in zip(ours, theirs):
        assert mine["lls"] == [ll for ll, _ in sample["filtered_resps"]]
        if variant == "mc1":
            assert float(mine["correct"]) == sample["acc"]
        else:
            assert mine["score"] == pytest.approx(sample["acc"], rel=1e-9, abs=1e-12)


def mmlu_slice(shared_data: Path, subject: str, split: str, out_dir: Path) -> Path:
    """One subject's CSV as jsonl with a ``choices`` list, the layout of cais/mmlu that lm-eval's template reads."""
    with open(shared_data / "mmlu" / split / f"{subject}_{split}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    path = out_dir / f"{subject}_{split}.jsonl"
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps({"question": row["question"], "subject": subject, "answer": int(row["answer"]),
                                "choices": [row[f"choice{i}"] for i in range(4)]}) + "\n")
    return path


def test_mmlu_five_shot_matches_lm_eval(tiny_model_dir, shared_data, lm_eval_tasks_dir, tmp_path):
    subject = "high_school_biology"
    data_dir = tmp_path / "data"
    for split in ("dev", "test"):  # a data dir with one subject, pointing at the shared files
        (data_dir / "mmlu" / split).mkdir(parents=True)
        (data_dir / "mmlu" / split / f"{subject}_{split}.csv").symlink_to(
            shared_data / "mmlu" / split / f"{subject}_{split}.csv")
    test, dev = mmlu_slice(shared_data, subject, "test", tmp_path), mmlu_slice(shared_data, subject, "dev", tmp_path)
    (tmp_path / "parity_mmlu.yaml").write_text(
        f"include: {lm_eval_tasks_dir / 'mmlu' / 'default' / 'mmlu_high_school_biology.yaml'}\n"
        f"task: parity_mmlu\ntag: []\ndataset_path: json\ndataset_name: null\n"
        f"dataset_kwargs:\n  data_files:\n    test: {test}\n    dev: {dev}\n")
    theirs = run_lm_eval(tiny_model_dir, tmp_path, "parity_mmlu", 12, num_fewshot=5)
    ours = run_ours(tiny_model_dir, data_dir, "mmlu", 12, tmp_path)
    assert_same_requests(theirs, "mmlu", data_dir, 12)
    context = theirs[0]["arguments"][0][0]
    assert context.startswith("The following are multiple choice questions (with answers) about high school biology.\n\n")
    assert context.count("\nAnswer: ") == 5 and context.endswith("\nD. " + ours[0]["choices"][3] + "\nAnswer:")
    assert_same(ours, theirs, ("acc",))

"""--report_to wandb with the real wandb package, offline: what a user later sees after `wandb sync`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from training.config import TrainConfig
from training.errors import TrainingError
from training.sft import main

pytest.importorskip("wandb")
LOG_BLOCK = 32768  # the .wandb file is a LevelDB-style log: 32 KiB blocks of framed records


def wandb_records(path: Path) -> list:
    """Every protobuf record of an offline run file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a W&B run file"
    records, pending, pos = [], b"", 7  # 7-byte file header, then 7-byte record headers (crc, length, type)
    while pos + 7 <= len(data):
        left = LOG_BLOCK - pos % LOG_BLOCK
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        if left < 7 or (length == 0 and kind == 0):  # the rest of the block is padding
            pos += left
            continue
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a FULL record, or the LAST piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def items(entries) -> dict:
    return {entry.key or "/".join(entry.nested_key): json.loads(entry.value_json) for entry in entries}


def history(records: list) -> list[dict]:
    return [items(r.history.item) for r in records if r.WhichOneof("record_type") == "history"]


def summary(records: list) -> dict:
    final: dict = {}
    for record in records:
        if record.WhichOneof("record_type") == "summary":
            final.update(items(record.summary.update))
    return final


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch) -> None:
    for name in ("WANDB_PROJECT", "WANDB_DIR", "WANDB_API_KEY", "WANDB_RUN_ID", "WANDB_NAME"):
        monkeypatch.delenv(name, raising=False)  # also undoes the WANDB_PROJECT / WANDB_DIR the run sets
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_SILENT", "true")


def qa_rows(path: Path) -> Path:
    rows = [{"conversations": [{"from": "human", "value": "What is 12 + 30?"}, {"from": "gpt", "value": "42"}]}] * 16
    rows.append({"conversations": [{"from": "human", "value": "unanswered"}]})
    path.write_text(json.dumps(rows))
    return path


@pytest.mark.slow
def test_an_offline_run_logs_the_losses_under_the_project_and_run_name(tiny_model_dir, tmp_path, offline_wandb):
    out = tmp_path / "tutor-run"
    metrics = main(wandb_config(tiny_model_dir, qa_rows(tmp_path / "qa.json"), out, max_steps=6))
    [run_file] = out.glob("wandb/offline-run-*/run-*.wandb")  # beside the adapter, ready for `wandb sync`
    records = wandb_records(run_file)
    [run] = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert (run.project, run.display_name) == ("llama-tutor", "tutor-run")
    logged = [(row["train/global_step"], row["train/loss"]) for row in history(records) if "train/loss" in row]
    expected = [(e["step"], e["loss"]) for e in metrics["log_history"] if "loss" in e]
    assert [step for step, _ in logged] == [step for step, _ in expected] == [1, 2, 4, 6]
    assert [loss for _, loss in logged] == pytest.approx([loss for _, loss in expected])
    totals = summary(records)
    assert totals["tutor/train_tokens_per_second"] == metrics["train_tokens_per_second"] > 0
    assert totals["tutor/skipped/ends without an assistant reply"] == 1
    assert totals["tutor/output_dir"] == str(out)
    assert records[-1].WhichOneof("record_type") == "exit"  # the run was closed, not left open
    assert not (out / "runs").exists()  # W&B only: no TensorBoard logs


def wandb_config(model: Path, data: Path, out: Path, **overrides) -> TrainConfig:
    fields = dict(model=str(model), dataset=str(data), output_dir=str(out), report_to="wandb", logging_steps=2,
                  per_device_train_batch_size=4, max_seq_length=128, save_steps=1000, learning_rate=5e-3)
    return TrainConfig(**{**fields, **overrides})


@pytest.mark.slow
def test_a_resumed_run_continues_the_same_wandb_run(tiny_model_dir, tmp_path, offline_wandb):
    data, out = qa_rows(tmp_path / "qa.json"), tmp_path / "tutor-run"
    main(wandb_config(tiny_model_dir, data, out, max_steps=4, save_steps=2))
    main(wandb_config(tiny_model_dir, data, out, max_steps=6, save_steps=2, resume_from_checkpoint="true"))
    first, second = sorted(out.glob("wandb/offline-run-*/run-*.wandb"), key=lambda p: p.stat().st_mtime)
    ids = [[r.run.run_id for r in wandb_records(path) if r.WhichOneof("record_type") == "run"][0]
           for path in (first, second)]
    assert ids[0] == ids[1] == first.stem.removeprefix("run-")
    steps = [row["train/global_step"] for row in history(wandb_records(second)) if "train/loss" in row]
    assert steps == [6]  # the resumed part only: steps 5-6, logged every 2
    assert "WANDB_RUN_ID" not in os.environ and "WANDB_DIR" not in os.environ  # nothing left for a next run


def test_wandb_without_a_key_fails_before_loading_with_the_fix(tmp_path, monkeypatch):
    for name in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    config = TrainConfig(model="/no/such/model", dataset="/no/such/data.json", report_to="wandb")
    with pytest.raises(TrainingError, match=r"^--report_to wandb found no W&B API key: run `wandb login` or set "
                                            r"WANDB_API_KEY; or set WANDB_MODE=offline"):
        main(config)

"""The training benchmark's --profile summary: time per step by kernel, each counted once."""

from __future__ import annotations

import torch

from bench.train_throughput import summarize_profile


def test_profile_summary_counts_each_operator_per_step():
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
    with profiler:
        for _ in range(2):  # two "steps", each with three matmuls and one add
            c = a @ b @ b @ b
            c = c + 1
    summary = summarize_profile(profiler, steps=2, gpu=False)
    rows = {k["name"]: k for k in summary["kernels"]}
    assert summary["clock"] == "cpu"
    assert rows["aten::mm"]["calls_per_step"] == 3 and rows["aten::add"]["calls_per_step"] == 1
    assert summary["kernels"][0]["name"] == "aten::mm"  # three 256^3 matmuls outweigh one add
    assert abs(sum(k["share"] for k in summary["kernels"]) - 1) < 0.01
    assert summary["ms_per_step"] >= sum(k["ms_per_step"] for k in summary["kernels"]) - 0.2

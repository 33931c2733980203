#!/usr/bin/env bash
# End-to-end check of `python -m training` on a CUDA GPU without network: a random-weight Llama-3.2-3B
# (exact config, real tokenizer) and a synthetic FineTome-like ShareGPT file are built locally, then the
# FineTome recipe trains 30 steps with Unsloth, resumes to 40, trains 10 steps on the transformers path,
# merges the adapter and chats with it. Losses are meaningless on random weights; this checks that
# every step runs and records speed and memory (metrics.json) for each backend.
#
#   bash bench/sft_smoke.sh                      # work files in /tmp/sft-smoke
#   WORK_DIR=/data/smoke BACKENDS=unsloth bash bench/sft_smoke.sh --per_device_train_batch_size 4
#   TINY=1 BACKENDS=transformers bash bench/sft_smoke.sh   # the same flow on CPU with a tiny model
#
# Extra arguments go to every `python -m training sft` call. Needs ../shared/data/tokenizer/llama3
# (or TUTOR_LLAMA3_TOKENIZER_DIR) for the tokenizer.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WORK=${WORK_DIR:-/tmp/sft-smoke}
BACKENDS=${BACKENDS:-unsloth transformers}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
mkdir -p "$WORK"
REPORT=none
if $PY -c "import tensorboard" 2>/dev/null; then REPORT=tensorboard; fi

echo "== building the random-weight model and the synthetic dataset in $WORK"
$PY - "$WORK" "${TINY:-0}" <<'EOF'
import json, sys
from pathlib import Path
from bench.common import build_random_llama32_3b
from bench.train_throughput import synth_conversations
work, tiny = Path(sys.argv[1]), sys.argv[2] == "1"
if tiny:
    from tests.tiny_models import build_tiny_llama
    if not (work / "model" / "config.json").is_file():
        build_tiny_llama(work / "model")
else:
    build_random_llama32_3b(work / "model")
(work / "finetome-like.json").write_text(json.dumps(synth_conversations("mix", 600, 2048, seed=1)))
print("model and data ready")
EOF

MODEL="$WORK/model"
COMMON=(--config recipes/llama-3.2-3b-finetome.yaml --model "$MODEL" --dataset "$WORK/finetome-like.json"
        --eval_split 0.02 --logging_steps 5 --eval_steps 15 --save_steps 15 --report_to "$REPORT")

summary() {
  $PY - "$1" <<'EOF'
import json, sys
m = json.load(open(f"{sys.argv[1]}/metrics.json"))
losses = [round(e["loss"], 3) for e in m["log_history"] if "loss" in e]
print(f"   backend={m['runtime']['backend']} steps={m['global_step']} tokens/s={m['train_tokens_per_second']:.0f} "
      f"peak={m['peak_memory_gib']} GiB runtime={m['train_runtime_s']:.1f}s skipped={m['skipped_rows']} "
      f"lengths={m['length_stats']} losses={losses}")
EOF
}

for BACKEND in $BACKENDS; do
  OUT="$WORK/out-$BACKEND"
  rm -rf "$OUT"
  STEPS=30; [ "$BACKEND" = transformers ] && STEPS=10
  echo "== $BACKEND: $STEPS steps"
  $PY -m training sft "${COMMON[@]}" --backend "$BACKEND" --max_steps $STEPS --output_dir "$OUT" "$@"
  summary "$OUT"
  ls "$OUT"
  if [ "$BACKEND" = unsloth ]; then
    echo "== $BACKEND: resume from the newest checkpoint to step 40"
    $PY -m training sft "${COMMON[@]}" --backend "$BACKEND" --max_steps 40 --output_dir "$OUT" \
        --resume_from_checkpoint true "$@"
    summary "$OUT"
  fi
done

FIRST=$(echo $BACKENDS | awk '{print $1}')
echo "== export: merge the $FIRST adapter into the 16-bit base"
$PY -m training export --adapter "$WORK/out-$FIRST" --base-model "$MODEL" --merge "$WORK/merged"
ls "$WORK/merged"
echo "== chat with base + adapter (random weights: the words are noise, the point is that it runs)"
$PY -m inference --base-model "$MODEL" --adapter "$WORK/out-$FIRST" --temperature 0 --max-new-tokens 16 \
    "What is LoRA?"
echo "== smoke test passed"

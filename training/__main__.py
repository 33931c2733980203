"""Train and export Llama Tutor adapters.

    python -m training sft --config recipes/llama-3.2-3b-finetome.yaml
    python -m training sft --config recipes/llama-3.2-3b-finetome.yaml --max_steps 60 --report_to wandb
    python -m training dpo --config recipes/llama-3.2-3b-tutor-dpo.yaml
    python -m training dpo --dataset feedback.jsonl --adapter outputs/llama-3.2-3b-finetome
    python -m training export --adapter outputs/llama-3.2-3b-finetome --merge outputs/merged
    accelerate launch --multi_gpu --num_processes 2 -m training sft --config recipes/llama-3.2-3b-finetome.yaml

Problems a user can fix (missing file, bad flag, offline hub id) end with one line on stderr and exit
status 1, without a traceback.
"""

from __future__ import annotations

import logging
import os
import sys

from training.distributed import pin_one_gpu_unless_distributed
from training.errors import TrainingError

USAGE = """usage: python -m training {sft,dpo,export} [options]

  sft      fine-tune a LoRA adapter on conversations (python -m training sft --help)
  dpo      preference-train a LoRA adapter on chosen/rejected pairs, e.g. the app's feedback file
           (python -m training dpo --help)
  export   merge, convert to GGUF or upload an adapter (python -m training export --help)"""


def run(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "sft":
        from training.sft import cli
    elif command == "dpo":
        from training.dpo import cli
    elif command == "export":
        from training.export import cli
    else:
        print(f"error: unknown command {command!r}; choose sft, dpo or export\n\n{USAGE}", file=sys.stderr)
        return 2
    return cli(rest)


def main() -> None:
    pin_one_gpu_unless_distributed()
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # optional CPU kernels it cannot find
    try:
        code = run(sys.argv[1:])
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()

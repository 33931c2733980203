"""Export a trained adapter: merge it into a 16-bit model, convert to GGUF, or upload it to the hub.

    python -m training export --adapter outputs/llama-3.2-3b-finetome --merge outputs/merged
    python -m training export --adapter outputs/llama-3.2-3b-finetome --gguf outputs/tutor.gguf --quant q4_k_m
    HF_TOKEN=hf_... python -m training export --adapter outputs/llama-3.2-3b-finetome --push-to-hub you/llama-tutor

The base model is the one recorded in adapter_config.json unless ``--base-model`` names another (e.g.
the 16-bit original of a 4-bit checkpoint). GGUF needs llama.cpp: ``LLAMA_CPP_DIR`` (or ``--llama-cpp``)
pointing at a llama.cpp checkout (convert_hf_to_gguf.py, gguf-py, and llama-quantize for k-quants), or
Unsloth on a CUDA machine (which fetches and builds llama.cpp itself, so needs the network).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from inference.loading import read_adapter_base
from training.checkpoints import STAGING
from training.errors import TrainingError, fail
from training.finite import check_adapter_file
from training.gguf import export_gguf

logger = logging.getLogger(__name__)

DTYPES = ("bfloat16", "float16", "float32")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training export", description=__doc__.split("\n\n")[0])
    p.add_argument("--adapter", required=True, help="adapter folder written by python -m training sft")
    p.add_argument("--base-model", "--base_model", dest="base_model",
                   help="base to merge into (default: base_model_name_or_path from adapter_config.json)")
    p.add_argument("--merge", metavar="OUT", help="write base + adapter as one 16-bit model to OUT")
    p.add_argument("--dtype", choices=DTYPES, default="bfloat16", help="weights of the merged model")
    p.add_argument("--gguf", metavar="OUT", help="write a GGUF file (OUT.gguf, or a folder to put it in)")
    p.add_argument("--quant", default="q4_k_m", help="GGUF type: q4_k_m, q5_k_m, q8_0, f16, bf16, ...")
    p.add_argument("--llama-cpp", "--llama_cpp", dest="llama_cpp", default=os.environ.get("LLAMA_CPP_DIR"),
                   help="llama.cpp folder with convert_hf_to_gguf.py (default: $LLAMA_CPP_DIR)")
    p.add_argument("--push-to-hub", "--push_to_hub", dest="push_to_hub", metavar="REPO",
                   help="upload the adapter folder to this hub repo (token from $HF_TOKEN)")
    p.add_argument("--private", action="store_true", help="create the hub repo as private")
    return p


def adapter_base(adapter: str, override: str | None) -> str:
    config_path = Path(adapter).expanduser() / "adapter_config.json"
    if not config_path.is_file():
        raise TrainingError(f"--adapter {adapter!r} has no adapter_config.json: pass the output_dir of a training run")
    if override:
        return override
    base = read_adapter_base(str(config_path.parent))
    if not base:
        raise TrainingError(f"{config_path} names no base model: pass --base-model")
    return base


def check_not_4bit(base: str) -> None:
    """Merging into a 4-bit checkpoint would round the update into 4-bit weights: refuse, say what to use."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(os.path.expanduser(base))
    except OSError as exc:
        raise TrainingError(f"could not read the base model {base!r} ({str(exc).splitlines()[0][:160]}); pass a "
                            "local 16-bit model directory with --base-model") from None
    quant = getattr(config, "quantization_config", None) or {}
    quant = quant if isinstance(quant, dict) else quant.to_dict()
    if quant.get("load_in_4bit") or quant.get("quant_method") in ("gptq", "awq"):
        raise TrainingError(
            f"base model {base!r} is stored in 4-bit; merging into it would round the LoRA update away. Pass the "
            "16-bit original with --base-model (e.g. unsloth/Llama-3.2-3B-Instruct for "
            "unsloth/Llama-3.2-3B-Instruct-bnb-4bit)")


def merge(adapter: str, base: str, out: str, dtype: str = "bfloat16") -> Path:
    """base + adapter -> one model folder (weights in ``dtype``) with the adapter's tokenizer."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    check_not_4bit(base)
    logger.info("merging %s into %s (%s)", adapter, base, dtype)
    model = AutoModelForCausalLM.from_pretrained(os.path.expanduser(base), dtype=getattr(torch, dtype))
    model = PeftModel.from_pretrained(model, os.path.expanduser(adapter)).merge_and_unload()
    out_dir = Path(out).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    _tokenizer(adapter, base).save_pretrained(out_dir)
    logger.info("merged model written to %s", out_dir)
    return out_dir


def _tokenizer(adapter: str, base: str) -> Any:
    from transformers import AutoTokenizer

    source = adapter if (Path(adapter).expanduser() / "tokenizer_config.json").is_file() else base
    return AutoTokenizer.from_pretrained(os.path.expanduser(source))


def push_adapter(adapter: str, repo: str, private: bool = False) -> str:
    """Upload the adapter folder (not its checkpoints) to ``repo``; the token comes from HF_TOKEN only."""
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise TrainingError("--push-to-hub needs a write token in the HF_TOKEN environment variable "
                            "(create one at https://huggingface.co/settings/tokens)")
    if repo.count("/") > 1 or not repo.strip("/"):
        raise TrainingError(f"--push-to-hub {repo!r} is not a repo id: use owner/name")
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        api.create_repo(repo, repo_type="model", private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(Path(adapter).expanduser()), repo_id=repo, repo_type="model",
                                 commit_message="Upload Llama Tutor adapter",
                                 ignore_patterns=["checkpoint-*", "checkpoint-*/**", f"{STAGING}/**", "runs/**",
                                                  "wandb/**", "*.bin"])
    except Exception as exc:  # HTTP, connection and offline-mode errors all mean the same to the user
        text = str(exc).replace(token, "***").strip()
        reason = text.splitlines()[0][:200] if text else type(exc).__name__
        raise TrainingError(f"upload to {repo!r} failed: {reason}") from None
    url = getattr(info, "commit_url", None) or f"https://huggingface.co/{repo}"
    logger.info("uploaded %s to %s", adapter, url)
    return url


def main(args: argparse.Namespace) -> dict[str, str]:
    if not (args.merge or args.gguf or args.push_to_hub):
        raise TrainingError("nothing to do: pass --merge OUT, --gguf OUT and/or --push-to-hub REPO")
    base = adapter_base(args.adapter, args.base_model)
    check_adapter_file(args.adapter)
    done: dict[str, str] = {}
    if args.merge:
        done["merged"] = str(merge(args.adapter, base, args.merge, args.dtype))
    if args.gguf:
        done["gguf"] = str(export_gguf(args.adapter, base, args.gguf, args.quant, args.llama_cpp,
                                       merged=done.get("merged"), merge_fn=merge))
    if args.push_to_hub:
        done["hub"] = push_adapter(args.adapter, args.push_to_hub, args.private)
    return done


def cli(argv: list[str]) -> int:
    parser = build_parser()
    parser.error = lambda message: fail(  # type: ignore[method-assign]
        f"{message} (see python -m training export --help)")
    done = main(parser.parse_args(argv))
    for what, where in done.items():
        print(f"{what}: {where}")
    return 0

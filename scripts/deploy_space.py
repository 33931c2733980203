"""Deploy Llama Tutor to a Hugging Face Space (Gradio SDK).

    export HF_TOKEN=hf_...      # a token with write access: https://huggingface.co/settings/tokens
    python -m scripts.deploy_space your-name/llama-tutor --hardware cpu-basic --adapter outputs/finetome
    python -m scripts.deploy_space your-name/llama-tutor --private --hardware a10g-small

Creates the Space if needed, uploads only what the app needs (app.py, ui/, inference/, quiz/,
requirements.txt, the screenshots and a README.md with the Space's front matter) and sets the Space
variables that choose the model. On CPU hardware (the free ``cpu-basic`` and new Spaces) the Space
serves a GGUF through llama.cpp: its requirements leave out torch and the rest of the GPU stack, and an
adapter is converted here to a GGUF LoRA and uploaded with the app. On a GPU it serves through
transformers (TUTOR_BASE_MODEL, TUTOR_ADAPTER, TUTOR_QUANTIZATION).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import SpaceHardware

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BASE_MODEL = "unsloth/Llama-3.2-3B-Instruct"  # the app's default (inference.DEFAULT_BASE_MODEL)
APP_FILES = ("app.py", "requirements.txt")
# What a CPU Space installs (from requirements.txt, with its pins): no torch, transformers or peft.
CPU_PACKAGES = ("gradio", "spaces", "huggingface_hub", "llama-cpp-python", "openai", "pypdf")
# Prebuilt CPU wheels of llama-cpp-python, where one exists for the pinned version (else pip builds it).
LLAMA_CPP_WHEELS = "--extra-index-url https://abetlen.github.io/llama-cpp-python/whl/cpu"
SPACE_LORA = "adapter-lora.gguf"
# Variables that only one kind of hardware's backend takes; a switch of hardware removes the other's.
GPU_ONLY = ("TUTOR_QUANTIZATION", "TUTOR_DEVICE", "TUTOR_STATIC_CACHE")
CPU_ONLY = ("TUTOR_GGUF", "TUTOR_THREADS", "TUTOR_CACHE_MB")
APP_PACKAGES = ("ui", "inference", "quiz")
SCREENSHOTS = "docs/screenshots"
REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def front_matter(base_model: str = DEFAULT_BASE_MODEL, adapter: str | None = None,
                 hardware: str = "a10g-small") -> str:
    """The YAML block a Space reads from the top of README.md (README.md starts with the default one)."""
    models = [base_model] + ([adapter] if adapter and not Path(adapter).exists() else [])
    lines = ["---", "title: Llama Tutor", "emoji: 🦙", "colorFrom: indigo", "colorTo: yellow", "sdk: gradio",
             "sdk_version: 6.31.0", "app_file: app.py", 'python_version: "3.11"',
             f"suggested_hardware: {hardware}", "models:", *(f"  - {m}" for m in models), "license: apache-2.0",
             "short_description: Patient teaching assistant that explains and quizzes you", "---"]
    return "\n".join(lines) + "\n"


def space_readme(root: Path, header: str) -> str:
    """The project README (its own front matter, if any, replaced) under the Space's front matter."""
    readme = root / "README.md"
    body = readme.read_text(encoding="utf-8") if readme.is_file() else "# Llama Tutor\n"
    if body.startswith("---\n"):
        end = body.find("\n---\n", 4)
        body = body[end + 5:] if end != -1 else body
    return header + "\n" + body.lstrip("\n")


def collect_files(root: Path) -> list[Path]:
    """Paths (relative to ``root``) of everything the running app needs; no tests, caches or venvs."""
    files = [Path(name) for name in APP_FILES if (root / name).is_file()]
    missing = [name for name in ("app.py", *APP_PACKAGES) if not (root / name).exists()]
    if missing:
        raise FileNotFoundError(f"{root} is not the project folder: missing {', '.join(missing)}")
    for package in APP_PACKAGES:
        files += sorted(p.relative_to(root) for p in (root / package).rglob("*")
                        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    files += sorted(p.relative_to(root) for p in (root / SCREENSHOTS).glob("*.png"))
    return files


def stage(root: Path, dest: Path, readme: str, cpu: bool = False, lora: Path | None = None) -> list[Path]:
    """Copy the app's files into ``dest`` with the Space README; returns the relative paths staged.

    ``cpu``: the requirements are cut to what the llama.cpp backend needs; ``lora`` (a GGUF LoRA) goes
    along as ``SPACE_LORA``.
    """
    files = collect_files(root)
    for rel in files:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dest / rel)
    if cpu:
        (dest / "requirements.txt").write_text(cpu_requirements(root / "requirements.txt"), encoding="utf-8")
    if lora is not None:
        shutil.copy2(lora, dest / SPACE_LORA)
        files.append(Path(SPACE_LORA))
    (dest / "README.md").write_text(readme, encoding="utf-8")
    return [*files, Path("README.md")]


def cpu_requirements(requirements: Path) -> str:
    """requirements.txt for a CPU Space: the pinned lines of ``CPU_PACKAGES`` only."""
    kept = [line for line in requirements.read_text(encoding="utf-8").splitlines()
            if re.split(r"[=<>~!\[ ;]", line.strip(), maxsplit=1)[0].lower() in CPU_PACKAGES]
    return "\n".join(["# A CPU Space: the GGUF backend only (llama.cpp), no torch.", LLAMA_CPP_WHEELS, *kept]) + "\n"


def is_cpu(hardware: str) -> bool:
    return hardware.startswith("cpu")


def space_variables(args: argparse.Namespace, cpu: bool = False,
                    lora: bool = False) -> tuple[dict[str, str], list[str]]:
    """(variables to set, variables to delete): ``--adapter none`` switches the Space to the base model;
    the variables of the other kind of hardware's backend are deleted."""
    variables = {"TUTOR_BASE_MODEL": args.base_model}
    if cpu:
        variables["TUTOR_BACKEND"] = "llamacpp"
        if args.gguf:
            variables["TUTOR_GGUF"] = args.gguf
    elif args.quantization:
        variables["TUTOR_QUANTIZATION"] = args.quantization
    if args.adapter and args.adapter.lower() != "none":
        variables["TUTOR_ADAPTER"] = SPACE_LORA if lora else args.adapter
    removed = ["TUTOR_ADAPTER"] if args.adapter and args.adapter.lower() == "none" else []
    removed += list(GPU_ONLY) if cpu else [*CPU_ONLY, "TUTOR_BACKEND"]
    return variables, removed


def space_lora(adapter: str, base_model: str) -> Path:
    """The adapter as a GGUF LoRA, converted here (a CPU Space has neither torch nor llama.cpp's converter)."""
    from inference.backend import BackendError
    from inference.gguf import adapter_to_gguf
    from inference.loading import looks_like_path

    try:
        return adapter_to_gguf(adapter, base_model if looks_like_path(base_model) else None)
    except BackendError as exc:
        raise DeployError(f"the adapter must become a GGUF LoRA for a CPU Space, and that failed: {exc}") from None


class DeployError(Exception):
    """A problem with what is being deployed (not with the hub), said in one line."""


class HubAnswerError(Exception):
    """The hub answered, but not in the form its API promises (invalid JSON, another shape)."""


def ask(what: str, call: Callable[[], Any]) -> Any:
    """``call()`` against the hub; an answer huggingface_hub cannot read becomes one ``HubAnswerError``.

    HTTP errors and invalid names pass through: ``main`` reports those on their own.
    """
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    try:
        return call()
    except (HfHubHTTPError, HFValidationError):
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # JSONDecodeError is a ValueError
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise HubAnswerError(f"{what} ({type(exc).__name__}{f': {detail}' if detail else ''})") from exc


def space_hardware(api: Any, args: argparse.Namespace) -> str:
    """``--hardware``, else what the Space runs on (or asked for) now: ``cpu-basic`` for a new Space."""
    if args.hardware:
        return args.hardware
    runtime = ask("reading the Space's hardware", lambda: api.get_space_runtime(args.space))
    return str(getattr(runtime, "requested_hardware", None) or getattr(runtime, "hardware", None) or "cpu-basic")


def deploy(api: Any, args: argparse.Namespace, root: Path = ROOT) -> str:
    """Create/update the Space through ``api`` (a ``huggingface_hub.HfApi``); returns its URL."""
    adapter = args.adapter if args.adapter and args.adapter.lower() != "none" else None
    space = args.space
    ask("creating the Space", lambda: api.create_repo(space, repo_type="space", space_sdk="gradio",
                                                      private=args.private, exist_ok=True))
    hardware = space_hardware(api, args)
    cpu = is_cpu(hardware)
    if cpu and args.quantization:
        raise DeployError(f"--quantization applies to GPU Spaces; {hardware} serves a GGUF (its quantization is "
                          "in the file: choose one with --gguf)")
    lora = space_lora(adapter, args.base_model) if cpu and adapter else None
    print(f"Deploying for {hardware}: {'llama.cpp (GGUF)' if cpu else 'transformers'} backend")
    with tempfile.TemporaryDirectory(prefix="llama-tutor-space-") as tmp:
        readme = space_readme(root, front_matter(args.base_model, None if lora else adapter,
                                                 "cpu-basic" if cpu else "a10g-small"))
        staged = stage(root, Path(tmp), readme, cpu=cpu, lora=lora)
        print(f"Uploading {len(staged)} files to {space} …")
        # delete_patterns drops modules a previous deploy uploaded that no longer exist here.
        ask("uploading the files", lambda: api.upload_folder(
            folder_path=tmp, repo_id=space, repo_type="space", delete_patterns=["*.py"],
            commit_message="Deploy Llama Tutor"))
    variables, removed = space_variables(args, cpu=cpu, lora=lora is not None)
    for key, value in variables.items():
        ask(f"setting {key}", lambda: api.add_space_variable(space, key, value))
    existing = ask("reading the Space variables",
                   lambda: {str(k): str(v.value) for k, v in api.get_space_variables(space).items()})
    for key in removed:
        if key in existing:
            ask(f"deleting {key}", lambda: api.delete_space_variable(space, key))
    if adapter is None and "TUTOR_ADAPTER" in existing and "TUTOR_ADAPTER" not in removed:
        print(f"Note: the Space keeps its TUTOR_ADAPTER={existing['TUTOR_ADAPTER']!r}; "
              "pass --adapter none to serve the base model.")
    if args.hardware:
        ask("requesting hardware", lambda: api.request_space_hardware(space, args.hardware))
    return f"https://huggingface.co/spaces/{space}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m scripts.deploy_space", description=__doc__.splitlines()[0],
                                epilog="The token is read from HF_TOKEN and never printed.")
    p.add_argument("space", help="the Space to create or update, as owner/name")
    p.add_argument("--adapter", help="LoRA adapter the Space serves: a hub id (a local folder too on CPU "
                                     "hardware, where it is converted and uploaded); 'none' = the base model")
    p.add_argument("--gguf", help="CPU hardware: the GGUF to serve, owner/repo:file.gguf on the hub "
                                  "(default: the Q4_K_M GGUF of --base-model)")
    p.add_argument("--base-model", default=DEFAULT_BASE_MODEL, help="base model hub id (default: %(default)s)")
    p.add_argument("--quantization", choices=("auto", "4bit", "none"), help="sets TUTOR_QUANTIZATION")
    p.add_argument("--private", action="store_true", help="create the Space as private")
    p.add_argument("--hardware", choices=[h.value for h in SpaceHardware], metavar="HARDWARE",
                   help="ask for this hardware: cpu-basic (free: GGUF through llama.cpp) or a GPU such as "
                        "a10g-small (paid, needs billing); default: what the Space has (cpu-basic when new)")
    return p


def _first_line(exc: Exception, token: str) -> str:
    text = str(exc).replace(token, "***").strip()
    return text.splitlines()[0] if text else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not REPO_ID.match(args.space):
        print(f"error: the Space must be written owner/name (e.g. your-name/llama-tutor), got {args.space!r}",
              file=sys.stderr)
        return 1
    token = os.environ.get("HF_TOKEN", "").strip()
    if not token:
        print("error: HF_TOKEN is not set: create a token with write access at "
              "https://huggingface.co/settings/tokens, then `export HF_TOKEN=...` and run this again.",
              file=sys.stderr)
        return 1
    import httpx
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    try:
        url = deploy(HfApi(token=token), args)
    except HfHubHTTPError as exc:
        print(f"error: the Hugging Face Hub refused the deploy: {_first_line(exc, token)}", file=sys.stderr)
        return 1
    except HubAnswerError as exc:
        message = (f"error: the Hugging Face Hub sent an answer this script cannot read while "
                   f"{_first_line(exc, token)}; check that HF_ENDPOINT ({constants.ENDPOINT}) is the Hub or a "
                   "mirror of it, and run this again later.")
        print(message.replace(token, "***"), file=sys.stderr)
        return 1
    except HFValidationError as exc:
        print(f"error: the Space name {args.space!r} is not valid on the hub: {_first_line(exc, token)}",
              file=sys.stderr)
        return 1
    except (httpx.TransportError, ConnectionError) as exc:  # ConnectionError: HF_HUB_OFFLINE is set
        print(f"error: could not reach the Hugging Face Hub ({_first_line(exc, token)}); check the network "
              "connection or HF_ENDPOINT and run this again.", file=sys.stderr)
        return 1
    except (FileNotFoundError, DeployError) as exc:
        print(f"error: {exc}".replace(token, "***"), file=sys.stderr)
        return 1
    print(f"Deployed: {url} (the Space builds and starts in a few minutes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

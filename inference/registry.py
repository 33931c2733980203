"""Backends by name. Each one declares its options (a dataclass whose fields become flags and
``TUTOR_*`` variables), a loader and what it can do; adding a backend is one module plus one entry in
``_MODULES``.

    from inference.registry import spec, resolve_auto
    spec("llamacpp").capabilities.json_schema      # True
    spec("openai").options                          # OpenAIOptions, its fields are the flags

Importing this module imports each backend module, which import nothing heavy (torch, llama_cpp and
openai load inside the loaders).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from inference.backend import BackendError

logger = logging.getLogger(__name__)

AUTO = "auto"
# One entry per backend: the module that defines its ``SPEC``.
_MODULES = ("inference.transformers_backend", "inference.llamacpp_backend", "inference.openai_backend")


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; the app, the quiz and evaluation choose their path from these."""

    streams: bool = True        # stream_chat yields deltas as they are generated
    batches: bool = False       # chat_batch generates several replies together (not one after another)
    concurrent: bool = False    # serves many requests at once: the app may run many chats in parallel
    json_schema: bool = False   # honours GenerationConfig.json_schema (output constrained to a schema)
    loglik: bool = False        # can score continuations (python -m evaluation --mode loglik)


@dataclass(frozen=True)
class BackendSpec:
    name: str
    summary: str                           # one line for --help
    options: type                          # a dataclass built with ``option()`` fields
    load: Callable[[Any], Any]             # options instance -> Backend
    capabilities: Capabilities


def option(default: Any, help: str, *, flag: str | None = None, choices: tuple[str, ...] | None = None,
           low: float | None = None, high: float | None = None, secret: bool = False) -> Any:
    """A backend option: its default, help text and how its flag checks a value.

    The flag is ``--<name-with-dashes>`` unless ``flag`` says otherwise; the environment variable is
    ``TUTOR_<NAME>``. ``low``/``high`` bound numbers; ``choices`` lists the allowed strings.
    """
    return field(default=default, metadata={"help": help, "flag": flag, "choices": choices, "low": low,
                                            "high": high, "secret": secret})


def _load_specs() -> dict[str, BackendSpec]:
    specs = {}
    for module in _MODULES:
        spec_ = importlib.import_module(module).SPEC
        specs[spec_.name] = spec_
    return specs


_SPECS: dict[str, BackendSpec] | None = None


def specs() -> dict[str, BackendSpec]:
    global _SPECS
    if _SPECS is None:
        _SPECS = _load_specs()
    return _SPECS


def names() -> tuple[str, ...]:
    """``auto`` first, then every registered backend."""
    return (AUTO, *specs())


def spec(name: str) -> BackendSpec:
    try:
        return specs()[name]
    except KeyError:
        raise BackendError(f"unknown backend {name!r}; choose one of: {', '.join(names())}") from None


def option_fields(options_type: type) -> dict[str, Any]:
    """The dataclass fields of an options type, by name."""
    return {f.name: f for f in fields(options_type)}


def default_of(f: Any) -> Any:
    return None if f.default is MISSING else f.default


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def llama_cpp_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def resolve_auto(given: dict[str, Any]) -> tuple[str, str]:
    """The backend ``auto`` stands for, and why (logged): the options given decide first, then the hardware.

    ``given`` holds only the options the user set (flags or ``TUTOR_*``), not the defaults.
    """
    for name, spec_ in specs().items():
        own = set(option_fields(spec_.options))
        others = set().union(*(option_fields(s.options) for n, s in specs().items() if n != name))
        only_here = sorted((own - others) & set(given))
        if only_here:
            return name, f"--{only_here[0].replace('_', '-')} is an option of the {name} backend only"
    if cuda_available():
        return "transformers", "a CUDA GPU is visible"
    if "llamacpp" in specs():
        from inference.llamacpp_backend import known_gguf

        base = given.get("base_model") or default_of(option_fields(spec("llamacpp").options)["base_model"])
        if llama_cpp_installed() and known_gguf(base):
            return "llamacpp", f"no CUDA GPU: llama.cpp with the Q4_K_M GGUF of {base}"
        why = ("llama-cpp-python is not installed" if not llama_cpp_installed()
               else f"no GGUF is known for {base!r} (pass --gguf)")
        return "transformers", f"no CUDA GPU, and {why}: transformers on the CPU (slow)"
    return "transformers", "the only in-process backend"


def environment_value(name: str) -> str | None:
    value = os.environ.get(f"TUTOR_{name.upper()}")
    return value if value not in (None, "") else None

"""Model loading and text generation behind one ``Backend`` protocol.

    from inference import load_backend, GenerationConfig
    backend = load_backend(base_model="unsloth/Llama-3.2-3B-Instruct", adapter="outputs/finetome")
    for delta in backend.stream_chat([{"role": "user", "content": "What is LoRA?"}]):
        print(delta, end="")

Backends come from ``inference.registry``: ``transformers`` (in-process, GPU fast path), ``llamacpp``
(GGUF, the CPU default) and ``openai`` (any OpenAI-compatible server: vLLM, SGLang, llama-server).
"""

from __future__ import annotations

import logging
from typing import Any

from inference.backend import Backend, BackendError, GenerationConfig
from inference.loading import DEFAULT_BASE_MODEL
from inference.prompts import SYSTEM_PROMPT, with_system_prompt

__all__ = ["Backend", "BackendError", "GenerationConfig", "SYSTEM_PROMPT", "load_backend",
           "with_system_prompt", "DEFAULT_BASE_MODEL"]

logger = logging.getLogger(__name__)


def load_backend(kind: str = "auto", **options: Any) -> Backend:
    """Load a backend by name with its options (the fields of its options dataclass).

    ``auto`` picks from the options given and the hardware (``inference.registry.resolve_auto``).
    Options set to None take the backend's default. Raises ``BackendError`` with a one-line fix.
    """
    from inference import registry

    given = {k: v for k, v in options.items() if v is not None}
    if kind == registry.AUTO:
        kind, why = registry.resolve_auto(given)
        logger.info("backend auto -> %s (%s)", kind, why)
    spec = registry.spec(kind)
    accepted = registry.option_fields(spec.options)
    foreign = sorted(set(given) - set(accepted))
    if foreign:
        flags = ", ".join("--" + name.replace("_", "-") for name in foreign)
        raise BackendError(f"{flags} do{'es' if len(foreign) == 1 else ''} not apply to the {kind} backend; "
                           f"its options are: {', '.join(accepted)}")
    try:
        settings = spec.options(**given)
    except ValueError as exc:
        raise BackendError(str(exc)) from None
    return spec.load(settings)

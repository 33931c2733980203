"""Model loading and text generation behind one ``Backend`` protocol.

    from inference import load_backend, GenerationConfig
    backend = load_backend(base_model="unsloth/Llama-3.2-3B-Instruct", adapter="outputs/finetome")
    for delta in backend.stream_chat([{"role": "user", "content": "What is LoRA?"}]):
        print(delta, end="")
"""

from __future__ import annotations

from inference.backend import Backend, BackendError, GenerationConfig
from inference.prompts import SYSTEM_PROMPT, with_system_prompt

BACKENDS = ("transformers",)
DEFAULT_BASE_MODEL = "unsloth/Llama-3.2-3B-Instruct"

__all__ = ["Backend", "BackendError", "GenerationConfig", "SYSTEM_PROMPT", "load_backend",
           "with_system_prompt", "BACKENDS", "DEFAULT_BASE_MODEL"]


def load_backend(kind: str = "transformers", base_model: str = DEFAULT_BASE_MODEL,
                 adapter: str | None = None, quantization: str = "auto", device: str = "auto",
                 **options) -> Backend:
    """Load a model behind the ``Backend`` protocol. Raises ``BackendError`` with a one-line fix."""
    if kind == "transformers":
        from inference.transformers_backend import load_transformers_backend

        return load_transformers_backend(base_model, adapter, quantization, device, **options)
    raise BackendError(f"unknown backend {kind!r}; choose one of: {', '.join(BACKENDS)}")

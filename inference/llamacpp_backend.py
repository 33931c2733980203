"""A GGUF model through llama.cpp (llama-cpp-python): the fast path on machines without a GPU.

    python -m inference --backend llamacpp --gguf unsloth/Llama-3.2-3B-Instruct-GGUF:Llama-3.2-3B-Instruct-Q4_K_M.gguf
    python app.py --backend llamacpp --gguf outputs/tutor-q4_k_m.gguf      # a merged export
    python app.py --adapter outputs/finetome                               # auto: Q4_K_M base + the adapter

The prompt is rendered with the GGUF's own chat template and tokenized so that message text stays
plain text. Generation runs on one worker thread. A follow-up turn does not re-read the conversation:
the KV cache of the live context is reused when the new prompt extends it, and the contexts of other
recent conversations are kept (bounded by ``--cache-mb``) and restored when their user comes back.
"""

from __future__ import annotations

import codecs
import ctypes
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.backend import BackendError, GenerationConfig
from inference.context import ContextWindow
from inference.encode import PromptEncoder
from inference.gguf import adapter_to_gguf, gguf_metadata_summary, known_gguf, lora_mismatch, resolve_gguf
from inference.kv_cache import PrefixCache, common_prefix
from inference.llamacpp_sampling import Sampler
from inference.loading import DEFAULT_BASE_MODEL, looks_like_path
from inference.registry import BackendSpec, Capabilities, option
from inference.worker import GenerationWorker

__all__ = ["LlamaCppBackend", "LlamaCppOptions", "SPEC", "known_gguf"]

logger = logging.getLogger(__name__)

CAPABILITIES = Capabilities(streams=True, batches=False, concurrent=False, json_schema=True, loglik=False)
DEFAULT_CONTEXT = 4096


def default_threads() -> int:
    """Every core this process may use (llama-cpp-python's own default is half of them)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


@dataclass
class LlamaCppOptions:
    """How the llama.cpp backend finds and runs a GGUF model."""

    gguf: str | None = option(None, "GGUF model: a .gguf file, or owner/repo:file.gguf on the hub (default: the "
                                    "Q4_K_M GGUF of --base-model)")
    base_model: str = option(DEFAULT_BASE_MODEL, "hub id or local directory of the base model")
    adapter: str | None = option(None, "LoRA adapter: hub id or local directory (training's output_dir); "
                                       "none = the base model")
    max_context_tokens: int | None = option(
        None, "context window in tokens; the oldest turns are dropped beyond it (default 4096)",
        flag="--max-context", low=64, high=1_048_576)
    threads: int | None = option(None, "CPU threads (default: every core)", low=1, high=1024)
    cache_mb: int = option(512, "memory for the KV caches of recent conversations, so a returning "
                                "user's next turn starts at once (0 = only the live conversation)",
                           low=0, high=1_000_000)
    warmup: bool = option(True, "generate once at start-up so the first user does not pay one-off costs",
                          flag="")


class LlamaCppBackend:
    """Streaming chat, one reply at a time, over a loaded ``llama_cpp.Llama``."""

    name = "llamacpp"
    capabilities = CAPABILITIES

    def __init__(self, llm: Any, gguf: Path, adapter: str | None = None, cache_bytes: int = 0,
                 warmup: bool = True, worker: GenerationWorker | None = None) -> None:
        import llama_cpp

        self.llm, self.gguf, self.adapter = llm, gguf, adapter
        self._lib = llama_cpp
        vocab = llm._model.vocab
        self._is_eog = lambda token: bool(llama_cpp.llama_vocab_is_eog(vocab, token))
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise BackendError(f"GGUF {str(gguf)!r} has no chat template (tokenizer.chat_template): serve an "
                               "Instruct model or a GGUF exported by python -m training export --gguf")
        self._formatter = self._formatter_for(template)
        special = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
        specials = [llm.detokenize([t], special=True).decode("utf-8", "replace")
                    for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_get_attr(vocab, t) & special]
        self.window = ContextWindow(llm.n_ctx(), self._render, self._tokenize_plain, self._detokenize)
        self.encoder = PromptEncoder(self._render, self._tokenize_special, self._tokenize_plain, specials)
        self.cache = PrefixCache(cache_bytes)
        # The thread that loaded the model should run all of its work: llama.cpp's OpenMP threads belong
        # to the thread that first used them, and another thread's work runs beside them spinning
        # (measured: ~2x slower per token on two cores).
        self._worker = worker or GenerationWorker(f"llamacpp-{id(self):x}")
        self.evaluated_tokens = 0  # prompt + reply tokens run through the model (prefix reuse lowers it)
        self.generated_tokens = 0  # reply tokens sampled
        if warmup:
            self.chat_batch([[{"role": "user", "content": "Hi"}]], GenerationConfig(max_new_tokens=2, temperature=0))

    @property
    def description(self) -> str:
        lora = f" + LoRA {self.adapter}" if self.adapter else ""
        return (f"{self.name} ({gguf_metadata_summary(self.llm.metadata)}{lora}; {self.llm.n_ctx()}-token context, "
                f"{self.llm.n_threads} threads, CPU)")

    # -- prompts ---------------------------------------------------------------------------------
    def _formatter_for(self, template: str) -> Callable[[list[dict]], str]:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        def token_text(token: int) -> str:
            return self.llm.detokenize([token], special=True).decode("utf-8", "replace")

        formatter = Jinja2ChatFormatter(template, eos_token=token_text(self.llm.token_eos()),
                                        bos_token=token_text(self.llm.token_bos()), add_generation_prompt=True)
        return lambda messages: formatter(messages=messages).prompt

    def _render(self, messages: list[dict]) -> str:
        return self._formatter(messages)

    def _tokenize_special(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def _tokenize_plain(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    def _detokenize(self, ids: list[int]) -> str:
        return self.llm.detokenize(ids).decode("utf-8", "replace")

    def prompt_ids(self, messages: list[dict], max_new_tokens: int) -> list[int]:
        """The prompt's token ids; message text is plain text (typed special tokens stay text)."""
        return self.encoder.encode(self.window.fit(messages, max_new_tokens))

    # -- generation (worker thread) --------------------------------------------------------------
    def _restore_best(self, prompt: list[int]) -> None:
        """Make the live context the one that shares the longest start with ``prompt``."""
        llm = self.llm
        live = llm.input_ids[: llm.n_tokens].tolist()
        shared_live = common_prefix(live, prompt)
        key, state, shared_cached = self.cache.best(prompt)
        keep_live = shared_live < len(live)  # the live context is about to be overwritten
        if state is not None and shared_cached > shared_live:
            self._save_live(live)
            self._load(key, state)
        elif keep_live:
            self._save_live(live)

    def _save_live(self, live: list[int], pin: bool = False) -> None:
        if len(live) < 2 or not (self.cache.capacity or pin):
            return
        lib, ctx = self._lib, self.llm._ctx.ctx
        size = lib.llama_state_seq_get_size(ctx, 0)
        if size > self.cache.capacity and not pin:
            return
        buffer = (ctypes.c_uint8 * size)()
        written = lib.llama_state_seq_get_data(ctx, buffer, size, 0)
        (self.cache.pin if pin else self.cache.put)(live, bytes(buffer)[:written])

    def _load(self, key: list[int], state: bytes) -> None:
        lib, llm = self._lib, self.llm
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if lib.llama_state_seq_set_data(llm._ctx.ctx, buffer, len(state), 0) != len(state):
            llm.reset()
            return
        llm.input_ids[: len(key)] = key
        llm.n_tokens = len(key)
        llm._requires_eval = True

    def _prefill(self, prompt: list[int]) -> None:
        """Evaluate what the live context lacks of ``prompt`` (all of it, or the part after a shared start)."""
        llm = self.llm
        shared = common_prefix(llm.input_ids[: llm.n_tokens].tolist(), prompt)
        shared = min(shared, len(prompt) - 1)  # the last prompt token is run again for its logits
        llm.n_tokens = shared  # eval() drops the cache from here on
        self.evaluated_tokens += len(prompt) - shared
        llm.eval(prompt[shared:])

    def _generate(self, prompt: list[int], config: GenerationConfig, emit: Callable[[str], None],
                  cancel: threading.Event | None) -> None:
        """Run on the worker: sample the reply, passing text pieces to ``emit`` as they complete."""
        llm = self.llm
        _, max_new = self.window.budget(config.max_new_tokens)
        self._restore_best(prompt)
        self._prefill(prompt)
        seed = config.seed if config.seed is not None else secrets.randbits(31)
        sampler = Sampler(llm, 0.0 if config.greedy else config.temperature, config.top_p, seed,
                          grammar=self._grammar(config.json_schema) if config.json_schema else None)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            for produced in range(1, max_new + 1):
                if cancel is not None and cancel.is_set():
                    break
                token = sampler.sample()
                if self._is_eog(token):
                    break
                self.generated_tokens += 1
                piece = decoder.decode(llm.detokenize([token]))
                if piece:
                    emit(piece)
                if produced == max_new or llm.n_tokens >= llm.n_ctx() - 1:
                    break
                self.evaluated_tokens += 1
                llm.eval([token])
        finally:
            sampler.close()
        tail = decoder.decode(b"", final=True)
        if tail:
            emit(tail)

    def _grammar(self, schema: dict) -> str:
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        grammar = json_schema_to_gbnf(json.dumps(schema))
        # llama-cpp-python's converter lets raw control characters (a newline) into JSON strings, which
        # strict JSON readers refuse; llama.cpp's own converter excludes them, as JSON requires.
        grammar = grammar.replace('char ::= [^"\\\\] |', 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |')
        # Compact JSON: optional spaces after ":" and "," cost a token each (~10% of a 10-question quiz).
        return grammar.replace('space ::= " "?', 'space ::= ""')

    def remember(self, messages: list[dict]) -> None:
        """Read ``messages``' prompt now and keep its KV cache for good: later prompts that start the same
        way (every quiz shares its instructions) skip that part. Costs start-up time, saves it per use."""
        prompt = self.prompt_ids(messages, 1)

        def read() -> None:
            self._restore_best(prompt)
            self._prefill(prompt)
            self._save_live(self.llm.input_ids[: self.llm.n_tokens].tolist(), pin=True)

        self._worker.run(read)

    # -- Backend protocol ------------------------------------------------------------------------
    def stream_chat(self, messages: list[dict], config: GenerationConfig | None = None) -> Iterator[str]:
        config = config or GenerationConfig()
        prompt = self.prompt_ids(messages, config.max_new_tokens)
        yield from self._worker.stream(lambda emit, cancel: self._generate(prompt, config, emit, cancel))

    def chat_batch(self, conversations: list[list[dict]], config: GenerationConfig | None = None) -> list[str]:
        """One reply per conversation, one after another (llama.cpp here runs one sequence at a time)."""
        config = config or GenerationConfig()
        replies = []
        for messages in conversations:
            prompt = self.prompt_ids(messages, config.max_new_tokens)
            parts: list[str] = []
            self._worker.run(lambda: self._generate(prompt, config, parts.append, None))
            replies.append("".join(parts))
        return replies

    def close(self) -> None:
        """Stop the worker after the generation in progress, then free the model and the caches."""
        self._worker.close(final=lambda: (self.cache.clear(), self.llm.close()))


def _open(path: Path, options: LlamaCppOptions, lora: Path | None) -> Any:
    import llama_cpp

    # use_mmap=False: llama.cpp repacks the weights for faster CPU kernels; with the file mapped, its pages
    # stay resident beside the repacked copy (3.7 GB RSS for the 3B Q4_K_M against 2.4 GB unmapped).
    kwargs: dict[str, Any] = dict(n_ctx=options.max_context_tokens or DEFAULT_CONTEXT, n_batch=512,
                                  n_threads=options.threads or default_threads(),
                                  n_threads_batch=options.threads or default_threads(), use_mmap=False,
                                  verbose=False)
    if lora is not None:
        kwargs["lora_path"] = str(lora)
    try:
        return llama_cpp.Llama(str(path), **kwargs)
    except (ValueError, RuntimeError) as exc:
        if lora is not None:
            raise BackendError(f"the LoRA adapter does not fit GGUF {path.name!r} ({str(exc).strip()[:200]}): load it "
                               "with the base model it was trained on") from None
        raise BackendError(f"llama.cpp could not load {str(path)!r} ({str(exc).strip()[:200]}): the file is corrupt, "
                           "truncated or of an unsupported architecture; download or export it again") from None


def load_llamacpp_backend(options: LlamaCppOptions) -> LlamaCppBackend:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        raise BackendError("--backend llamacpp needs llama-cpp-python: pip install -r requirements.txt "
                           "(CMAKE_ARGS=-DGGML_NATIVE=OFF for a portable build)") from None
    path = resolve_gguf(options.gguf, options.base_model)
    lora = None
    if options.adapter:
        base_dir = options.base_model if looks_like_path(options.base_model) else None
        lora = adapter_to_gguf(options.adapter, base_dir)
        problem = lora_mismatch(path, lora)
        if problem:  # llama.cpp does not check shapes: it would crash on the first token
            raise BackendError(f"the LoRA adapter does not fit GGUF {path.name!r} ({problem}): load it with the base "
                               "model it was trained on")
    worker = GenerationWorker("llamacpp")
    llm = worker.run(lambda: _open(path, options, lora))
    logger.info("loaded %s%s with llama.cpp (%d threads)", path.name, f" + {options.adapter}" if lora else "",
                llm.n_threads)
    return LlamaCppBackend(llm, path, options.adapter, cache_bytes=options.cache_mb * 2**20, warmup=options.warmup,
                           worker=worker)


SPEC = BackendSpec("llamacpp", "a GGUF model through llama.cpp (the CPU default)", LlamaCppOptions,
                   load_llamacpp_backend, CAPABILITIES)

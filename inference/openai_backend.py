"""Any OpenAI-compatible chat server — vLLM, SGLang, llama.cpp's llama-server, llama-cpp-python's server —
through the official ``openai`` client, so many students are served at once by an engine built for it.

    vllm serve unsloth/Llama-3.2-3B-Instruct --enable-lora --lora-modules tutor=outputs/finetome --max-lora-rank 16
    python app.py --backend openai --base-url http://localhost:8000/v1 --model-name tutor

The API key is read from the environment variable named by ``--api-key-env`` (default OPENAI_API_KEY) and
lives only inside the client: it is never logged, shown or part of an error. Timeouts and retries are the
client's own. At load the backend asks the server which models it serves and whether it honours a JSON
schema (``response_format``); quizzes use that when it does. Every server error becomes a one-line
``BackendError`` naming the URL and the fix.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from inference.backend import BackendError, GenerationConfig
from inference.context import normalize_messages
from inference.encode import neutralize
from inference.registry import BackendSpec, Capabilities, option

__all__ = ["OpenAIBackend", "OpenAIOptions", "SPEC"]

logger = logging.getLogger(__name__)

# json_schema is found out per server at load (OpenAIBackend.capabilities); this is what the kind can do.
CAPABILITIES = Capabilities(streams=True, batches=True, concurrent=True, json_schema=False, loglik=False)
# Sent when the key variable is unset: the client needs some key, and servers without auth ignore it.
NO_KEY = "no-key"
# The two ways servers take a JSON schema: OpenAI's (vLLM, SGLang, llama-server) and the older
# "json_object" + "schema" (llama-cpp-python's server, llama-server).
DIALECTS = ("json_schema", "json_object")
# Servers add sampling filters of their own unless told otherwise, so the same GenerationConfig would
# sample differently per server (llama-cpp-python's 1.1 repeat penalty even changes greedy replies).
# GenerationConfig means plain temperature + top-p, as in the in-process backends; each server family,
# known by the owned_by that /v1/models reports, gets its own way of switching the rest off.
_PLAIN_SAMPLING = {
    "llamacpp": {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0},   # llama-server: top_k 40, min_p 0.05
    "me": {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0},         # llama-cpp-python: also repeat 1.1
    "vllm": {"top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0},  # defaults from generation_config.json
    "sglang": {"top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0},
}
_CONTEXT_WORDS = re.compile(r"context|too long|maximum.{0,20}length|exceed", re.IGNORECASE)


@dataclass
class OpenAIOptions:
    """Where the OpenAI-compatible server is and how to talk to it."""

    base_url: str | None = option(None, "the server's API address, e.g. http://localhost:8000/v1 (vLLM, "
                                        "SGLang, llama-server)")
    model_name: str | None = option(None, "the model to ask for (a LoRA served under a name, e.g. tutor); "
                                          "default: the first model the server lists")
    api_key_env: str = option("OPENAI_API_KEY", "name of the environment variable that holds the server's "
                                                "API key (unset: no key, for servers without auth)")
    timeout: float = option(60.0, "seconds to wait for the server (to connect: at most 10) before the "
                                  "client gives up on a request", low=1, high=3600)
    max_retries: int = option(2, "how often the client retries a request that failed to connect, timed out "
                                 "or got 429/5xx", low=0, high=20)
    parallel_requests: int = option(16, "most requests sent at once by one batch (quiz rounds, evaluation); "
                                        "match the server's batch capacity", low=1, high=1024)
    probe: bool = option(True, "ask the server at load whether it honours a JSON schema", flag="")


def _one_line(text: object, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class OpenAIBackend:
    """Streaming chat and concurrent batches over one ``openai.OpenAI`` client (thread-safe)."""

    name = "openai"

    def __init__(self, client: Any, base_url: str, model: str, owned_by: str | None = None,
                 options: OpenAIOptions | None = None) -> None:
        self.options = options or OpenAIOptions(base_url=base_url)
        self.client, self.base_url, self.model, self.owned_by = client, base_url, model, owned_by
        self.json_dialect: str | None = None
        self.capabilities = CAPABILITIES
        self._sampling = _PLAIN_SAMPLING.get(owned_by or "", {})

    def __repr__(self) -> str:
        return f"OpenAIBackend(base_url={self.base_url!r}, model={self.model!r})"

    @property
    def description(self) -> str:
        json_mode = f"JSON schema via {self.json_dialect}" if self.json_dialect else "no JSON schema"
        return f"{self.name} ({self.model} at {self.base_url}; {json_mode})"

    # -- requests --------------------------------------------------------------------------------
    def _request(self, messages: list[dict], config: GenerationConfig,
                 response_format: dict | None = None) -> dict[str, Any]:
        """The arguments of one chat completion; message text neutralized (the server's template would read
        a typed ``<|eot_id|>`` as a control token)."""
        plain = [{"role": m["role"], "content": neutralize(m["content"])} for m in normalize_messages(messages)]
        kwargs: dict[str, Any] = dict(model=self.model, messages=plain, max_tokens=config.max_new_tokens,
                                      temperature=0.0 if config.greedy else config.temperature,
                                      top_p=1.0 if config.greedy else config.top_p)
        if config.seed is not None:
            kwargs["seed"] = config.seed
        if response_format is None and config.json_schema is not None and self.json_dialect is not None:
            response_format = _response_format(self.json_dialect, config.json_schema)
        if response_format is not None:
            kwargs["response_format"] = response_format
        if self._sampling:
            kwargs["extra_body"] = dict(self._sampling)
        return kwargs

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn the client's exceptions into one-line BackendErrors."""
        import openai

        try:
            yield
        except openai.OpenAIError as exc:
            raise self.error(exc) from None
        except json.JSONDecodeError as exc:  # a stream event that is not JSON
            raise BackendError(f"the model server at {self.base_url} sent a reply that is not JSON "
                               f"({_one_line(exc, 80)}): is --base-url an OpenAI-compatible API?") from None

    def _stream(self, messages: list[dict], config: GenerationConfig, response_format: dict | None = None,
                client: Any = None) -> Iterator[str]:
        import openai

        started = finished = False
        try:
            with self._errors():
                stream = (client or self.client).chat.completions.create(
                    stream=True, **self._request(messages, config, response_format))
                # Leaving this block (the reply is complete, or the caller stopped reading: the user pressed
                # Stop) closes the HTTP response, and the server stops generating.
                with stream:
                    started = True
                    for chunk in stream:
                        for choice in chunk.choices:
                            if choice.delta is not None and choice.delta.content:
                                yield choice.delta.content
                            finished = finished or choice.finish_reason is not None
        except BackendError as exc:
            cause = exc.__context__
            if started and isinstance(cause, openai.APIConnectionError) \
                    and not isinstance(cause, openai.APITimeoutError):
                why = cause.__cause__ or cause
                raise BackendError(f"lost the connection to the model server at {self.base_url} in the middle of the "
                                   f"reply ({type(why).__name__}): the server stopped or restarted; ask again once "
                                   "it is back") from None
            raise
        if not finished:
            raise BackendError(f"the model server at {self.base_url} stopped the reply before its end: the connection "
                               "was cut, or the server dropped it for a newer request (llama-cpp-python's server "
                               "does unless started with --interrupt_requests False); try again")

    def error(self, exc: Exception) -> BackendError:
        """One line for a failed request: what went wrong, at which URL, and the fix; never the key."""
        import openai

        url, key_env = self.base_url, self.options.api_key_env
        if isinstance(exc, openai.APITimeoutError):
            return BackendError(f"the model server at {url} did not answer within {self.options.timeout:g} s: "
                                "it is overloaded or stuck; raise --timeout, or serve fewer users at once")
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            why = f": {_one_line(cause, 120)}" if cause is not None and str(cause) else ""
            return BackendError(f"cannot reach the model server at {url} ({type(cause or exc).__name__}{why}): "
                                "start it, or check --base-url (TUTOR_BASE_URL)")
        if isinstance(exc, openai.APIStatusError):
            status, detail = exc.status_code, self._detail(exc)
            said = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
            if status in (401, 403):
                return BackendError(f"the model server at {url} refused the API key ({said}): put the key in the "
                                    f"environment variable {key_env} (--api-key-env names another one)")
            if status == 404:
                what = f"no model {self.model!r} or no such API" if self.model else "no OpenAI API at this address"
                return BackendError(f"the model server at {url} has {what} ({said}): check --model-name and "
                                    "--base-url (it usually ends in /v1)")
            if status in (400, 413, 422) and _CONTEXT_WORDS.search(detail):
                return BackendError(f"the conversation is too long for the model on {url} ({said}): start a new "
                                    "chat or ask for a shorter reply; the server's context is set where it starts "
                                    "(vLLM --max-model-len, llama-server -c)")
            if status == 429:
                return BackendError(f"the model server at {url} is busy ({said}): try again in a moment")
            if status >= 500:
                return BackendError(f"the model server at {url} failed ({said}): see the server's log")
            return BackendError(f"the model server at {url} refused the request ({said})")
        return BackendError(f"the model server at {url} failed: {type(exc).__name__}: {_one_line(exc)}")

    def _detail(self, exc: Any) -> str:
        body = exc.body
        if isinstance(body, dict):
            body = body.get("message") or body.get("detail") or body.get("error") or body
        text = _one_line(body if body is not None else exc.message)
        key = self.client.api_key if isinstance(getattr(self.client, "api_key", None), str) else None
        return text.replace(key, "***") if key and key != NO_KEY else text

    # -- start-up checks -------------------------------------------------------------------------
    def detect_json_schema(self) -> str | None:
        """Find the ``response_format`` dialect the server honours, with one tiny request per dialect: the
        schema allows a single value that no model would write unasked. Sets ``capabilities``."""
        import openai

        nonce = f"tutor-{secrets.token_hex(3)}"
        schema = {"type": "object", "properties": {"check": {"type": "string", "enum": [nonce]}},
                  "required": ["check"], "additionalProperties": False}
        messages = [{"role": "user", "content": "Reply with a JSON object."}]
        probe = GenerationConfig(max_new_tokens=48, temperature=0)
        once = self.client.with_options(max_retries=0)  # a refusal is an answer here, not a failure to retry
        why = []
        for dialect in DIALECTS:
            try:
                text = "".join(self._stream(messages, probe, _response_format(dialect, schema), once))
            except BackendError as exc:
                if isinstance(exc.__context__, openai.APIConnectionError):
                    raise
                why.append(f"{dialect}: {exc}")
                continue
            if _parses_to(text, {"check": nonce}):
                self.json_dialect = dialect
                break
            why.append(f"{dialect}: ignored (replied {_one_line(text, 60)!r})")
        self.capabilities = Capabilities(streams=True, batches=True, concurrent=True,
                                         json_schema=self.json_dialect is not None, loglik=False)
        if self.json_dialect:
            logger.info("%s honours JSON schemas (response_format type %s)", self.base_url, self.json_dialect)
        else:
            logger.warning("%s does not constrain replies to a JSON schema (%s); quizzes use the tolerant parser",
                           self.base_url, "; ".join(why))
        return self.json_dialect

    # -- Backend protocol ------------------------------------------------------------------------
    def stream_chat(self, messages: list[dict], config: GenerationConfig | None = None) -> Iterator[str]:
        yield from self._stream(messages, config or GenerationConfig())

    def chat_batch(self, conversations: list[list[dict]], config: GenerationConfig | None = None) -> list[str]:
        """One reply per conversation, requested at once (up to ``--parallel-requests``): the server batches
        them. Streamed underneath, so the timeout counts silence, not the length of a reply."""
        config = config or GenerationConfig()
        if not conversations:
            return []
        workers = min(self.options.parallel_requests, len(conversations))
        with ThreadPoolExecutor(workers, thread_name_prefix="openai-batch") as pool:
            futures = [pool.submit(lambda m=messages: "".join(self._stream(m, config))) for messages in conversations]
            try:
                return [future.result() for future in futures]
            finally:
                for future in futures:
                    future.cancel()

    def close(self) -> None:
        self.client.close()


def _response_format(dialect: str, schema: dict) -> dict:
    if dialect == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema, "strict": True}}
    return {"type": "json_object", "schema": schema}


def _parses_to(text: str, expected: dict) -> bool:
    try:
        return json.loads(text) == expected
    except ValueError:
        return False


def _check_url(base_url: str | None) -> str:
    if not base_url or not base_url.strip():
        raise BackendError("--backend openai needs the server's address: --base-url http://HOST:8000/v1 "
                           "(or TUTOR_BASE_URL)")
    url = base_url.strip().rstrip("/")
    if not re.match(r"https?://[^/\s]+", url):
        raise BackendError(f"--base-url (or TUTOR_BASE_URL) must be an http:// or https:// address such as "
                           f"http://localhost:8000/v1, got {base_url!r}")
    return url


def load_openai_backend(options: OpenAIOptions) -> OpenAIBackend:
    url = _check_url(options.base_url)
    try:
        import openai
    except ImportError:
        raise BackendError("--backend openai needs the openai package: pip install -r requirements.txt") from None
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", options.api_key_env or ""):
        raise BackendError(f"--api-key-env (or TUTOR_API_KEY_ENV) must be the name of an environment variable, "
                           f"such as OPENAI_API_KEY, got {options.api_key_env!r}")
    key = os.environ.get(options.api_key_env) or NO_KEY
    client = openai.OpenAI(base_url=url, api_key=key, max_retries=options.max_retries,
                           timeout=openai.Timeout(options.timeout, connect=min(options.timeout, 10.0)))
    backend = OpenAIBackend(client, url, options.model_name or "", options=options)
    with backend._errors():
        served = {m.id: getattr(m, "owned_by", None) for m in client.models.list()}
    if not served:
        raise BackendError(f"the model server at {url} lists no models at /models: check that it finished loading")
    # SGLang names an adapter "<base>:<adapter>" without listing it.
    if options.model_name and options.model_name not in served and options.model_name.rsplit(":", 1)[0] not in served:
        raise BackendError(f"the model server at {url} does not serve {options.model_name!r}; it serves: "
                           f"{', '.join(sorted(served))} (pass one of them to --model-name)")
    backend.model = options.model_name or next(iter(served))
    backend.owned_by = served.get(backend.model, served.get(backend.model.rsplit(":", 1)[0]))
    backend._sampling = _PLAIN_SAMPLING.get(backend.owned_by or "", {})
    logger.info("model server %s: %s (owned_by %s; %s)", url, backend.model, backend.owned_by,
                "API key from $" + options.api_key_env if key != NO_KEY else "no API key")
    if options.probe:
        backend.detect_json_schema()
    return backend


SPEC = BackendSpec("openai", "any OpenAI-compatible server: vLLM, SGLang, llama-server (many users at once)",
                   OpenAIOptions, load_openai_backend, CAPABILITIES)

"""Log-likelihood of continuations, computed the way lm-evaluation-harness's HF model (``HFLM``) does.

Same numbers, not just the same idea (lm-eval 0.4.13, models/huggingface.py and api/model.py):

- Tokens: trailing spaces of the context move to the continuation; ``context + continuation`` and the
  context are encoded with the tokenizer's defaults (Llama 3 prepends ``<|begin_of_text|>``, kept as lm-eval
  keeps it; a string that already starts with BOS gets no second one), and the continuation is the
  whole encoding minus the context's first ``len(context)`` tokens.
- Batches: requests that share ``context + continuation[:-1]`` share one forward pass (MMLU's `` A``..`` D``);
  inputs ``(context + continuation)[:-1]`` (left-truncated to the model's length) are sorted longest first,
  cut into ``batch_size`` chunks, right-padded with id 0 and run without an attention mask (causal: padding
  after a token cannot change it). Same batches, same kernels, so the same floating-point results.
- Scores: ``log_softmax`` of the logits in their own dtype, gathered at the continuation tokens and summed;
  ``is_greedy`` says whether every continuation token was the argmax.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from evaluation.task import EvalError

logger = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 2048


def tok_encode(tokenizer: Any, text: str) -> list[int]:
    """Tokenizer defaults (BOS added), unless the text already starts with the BOS string."""
    bos_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    bos_text = tokenizer.decode(bos_id) if bos_id is not None else None
    if bos_text and text.startswith(bos_text):
        return tokenizer.encode(text, add_special_tokens=False)
    return tokenizer.encode(text)


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context tokens, continuation tokens) split exactly as lm-eval's ``_encode_pair`` splits them."""
    if not context:
        raise ValueError("empty context: every task here has a prompt")
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tok_encode(tokenizer, context + continuation)
    context_enc = tok_encode(tokenizer, context)
    return context_enc, whole[len(context_enc):]


def model_max_length(model: Any, tokenizer: Any) -> int:
    """lm-eval's ``resolve_max_length``: the config's context length, else the tokenizer's, else 2048."""
    config = getattr(model.config, "text_config", None) or model.config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        if getattr(config, attr, None) is not None:
            return int(getattr(config, attr))
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if limit is not None and limit < int(1e29) else DEFAULT_MAX_LENGTH


def plan_batches(encoded: Sequence[tuple[list[int], list[int]]], batch_size: int
                 ) -> list[list[tuple[list[int], list[int], list[int]]]]:
    """Group requests by ``context + continuation[:-1]``, sort longest first, chunk.

    Each batch item is (representative context, representative continuation, member request indices);
    the representative is the member with the longest continuation, as in lm-eval's ``Collator``.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (ctx, cont) in enumerate(encoded):
        if not cont:
            raise ValueError(f"request {i} has an empty continuation after tokenization")
        groups.setdefault(tuple(ctx + cont[:-1]), []).append(i)
    items = []
    for members in groups.values():
        rep = max(members, key=lambda i: len(encoded[i][1]))
        items.append((encoded[rep][0], encoded[rep][1], members))
    items.sort(key=lambda item: (-(len(item[0]) + len(item[1])), tuple(item[0] + item[1])))
    size = batch_size if batch_size > 0 else len(items)
    return [items[i:i + size] for i in range(0, len(items), size)]


def _forward(model: Any, rows: list[list[int]], device: Any) -> Any:
    import torch
    import torch.nn.functional as F

    width = max(len(r) for r in rows)
    batch = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    for i, row in enumerate(rows):
        batch[i, :len(row)] = torch.tensor(row, dtype=torch.long, device=device)
    with torch.no_grad():
        return F.log_softmax(model(batch).logits, dim=-1)


def score_batch(model: Any, batch: list, encoded: Sequence[tuple[list[int], list[int]]],
                max_length: int, device: Any) -> dict[int, tuple[float, bool]]:
    import torch

    inputs = [(ctx + cont)[-(max_length + 1):][:-1] for ctx, cont, _ in batch]
    logprobs = _forward(model, inputs, device)
    out = {}
    for (_, rep_cont, members), row, logits in zip(batch, inputs, logprobs, strict=True):
        picked = logits[len(row) - len(rep_cont):len(row)]  # positions that predict the continuation
        greedy = picked.argmax(dim=-1)
        for i in members:
            cont = torch.tensor(encoded[i][1], dtype=torch.long, device=device)
            # lm-eval gathers the first len(cont) positions of the representative's slice.
            token_logprobs = torch.gather(picked[:len(cont)], 1, cont.unsqueeze(-1)).squeeze(-1)
            out[i] = (float(token_logprobs.sum()), bool((greedy[-len(cont):] == cont).all()))
    return out


def loglikelihoods(model: Any, tokenizer: Any, requests: Sequence[tuple[str, str]], batch_size: int = 32,
                   desc: str = "loglik", progress: bool = True) -> list[tuple[float, bool]]:
    """(log P(continuation | context), is_greedy) for every (context, continuation) request, in order."""
    import torch
    from tqdm.auto import tqdm

    encoded = [encode_pair(tokenizer, ctx, cont) for ctx, cont in requests]
    max_length = model_max_length(model, tokenizer)
    device = next(model.parameters()).device
    batches = plan_batches(encoded, batch_size)
    logger.info("%s: %d requests -> %d forward passes (batch size %d)", desc, len(requests), len(batches), batch_size)
    results: dict[int, tuple[float, bool]] = {}
    with tqdm(total=len(requests), desc=desc, disable=not progress, unit="req") as bar:
        for batch in batches:
            try:
                scored = score_batch(model, batch, encoded, max_length, device)
            except torch.OutOfMemoryError:
                torch.cuda.empty_cache()
                longest = max(len(ctx) + len(cont) for ctx, cont, _ in batch)
                raise EvalError(f"out of GPU memory scoring {len(batch)} sequences of up to {longest} tokens; "
                                f"lower --batch-size (now {batch_size})") from None
            results.update(scored)
            bar.update(len(scored))
    return [results[i] for i in range(len(requests))]

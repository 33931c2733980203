"""Token sampling for the llama.cpp backend, with JSON-schema grammars checked lazily.

llama-cpp-python puts a grammar first in its sampler chain, so every step matches all 128k vocabulary
entries against the grammar: on two CPU threads that made schema-constrained decoding of the 3B model
half as fast as free decoding. As llama.cpp's own ``common_sampler`` does, the token is drawn without the
grammar first and checked against it alone; only when the grammar rejects it is the step redone with the
grammar over the most likely candidates (``SHORTLIST`` of them), and over the whole vocabulary only
when none of those fits. Greedy decoding picks exactly what a full pass would; sampling draws from the
shortlist (a top-k cut, as samplers commonly make anyway). Near free-decoding speed when the model
already writes valid JSON.

    sampler = Sampler(llm, temperature=0.7, top_p=0.9, seed=1, grammar=gbnf_text)
    token = sampler.sample()      # from the logits of the last evaluated token
"""

from __future__ import annotations

import ctypes
import math
from typing import Any

import numpy as np

SHORTLIST = 64
TOP_K = 50
_TOKEN_DATA = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)


class Sampler:
    """Draws tokens from a ``llama_cpp.Llama``'s last logits: greedy at temperature 0, else
    top-k 50, top-p and temperature; restricted to ``grammar`` (GBNF text) when one is given."""

    def __init__(self, llm: Any, temperature: float, top_p: float, seed: int, grammar: str | None = None) -> None:
        import llama_cpp
        from llama_cpp import _internals

        self.llm, self.lib = llm, llama_cpp
        self.chain = _internals.LlamaSampler()
        if temperature == 0:
            self.chain.add_greedy()
        else:
            # top-k 50 first, as transformers' generate() does by default: top-p alone sorts all 128k
            # candidates every step (9 ms a token on two CPU threads).
            self.chain.add_top_k(TOP_K)
            self.chain.add_top_p(top_p, 1)
            self.chain.add_temp(temperature)
            self.chain.add_dist(seed)
        self.grammar = None
        if grammar is not None:
            self.grammar = llama_cpp.llama_sampler_init_grammar(llm._model.vocab, grammar.encode(), b"root")
            if not self.grammar:
                raise ValueError("llama.cpp could not parse the grammar")
        self._one = (llama_cpp.llama_token_data * 1)()
        self._one_array = llama_cpp.llama_token_data_array(data=self._one, size=1, selected=-1, sorted=False)
        self.grammar_passes = 0  # steps that needed the whole vocabulary checked

    def sample(self) -> int:
        token = self.draw()
        if self.grammar is not None:
            if not self._allowed(token):
                token = self._constrained()
            self.lib.llama_sampler_accept(self.grammar, token)
        return token

    def draw(self) -> int:
        """A token from the chain alone (no grammar)."""
        return self.lib.llama_sampler_sample(self.chain.sampler, self.llm._ctx.ctx, -1)

    def _allowed(self, token: int) -> bool:
        self._one[0].id, self._one[0].logit, self._one[0].p = token, 0.0, 0.0
        self._one_array.size, self._one_array.selected, self._one_array.sorted = 1, -1, False
        self.lib.llama_sampler_apply(self.grammar, ctypes.byref(self._one_array))
        return math.isfinite(self._one[0].logit)

    def _constrained(self) -> int:
        """The step redone: the grammar masks the likeliest candidates (all of them if none fits), then the
        chain draws from what is left."""
        self.grammar_passes += 1
        n_vocab = self.llm.n_vocab()
        logits = np.ctypeslib.as_array(self.lib.llama_get_logits_ith(self.llm._ctx.ctx, -1), shape=(n_vocab,))
        likeliest = np.argpartition(logits, -SHORTLIST)[-SHORTLIST:]
        token = self._draw_from(likeliest.astype(np.intc), logits[likeliest])
        if token is None:
            token = self._draw_from(np.arange(n_vocab, dtype=np.intc), logits)
        if token is None:
            raise RuntimeError("the grammar allows no token here")
        return token

    def _draw_from(self, ids: np.ndarray, logits: np.ndarray) -> int | None:
        lib = self.lib
        data = np.zeros(len(ids), dtype=_TOKEN_DATA)
        data["id"], data["logit"] = ids, logits
        array = lib.llama_token_data_array(data=data.ctypes.data_as(lib.llama_token_data_p), size=len(ids),
                                           selected=-1, sorted=False)
        lib.llama_sampler_apply(self.grammar, ctypes.byref(array))
        if not np.isfinite(data["logit"]).any():
            return None
        lib.llama_sampler_apply(self.chain.sampler, ctypes.byref(array))
        # The chain's sorting samplers may have reordered and shrunk the array in place.
        picked = np.ctypeslib.as_array(array.data, shape=(max(array.size, 1),))[array.selected]
        return int(picked["id"])

    def close(self) -> None:
        if self.grammar is not None:
            self.lib.llama_sampler_free(self.grammar)
            self.grammar = None
        self.chain.close()

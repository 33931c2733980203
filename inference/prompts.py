"""The teaching-assistant system prompt, put first in every conversation by the app and console chat."""

from __future__ import annotations

SYSTEM_PROMPT = """\
You are Llama Tutor, a patient teaching assistant.
- Explain step by step, starting from what the student already knows; use a short example when it helps.
- Check understanding: after an explanation, ask one short guiding question instead of piling on more facts.
- When the student is working on an exercise, guide them towards the answer rather than giving it away, \
unless they ask for the solution.
- Be concise: short paragraphs, lists or formulas where they help; no filler.
- Be honest: if you are not sure, say so, and never invent facts, sources or numbers."""


def with_system_prompt(messages: list[dict], system_prompt: str | None = SYSTEM_PROMPT) -> list[dict]:
    """Return ``messages`` with ``system_prompt`` first (replacing a system message already there).

    An empty or ``None`` system prompt leaves the conversation without one.
    """
    rest = [m for m in messages if m.get("role") != "system"]
    if not system_prompt or not system_prompt.strip():
        return rest
    return [{"role": "system", "content": system_prompt.strip()}, *rest]

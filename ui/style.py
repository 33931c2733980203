"""The app's look: theme and CSS, passed to ``launch()`` (Gradio 6 takes them there, not in Blocks)."""

from __future__ import annotations

from typing import Any

import gradio as gr

CSS = """
#quiz-result { padding: 0.5rem 1rem; border-radius: 0.5rem; }
#quiz-result:empty { display: none; }
.quiz-question { border-left: 3px solid var(--color-accent); padding-left: 0.5rem; }
footer { opacity: 0.8; }
"""


def launch_style() -> dict[str, Any]:
    """Keyword arguments for ``Blocks.launch`` that give every launch (app, tests) the same look."""
    theme = gr.themes.Soft(primary_hue="indigo", secondary_hue="amber", neutral_hue="slate")
    return {"theme": theme, "css": CSS}

"""The app's look: theme and CSS, passed to ``launch()`` (Gradio 6 takes them there, not in Blocks)."""

from __future__ import annotations

from typing import Any

import gradio as gr

CSS = """
#quiz-result { padding: 0.5rem 1rem; border-radius: 0.5rem; }
#quiz-result:empty { display: none; }
.quiz-question { border-left: 3px solid var(--color-accent); padding-left: 0.5rem; }
.quiz-explanation { margin: -0.25rem 0 0.75rem 0.75rem; padding: 0.25rem 0.75rem;
                    border-left: 3px solid var(--border-color-primary); }
footer { opacity: 0.8; }
""" + "".join(  # after grading: the right option green, a wrong choice red, in place
    f".quiz-question.right-{i} .wrap label:nth-of-type({i + 1}) {{ background: #dcfce7; border-color: #16a34a; color: #14532d; opacity: 1; transition: none; }}\n"
    f".quiz-question.wrong-{i} .wrap label:nth-of-type({i + 1}) {{ background: #fee2e2; border-color: #dc2626; color: #7f1d1d; opacity: 1; transition: none; }}\n"
    for i in range(8))


def launch_style() -> dict[str, Any]:
    """Keyword arguments for ``Blocks.launch`` that give every launch (app, tests) the same look."""
    theme = gr.themes.Soft(primary_hue="indigo", secondary_hue="amber", neutral_hue="slate")
    return {"theme": theme, "css": CSS}

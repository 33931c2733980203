"""Rating the tutor's replies in the chat (with ``--feedback-file``): what each action writes, and its wiring.

What a user does, and the lines it appends to the feedback file (``ui/feedback.py`` has the format):

- **👍 on a reply** -> the reply with ``rating: "up"``; and, if the user regenerated earlier replies to the
  same conversation (and did not like them), each of those with ``rating: "down"``, ``better`` = the liked
  reply, ``better_source: "regenerate"``.
- **👎 on a reply** -> the reply with ``rating: "down"``.
- **The selected thumb clicked again** (the rating taken back) -> the reply with ``rating: null``.
- **Regenerate** -> nothing yet: the replaced reply is remembered for the 👍 above (or an edit below).
- **Editing a reply** into a better one -> the original reply with ``rating: "down"``, ``better`` = the
  edited text, ``better_source: "edit"``; also each reply regenerated away in that conversation (and not
  liked) against the edited text. The chat continues from the edited text. Editing an edit records the
  model's original reply against the newest text; 👍/👎 on your own edit writes nothing.
- **Editing one of your own questions** asks it again (a new reply replaces the rest); nothing is written.

Each record's ``conversation`` is the chat up to the user's message the reply answers, with the system
prompt the reply was written under first (none if it was empty).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from inference.context import content_text, normalize_messages
from inference.prompts import with_system_prompt
from ui.chat import EMPTY_REPLY
from ui.feedback import FeedbackFileError, FeedbackLog, feedback_record
from ui.guard import user_error

logger = logging.getLogger(__name__)

NOTE = "Your ratings 👍 👎 and edited answers are saved with the conversation to improve the tutor."
NOT_A_REPLY = "There is no reply of the tutor's there to rate: the model returned nothing."


@dataclass(frozen=True)
class Reply:
    """A reply of the tutor's and the conversation it answers (system prompt first, ending with the user)."""

    conversation: list[dict[str, str]]
    text: str

    @property
    def key(self) -> str:
        return json.dumps(self.conversation, ensure_ascii=False)


@dataclass
class FeedbackSession:
    """One chat's memory of what its user did, so that each action writes the records described above."""

    model: str = ""
    replaced: dict[str, list[str]] = field(default_factory=dict)  # conversation -> regenerated-away replies
    liked: set[tuple[str, str]] = field(default_factory=set)  # (conversation, reply) the user likes now
    edits: dict[tuple[str, str], str] = field(default_factory=dict)  # (conversation, edited text) -> original

    def is_edit(self, reply: Reply) -> bool:
        return (reply.key, reply.text) in self.edits

    def rate(self, reply: Reply, rating: str | None) -> list[dict[str, Any]]:
        """The records a 👍 (``"up"``), 👎 (``"down"``) or a rating taken back (``None``) writes."""
        records = [self._record(reply.conversation, reply.text, rating)]
        if rating == "up":
            self.liked.add((reply.key, reply.text))
            records += self._replaced_by(reply, reply.text, "regenerate", {reply.text})
        else:
            self.liked.discard((reply.key, reply.text))
        return records

    def regenerate(self, reply: Reply) -> None:
        """Regenerate was pressed on ``reply``: remember it (a user's own edit is not a model reply)."""
        if self.is_edit(reply):
            return
        replaced = self.replaced.setdefault(reply.key, [])
        if reply.text not in replaced:
            replaced.append(reply.text)

    def edit(self, reply: Reply, better: str) -> list[dict[str, Any]]:
        """The records an edit of ``reply`` into ``better`` writes."""
        original = self.edits.get((reply.key, reply.text), reply.text)
        self.liked.discard((reply.key, original))
        self.edits[(reply.key, better)] = original
        return [self._record(reply.conversation, original, "down", better, "edit"),
                *self._replaced_by(reply, better, "edit", {reply.text, original, better})]

    def _replaced_by(self, reply: Reply, better: str, source: str, shown: set[str]) -> list[dict[str, Any]]:
        """The replies regenerated away in ``reply``'s conversation, each against ``better`` (once: forgotten
        after), except those the user liked and those that read like what is shown now."""
        replaced = self.replaced.pop(reply.key, [])
        return [self._record(reply.conversation, old, "down", better, source) for old in replaced
                if old not in shown and (reply.key, old) not in self.liked]

    def _record(self, conversation: list[dict[str, str]], reply: str, rating: str | None,
                better: str | None = None, source: str | None = None) -> dict[str, Any]:
        return feedback_record(conversation, reply, rating, better=better, better_source=source, model=self.model)


class PromptLedger:
    """The system prompt each recent reply was written under, so a rating records that one even when the
    settings box has changed since. Keyed by a hash of the turns and the reply; the oldest are forgotten
    (a reply not found falls back to the box's current text)."""

    def __init__(self, size: int = 4096) -> None:
        self._prompts: OrderedDict[str, str | None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    @staticmethod
    def _key(turns: list[dict[str, str]], reply: str) -> str:
        return hashlib.sha256(json.dumps([turns, reply], ensure_ascii=False).encode("utf-8", "replace")).hexdigest()

    def remember(self, turns: list[dict[str, str]], reply: str, system_prompt: str | None) -> None:
        key = self._key(turns, reply)
        with self._lock:
            self._prompts[key] = system_prompt
            self._prompts.move_to_end(key)
            while len(self._prompts) > self._size:
                self._prompts.popitem(last=False)

    def system_prompt(self, turns: list[dict[str, str]], reply: str, default: str | None) -> str | None:
        with self._lock:
            return self._prompts.get(self._key(turns, reply), default)


def _index(index: Any) -> int:
    return index[0] if isinstance(index, (list, tuple)) and index else index


def reply_at(history: list[dict], index: Any, system_prompt: str | None, ledger: PromptLedger,
             edited: tuple[int, str] | None = None) -> tuple[Reply, str | None]:
    """The reply of the tutor's at ``history[index]`` (with the assistant messages next to it) and the
    conversation it answers; with ``edited=(i, text)``, also the reply as it reads with message i edited."""
    messages = normalize_messages(history or [])
    i = _index(index)
    if not isinstance(i, int) or not 0 <= i < len(messages) or messages[i]["role"] != "assistant":
        raise user_error("That message is not one of the tutor's replies: only those can be rated.")
    start, end = i, i
    while start > 0 and messages[start - 1]["role"] == "assistant":
        start -= 1
    while end + 1 < len(messages) and messages[end + 1]["role"] == "assistant":
        end += 1
    parts = [m["content"] for m in messages[start:end + 1]]
    turns = [m for m in messages[:start] if m["role"] in ("user", "assistant")]
    if not turns or turns[-1]["role"] != "user":
        raise user_error("That reply answers no question of yours, so it cannot be rated.")
    text = "\n\n".join(parts)
    if not text.strip() or text == EMPTY_REPLY:
        raise user_error(NOT_A_REPLY)
    better = None
    if edited is not None:
        parts[edited[0] - start] = edited[1]
        better = "\n\n".join(parts)
    prompt = ledger.system_prompt(turns, text, system_prompt)
    return Reply(with_system_prompt(turns, prompt), text), better


def _write(log: FeedbackLog, records: list[dict[str, Any]]) -> None:
    try:
        log.append(records)
    except FeedbackFileError as exc:
        logger.error("%s", exc)
        raise user_error("Your rating could not be saved (the server cannot write its feedback file). "
                         "Please tell whoever runs this app.") from None


def add_feedback(chat: gr.ChatInterface, settings: list[gr.Component], chat_fn: Callable[..., Iterator[str]],
                 log: FeedbackLog, ledger: PromptLedger, model: str) -> None:
    """Wire 👍/👎, regenerate and edit of ``chat`` to ``log`` (inside the Blocks that holds ``chat``)."""
    chatbot, state, textbox, system_prompt = chat.chatbot, chat.chatbot_state, chat.textbox, settings[0]
    session = gr.State(FeedbackSession(model))
    question = gr.State(None)  # a question the user edited, to be answered again
    hidden: dict[str, Any] = {"api_visibility": "private"}  # page actions, not API endpoints

    def on_like(history: list[dict], prompt: str | None, memory: FeedbackSession, data: gr.LikeData):
        reply, _ = reply_at(history, data.index, prompt, ledger)
        if memory.is_edit(reply):
            gr.Info("That answer is your own edit: it is already saved as the better answer.")
            return memory
        rating = {True: "up", False: "down"}.get(data.liked) if isinstance(data.liked, bool) else None
        _write(log, memory.rate(reply, rating))
        return memory

    def on_retry(history: list[dict], prompt: str | None, memory: FeedbackSession, data: gr.RetryData):
        after = _index(data.index) + 1
        if after < len(history or []) and history[after].get("role") == "assistant":
            try:
                memory.regenerate(reply_at(history, after, prompt, ledger)[0])
            except gr.Error:  # nothing there that could be rated: nothing to remember
                pass
        return memory

    def on_edit(history: list[dict], prompt: str | None, memory: FeedbackSession, data: gr.EditData):
        # The page sends the conversation with the edit already in it; the message as it was is in the event.
        i, text = _index(data.index), content_text(data.value)
        if not isinstance(i, int) or not 0 <= i < len(history or []):
            raise user_error("That message is no longer in the conversation.")
        before = list(history)
        before[i] = {**history[i], "content": content_text(data.previous_value)}
        try:
            if not text.strip():
                raise user_error("Type a question first." if history[i].get("role") == "user" else
                                 "An empty answer cannot replace the tutor's: write the better answer.")
            if history[i].get("role") == "user":
                kept = before[:i]
                return [*kept, {"role": "user", "content": text}], kept, memory, text
            reply, better = reply_at(before, i, prompt, ledger, edited=(i, text))
        except gr.Error as exc:  # shown, and the message put back as it was (the page already shows the edit)
            gr.Warning(str(exc.message))
            return before, before, memory, None
        if better != reply.text:
            _write(log, memory.edit(reply, better))
        edited = list(before)
        edited[i] = {"role": "assistant", "content": text}
        return edited, edited, memory, None

    def answer(asked: str | None, history: list[dict], *options: Any):
        if asked is None:
            yield gr.skip()
            return
        for partial in chat_fn(asked, history, *options):
            yield [*history, {"role": "user", "content": asked}, {"role": "assistant", "content": partial}]

    chatbot.like(on_like, [chatbot, system_prompt, session], [session], **hidden)  # queued: it may show a message
    chatbot.retry(on_retry, [chatbot, system_prompt, session], [session], queue=False, **hidden)
    chatbot.edit(on_edit, [chatbot, system_prompt, session], [chatbot, state, session, question], **hidden).success(
        lambda asked: gr.skip() if asked is None else gr.update(interactive=False), [question], [textbox],
        queue=False, **hidden,
    ).success(
        # A model-bound event: build_demo puts every integer limit into the shared model queue.
        answer, [question, state, *settings], [chatbot], concurrency_limit=1, **hidden,
    ).then(
        lambda history: (history, None, gr.update(interactive=True)), [chatbot], [state, question, textbox],
        queue=False, **hidden)
    gr.Markdown(NOTE, elem_id="chat-feedback-note")

"""The app's HTTP API without gradio_client: the bytes any client may send, the events it gets back.

    events = call(url, "chat", ["What is a prime?", None, 0.7, 512])
    events[-1]  # Event(name="complete", data=[...]) or Event(name="error", data={"error": "..."})

A call is ``POST /gradio_api/call/<name>`` with ``{"data": [...]}`` (the body is ``json.dumps``, which
writes NaN/Infinity as bare tokens and a lone surrogate as ``"\\ud800"``, as a hostile client might),
then ``GET /gradio_api/call/<name>/<event_id>``, a server-sent event stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT_S = 60


@dataclass
class Event:
    name: str  # generating, complete, error, heartbeat
    data: Any
    raw: str  # the data line as received


@dataclass
class Reply:
    """Everything one call received: the POST's answer and the event stream."""

    posted: str  # the POST's response body (holds the event id)
    events: list[Event]
    text: str  # the whole event stream as received

    @property
    def last(self) -> Event:
        return self.events[-1]


def body(data: list[Any], session_hash: str | None = None) -> str:
    payload: dict[str, Any] = {"data": data}
    if session_hash is not None:
        payload["session_hash"] = session_hash
    return json.dumps(payload)


def call(url: str, name: str, data: list[Any], session_hash: str | None = None,
         client: httpx.Client | None = None) -> Reply:
    """Call endpoint ``/name`` with ``data`` (a session of its own unless ``session_hash`` is given)."""
    own = client is None
    http = client or httpx.Client(timeout=TIMEOUT_S)
    try:
        posted = http.post(f"{url}/gradio_api/call/{name}", content=body(data, session_hash),
                           headers={"content-type": "application/json"})
        posted.raise_for_status()
        stream = http.get(f"{url}/gradio_api/call/{name}/{posted.json()['event_id']}")
        stream.raise_for_status()
        return Reply(posted.text, parse_events(stream.text), stream.text)
    finally:
        if own:
            http.close()


def parse_events(text: str) -> list[Event]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            raw = fields.get("data", "null")
            events.append(Event(fields["event"], json.loads(raw), raw))
    return events


def error_message(reply: Reply) -> str | None:
    """The one-line message of a call that ended in ``event: error`` (None: it did not)."""
    if reply.last.name != "error":
        return None
    return (reply.last.data or {}).get("error")

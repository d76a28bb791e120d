"""Bolt middleware that measures each request's ack: from the bot's first look at the request to
the moment its ack is sent (over HTTP, when the response goes back; in Socket Mode, when the
envelope is acknowledged), by request kind. Nothing about the request but its kind is kept."""

from __future__ import annotations

import time
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltResponse

from bot.core import Core
from bot.metrics import ACK

KINDS = {"block_actions": "action", "interactive_message": "action", "view_submission": "view",
         "view_closed": "view", "shortcut": "shortcut", "message_action": "shortcut",
         "block_suggestion": "options", "event_callback": "event"}


def request_kind(body: Any) -> str:
    if not isinstance(body, dict):
        return "other"
    if "command" in body:
        return "command"
    return KINDS.get(str(body.get("type")), "other")


class TimedAck(Ack):
    """Bolt's Ack, reporting how long the first ack took."""

    def __init__(self, core: Core, kind: str, started: float) -> None:
        super().__init__()
        self._core, self._kind, self._started = core, kind, started
        self.arrived = time.monotonic()  # when the bot first saw the request (for the ack deadline)

    def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        first = self.response is None
        response = super().__call__(*args, **kwargs)
        if first:
            self._core.metrics.observe(ACK, time.perf_counter() - self._started, kind=self._kind)
        return response


def register(app: App, core: Core) -> None:
    @app.use
    def time_the_ack(body: Any, context: BoltContext, next) -> BoltResponse | None:
        # Bolt makes a context's Ack while injecting arguments (unused yet): the listener runner
        # and every listener then take this one.
        if getattr(context.get("ack"), "response", None) is None:
            context["ack"] = TimedAck(core, request_kind(body), time.perf_counter())
        return next()

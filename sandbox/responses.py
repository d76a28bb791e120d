"""What Slack shows for a message-shaped answer: command acks and `response_url` posts."""

from __future__ import annotations

import copy
from typing import Any

from .blockkit import BlockError, check_message
from .models import Message, ResponseUrl
from .workspace import Workspace

MAX_USES = 5
LIFETIME = 30 * 60


class ResponseError(Exception):
    """The answer could not be shown: `code` is what Slack would say, `status` its HTTP status."""

    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


def _original(ws: Workspace, channel: str, ts: str | None, ephemeral: bool, user: str) -> Message | None:
    if not ts:
        return None
    ch = ws.channels.get(channel)
    if ch is None:
        return None
    return ch.find_ephemeral(ts, user) if ephemeral else ch.find(ts)


def show(
    ws: Workspace,
    *,
    channel: str,
    user: str,
    body: dict[str, Any],
    source: str,
    original: Message | None = None,
) -> Message | None:
    """Apply `body` ({text, blocks, response_type, replace_original, delete_original, thread_ts}).

    Returns the message shown (new or replaced), None when only deleting.
    """
    with ws.lock:
        if body.get("delete_original"):
            if original is not None:
                ch = ws.channels[original.channel]
                bucket = ch.ephemeral if original.is_ephemeral else ch.messages
                if original in bucket:
                    bucket.remove(original)
            return None
        blocks = copy.deepcopy(body.get("blocks"))
        text = body.get("text")
        try:
            check_message(text, blocks, body.get("attachments"))
        except BlockError as exc:
            raise ResponseError(exc.code) from None
        if body.get("replace_original") and original is not None:
            original.text = str(text or "")
            original.blocks = blocks
            if "attachments" in body:
                original.attachments = copy.deepcopy(body["attachments"])
            original.updates.append(copy.deepcopy(body))
            original.edited = {"user": ws.bot_user_id, "ts": ws.next_ts()}
            return original
        in_channel = body.get("response_type") == "in_channel"
        message = ws.bot_message(
            channel,
            text=str(text or ""),
            blocks=blocks,
            attachments=copy.deepcopy(body.get("attachments")),
            thread_ts=body.get("thread_ts"),
            ephemeral_to=None if in_channel else user,
            source=source,
            args=copy.deepcopy(body),
        )
        return ws.add_message(message)


def post_to_response_url(ws: Workspace, rid: str, body: Any) -> Message | None:
    """A POST to `/_sandbox/response/<rid>`; raises ResponseError like Slack refuses."""
    with ws.lock:
        url: ResponseUrl | None = ws.response_urls.get(rid)
        if url is None:
            raise ResponseError("invalid_url", 404)
        if ws.now() - url.created > LIFETIME:
            raise ResponseError("expired_url", 404)
        if url.uses >= MAX_USES:
            raise ResponseError("used_url", 404)
        if not isinstance(body, dict):
            raise ResponseError("invalid_payload")
        original = _original(ws, url.channel, url.message_ts, url.message_ephemeral, url.user)
        shown = show(
            ws, channel=url.channel, user=url.user, body=body, source="response_url", original=original
        )
        url.uses += 1
        if url.message_ts is None and shown is not None:
            # a command's later posts can replace the first one
            url.message_ts = shown.ts
            url.message_ephemeral = shown.is_ephemeral
        return shown

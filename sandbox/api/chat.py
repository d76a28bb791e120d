"""chat.*"""

from __future__ import annotations

import copy
from typing import Any

from ..blockkit import BlockError, check_message
from ..models import Channel, Message
from .base import (
    ApiContext,
    ApiError,
    member_channel,
    normalize_blocks,
    postable_channel,
    visible_channel,
)

STRUCTURED = ("blocks", "attachments", "metadata")


def recorded_args(ctx: ApiContext) -> dict[str, Any]:
    """Every argument of the call, JSON ones decoded, booleans as sent."""
    out = {k: v for k, v in ctx.args.items() if k != "token"}
    for key in STRUCTURED:
        if key in out:
            out[key] = ctx.args.structured(key)
    return out


def content(ctx: ApiContext, *, required: bool = True) -> tuple[str | None, Any, Any]:
    """(text, blocks, attachments) of a message call, checked like Slack checks them."""
    text = ctx.args.text("text")
    blocks = ctx.args.structured("blocks")
    attachments = ctx.args.structured("attachments")
    if attachments is not None and not isinstance(attachments, list):
        raise ApiError("invalid_attachments")
    try:
        check_message(text, blocks, attachments, required=required)
    except BlockError as exc:
        extra = {"response_metadata": {"messages": exc.messages}} if exc.messages else {}
        raise ApiError(exc.code, **extra) from None
    return text, copy.deepcopy(blocks), copy.deepcopy(attachments)


def metadata(ctx: ApiContext) -> dict | None:
    value = ctx.args.structured("metadata")
    if value is None:
        return None
    if not isinstance(value, dict) or not value.get("event_type") or "event_payload" not in value:
        raise ApiError("invalid_metadata_format")
    return copy.deepcopy(value)


def post_message(ctx: ApiContext) -> dict[str, Any]:
    ch = postable_channel(ctx, ctx.args.text("channel"))
    text, blocks, attachments = content(ctx)
    meta = metadata(ctx)
    ws = ctx.workspace
    thread_ts = ctx.args.text("thread_ts") or None
    message = ws.bot_message(
        ch.id,
        text=text or "",
        blocks=normalize_blocks(blocks),
        attachments=attachments,
        thread_ts=thread_ts,
        metadata=meta,
        unfurl_links=ctx.args.optional_flag("unfurl_links"),
        unfurl_media=ctx.args.optional_flag("unfurl_media"),
        args=recorded_args(ctx),
    )
    ws.add_message(message)
    return {"channel": ch.id, "ts": message.ts, "message": message.to_api()}


def _own_message(ctx: ApiContext, ch: Channel, ts: str | None, error: str) -> Message:
    message = ch.find(ts or "")
    if message is None:
        raise ApiError("message_not_found")
    if message.user != ctx.bot or message.bot_id != ctx.workspace.bot_id:
        raise ApiError(error)
    return message


def update(ctx: ApiContext) -> dict[str, Any]:
    ch = member_channel(ctx, ctx.args.text("channel"))
    message = _own_message(ctx, ch, ctx.args.text("ts"), "cant_update_message")
    text, blocks, attachments = content(ctx, required=False)
    if not text and blocks is None and attachments is None and "metadata" not in ctx.args:
        raise ApiError("no_text")  # an empty text alone is no content either
    meta = metadata(ctx)
    if text is not None:
        message.text = text
    if blocks is not None:
        message.blocks = normalize_blocks(blocks)
    if attachments is not None:
        message.attachments = attachments
    if meta is not None:
        message.metadata = meta
    message.updates.append(recorded_args(ctx))
    message.edited = {"user": ctx.bot, "ts": ctx.workspace.next_ts()}
    return {"channel": ch.id, "ts": message.ts, "text": message.text, "message": message.to_api()}


def delete(ctx: ApiContext) -> dict[str, Any]:
    ch = member_channel(ctx, ctx.args.text("channel"))
    message = _own_message(ctx, ch, ctx.args.text("ts"), "cant_delete_message")
    ch.messages.remove(message)
    if message.ts in ch.pins:
        ch.pins.remove(message.ts)
    return {"channel": ch.id, "ts": message.ts}


def post_ephemeral(ctx: ApiContext) -> dict[str, Any]:
    ch = postable_channel(ctx, ctx.args.text("channel"))
    user = ctx.args.text("user") or ""
    if user not in ctx.workspace.users:
        raise ApiError("user_not_found")
    if user not in ch.members:
        raise ApiError("user_not_in_channel")
    text, blocks, attachments = content(ctx)
    ws = ctx.workspace
    message = ws.bot_message(
        ch.id,
        text=text or "",
        blocks=normalize_blocks(blocks),
        attachments=attachments,
        thread_ts=ctx.args.text("thread_ts") or None,
        ephemeral_to=user,
        args=recorded_args(ctx),
    )
    ws.add_message(message)
    return {"message_ts": message.ts}


def permalink_of(base_url: str, ch: Channel, message: Message) -> str:
    link = f"{base_url}archives/{ch.id}/p{message.ts.replace('.', '')}"
    if message.thread_ts and message.thread_ts != message.ts:
        link += f"?thread_ts={message.thread_ts}&cid={ch.id}"
    return link


def get_permalink(ctx: ApiContext) -> dict[str, Any]:
    ch = visible_channel(ctx, ctx.args.text("channel"))
    message = ch.find(ctx.args.text("message_ts") or "")
    if message is None:
        raise ApiError("message_not_found")
    return {"channel": ch.id, "permalink": permalink_of(ctx.base_url, ch, message)}


METHODS = {
    "chat.postMessage": post_message,
    "chat.update": update,
    "chat.delete": delete,
    "chat.postEphemeral": post_ephemeral,
    "chat.getPermalink": get_permalink,
}

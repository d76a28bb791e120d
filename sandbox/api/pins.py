"""pins.*"""

from __future__ import annotations

from typing import Any

from .base import ApiContext, ApiError, member_channel, visible_channel


def add(ctx: ApiContext) -> dict[str, Any]:
    ch = member_channel(ctx, ctx.args.text("channel"))
    ts = ctx.args.text("timestamp") or ""
    if not ts:
        raise ApiError("no_item_specified")
    if ch.find(ts) is None:
        raise ApiError("message_not_found")
    if ts in ch.pins:
        raise ApiError("already_pinned")
    ch.pins.append(ts)
    return {}


def remove(ctx: ApiContext) -> dict[str, Any]:
    ch = member_channel(ctx, ctx.args.text("channel"))
    ts = ctx.args.text("timestamp") or ""
    if ch.find(ts) is None:
        raise ApiError("message_not_found")
    if ts not in ch.pins:
        raise ApiError("no_pin")
    ch.pins.remove(ts)
    return {}


def list_(ctx: ApiContext) -> dict[str, Any]:
    ch = visible_channel(ctx, ctx.args.text("channel"))
    items = []
    for ts in reversed(ch.pins):
        message = ch.find(ts)
        if message is not None:
            items.append(
                {"type": "message", "channel": ch.id, "created": int(float(ts)), "message": message.to_api()}
            )
    return {"items": items}


METHODS = {"pins.add": add, "pins.remove": remove, "pins.list": list_}

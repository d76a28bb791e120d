"""bookmarks.*"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from ..models import Bookmark
from .base import ApiContext, ApiError, member_channel


def add(ctx: ApiContext) -> dict[str, Any]:
    ch = member_channel(ctx, ctx.args.text("channel_id"))
    title = ctx.args.text("title") or ""
    kind = ctx.args.text("type") or ""
    link = ctx.args.text("link") or ""
    if not title:
        raise ApiError("invalid_title")
    if kind != "link":
        raise ApiError("invalid_bookmark_type")
    parsed = urlparse(link)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ApiError("invalid_link")
    ws = ctx.workspace
    bookmark = Bookmark(
        id=ws.new_id("Bk"),
        channel_id=ch.id,
        title=title,
        link=link,
        type=kind,
        emoji=ctx.args.text("emoji"),
        created=int(ctx.now()),
        user=ctx.bot,
        app_id=ws.app_id,
    )
    ch.bookmarks.append(bookmark)
    return {"bookmark": bookmark.to_api(ws.team_id)}


def list_(ctx: ApiContext) -> dict[str, Any]:
    ch = member_channel(ctx, ctx.args.text("channel_id"), allow_archived=True)
    return {"bookmarks": [b.to_api(ctx.workspace.team_id) for b in ch.bookmarks]}


def remove(ctx: ApiContext) -> dict[str, Any]:
    ch = member_channel(ctx, ctx.args.text("channel_id"))
    bookmark_id = ctx.args.text("bookmark_id")
    for bookmark in ch.bookmarks:
        if bookmark.id == bookmark_id:
            ch.bookmarks.remove(bookmark)
            return {}
    raise ApiError("not_found")


METHODS = {"bookmarks.add": add, "bookmarks.list": list_, "bookmarks.remove": remove}

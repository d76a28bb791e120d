"""files.* (the v2 upload flow: getUploadURLExternal, the upload URL, completeUploadExternal)."""

from __future__ import annotations

import json
import mimetypes
from typing import Any

from ..models import File
from .base import ApiContext, ApiError

MAX_FILE = 1024 * 1024 * 1024


def get_upload_url(ctx: ApiContext) -> dict[str, Any]:
    filename = ctx.args.text("filename") or ""
    length = ctx.args.number("length", 0) or 0
    if not filename:
        raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: filename"]})
    if length <= 0:
        raise ApiError("missing_argument")
    if length > MAX_FILE:
        raise ApiError("file_upload_size_restricted")
    alt_txt = ctx.args.text("alt_txt")
    if alt_txt and len(alt_txt) > 1000:
        raise ApiError("alt_txt_too_large")
    ws = ctx.workspace
    file = File(
        id=ws.new_id("F"),
        name=filename,
        length=length,
        user=ctx.bot,
        created=int(ctx.now()),
        alt_txt=alt_txt,
        snippet_type=ctx.args.text("snippet_type"),
        mimetype=mimetypes.guess_type(filename)[0] or "application/octet-stream",
    )
    ws.files[file.id] = file
    return {"upload_url": f"{ctx.base_url}_sandbox/upload/{file.id}", "file_id": file.id}


def complete_upload(ctx: ApiContext) -> dict[str, Any]:
    ws = ctx.workspace
    raw = ctx.args.get("files")
    try:
        items = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        raise ApiError("invalid_arguments") from None
    if not isinstance(items, list) or not items:
        raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: files"]})
    files: list[File] = []
    for item in items:
        file = ws.files.get(str(item.get("id"))) if isinstance(item, dict) else None
        if file is None or file.data is None or file.completed:
            raise ApiError("file_not_found")
        files.append(file)
    targets = ctx.args.id_list("channels") or ctx.args.id_list("channel_id")
    channels = []
    for channel_id in targets:
        ch = ws.channels.get(channel_id)
        if ch is None and channel_id in ws.users:
            ch = ws.dm_channel(channel_id, create=True)
        if ch is None or (ch.is_private and ctx.bot not in ch.members):
            raise ApiError("invalid_channel")
        if ch.is_archived:
            raise ApiError("is_archived")
        if ctx.bot not in ch.members:
            raise ApiError("not_in_channel")
        channels.append(ch)
    for item, file in zip(items, files, strict=True):
        file.title = str(item.get("title") or file.name)
        file.completed = True
    for ch in channels:
        for file in files:
            file.channels.append(ch.id)
        message = ws.bot_message(
            ch.id,
            text=ctx.args.text("initial_comment") or "",
            files=[f.to_api(ctx.base_url) for f in files],
            thread_ts=ctx.args.text("thread_ts") or None,
            args={k: v for k, v in ctx.args.items() if k != "token"},
        )
        ws.add_message(message)
    return {"files": [{"id": f.id, "title": f.title} for f in files]}


def info(ctx: ApiContext) -> dict[str, Any]:
    file = ctx.workspace.files.get(ctx.args.text("file") or "")
    if file is None or not file.completed:
        raise ApiError("file_not_found")
    return {"file": file.to_api(ctx.base_url)}


METHODS = {
    "files.getUploadURLExternal": get_upload_url,
    "files.completeUploadExternal": complete_upload,
    "files.info": info,
}

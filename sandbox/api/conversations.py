"""conversations.*"""

from __future__ import annotations

import re
from typing import Any

from ..models import Channel, Message
from .base import ApiContext, ApiError, member_channel, paginate, visible_channel

NAME_RE = re.compile(r"^[a-z0-9_\-]+$")
MAX_NAME = 80
MAX_TOPIC = 250


def check_name(ctx: ApiContext, name: str, *, current: Channel | None = None) -> None:
    if not name:
        raise ApiError("invalid_name_required")
    if len(name) > MAX_NAME:
        raise ApiError("invalid_name_maxlength")
    if not NAME_RE.match(name):
        raise ApiError("invalid_name_specials")
    if not name.strip("-_"):
        raise ApiError("invalid_name_punctuation")
    for ch in ctx.workspace.channels.values():  # archived channels keep their names
        if not ch.is_im and ch.name == name and ch is not current:
            raise ApiError("name_taken")


def system_message(ctx: ApiContext, ch: Channel, user: str, subtype: str, text: str, **extra: Any) -> None:
    ws = ctx.workspace
    message = Message(
        channel=ch.id, ts=ws.next_ts(), user=user, text=text, subtype=subtype, source="system"
    )
    message.args = dict(extra)
    ws.add_message(message)


def create(ctx: ApiContext) -> dict[str, Any]:
    name = ctx.args.text("name", "") or ""
    check_name(ctx, name)
    ws = ctx.workspace
    ch = ws.add_channel(
        name, is_private=ctx.args.flag("is_private"), members=[ctx.bot], creator=ctx.bot
    )
    system_message(ctx, ch, ctx.bot, "channel_join", f"<@{ctx.bot}> has joined the channel")
    return {"channel": ch.to_api(ctx.bot)}


def invite(ctx: ApiContext) -> dict[str, Any]:
    ws = ctx.workspace
    ch = visible_channel(ctx, ctx.args.text("channel"))
    if ch.is_im:
        raise ApiError("method_not_supported_for_channel_type")
    if ch.is_archived:
        raise ApiError("is_archived")
    if ctx.bot not in ch.members:
        raise ApiError("not_in_channel")
    users = list(dict.fromkeys(ctx.args.id_list("users")))
    if not users:
        raise ApiError("no_user")
    force = ctx.args.flag("force")
    errors: list[dict[str, Any]] = []
    valid: list[str] = []
    for uid in users:
        user = ws.users.get(uid)
        if uid == ctx.bot:
            errors.append({"user": uid, "ok": False, "error": "cant_invite_self"})
        elif user is None or user.deleted:
            errors.append({"user": uid, "ok": False, "error": "user_not_found"})
        elif uid in ch.members:
            errors.append({"user": uid, "ok": False, "error": "already_in_channel"})
        else:
            valid.append(uid)
    if errors and (not force or not valid):
        raise ApiError(errors[0]["error"], errors=errors)
    for uid in valid:
        ch.members.append(uid)
        system_message(
            ctx, ch, uid, "channel_join", f"<@{uid}> has joined the channel", inviter=ctx.bot
        )
    for uid in valid:
        ctx.emit(
            {
                "type": "member_joined_channel",
                "user": uid,
                "channel": ch.id,
                "channel_type": "G" if ch.is_private else "C",
                "team": ws.team_id,
                "inviter": ctx.bot,
                "event_ts": ws.next_ts(),
            }
        )
    out: dict[str, Any] = {"channel": ch.to_api(ctx.bot)}
    if errors:
        out["errors"] = errors
    return out


def _set_text(ctx: ApiContext, field: str) -> dict[str, Any]:
    ch = member_channel(ctx, ctx.args.text("channel"))
    value = ctx.args.text(field, "") or ""
    if len(value) > MAX_TOPIC:
        raise ApiError("too_long")
    record = {"value": value, "creator": ctx.bot, "last_set": int(ctx.now())}
    setattr(ch, field, record)
    verb = "set the channel topic" if field == "topic" else "set the channel description"
    system_message(ctx, ch, ctx.bot, f"channel_{field}", f"{verb}: {value}", **{field: value})
    return {"channel": ch.to_api(ctx.bot), field: value}


def set_topic(ctx: ApiContext) -> dict[str, Any]:
    return _set_text(ctx, "topic")


def set_purpose(ctx: ApiContext) -> dict[str, Any]:
    return _set_text(ctx, "purpose")


def info(ctx: ApiContext) -> dict[str, Any]:
    ch = visible_channel(ctx, ctx.args.text("channel"))
    return {"channel": ch.to_api(ctx.bot, num_members=ctx.args.flag("include_num_members"))}


def members(ctx: ApiContext) -> dict[str, Any]:
    ch = visible_channel(ctx, ctx.args.text("channel"))
    page, cursor = paginate(ctx, list(ch.members))
    return {"members": page, "response_metadata": {"next_cursor": cursor}}


TYPE_NAMES = {"public_channel", "private_channel", "im", "mpim"}


def list_(ctx: ApiContext) -> dict[str, Any]:
    types = set(ctx.args.id_list("types") or ["public_channel"])
    if not types <= TYPE_NAMES:
        raise ApiError("invalid_types")
    exclude_archived = ctx.args.flag("exclude_archived")
    found = []
    for ch in ctx.workspace.channels.values():
        kind = (
            "im" if ch.is_im else "mpim" if ch.is_mpim else
            "private_channel" if ch.is_private else "public_channel"
        )
        if kind not in types or (exclude_archived and ch.is_archived):
            continue
        if kind != "public_channel" and ctx.bot not in ch.members:
            continue
        found.append(ch.to_api(ctx.bot, num_members=True))
    page, cursor = paginate(ctx, found)
    return {"channels": page, "response_metadata": {"next_cursor": cursor}}


def _ts(ctx: ApiContext, name: str) -> float:
    try:
        return float(ctx.args.text(name) or 0)
    except ValueError:  # Slack's answer to a timestamp it cannot read
        raise ApiError(f"invalid_ts_{name}") from None


def _ts_window(ctx: ApiContext) -> tuple[float, float, bool]:
    return _ts(ctx, "oldest"), _ts(ctx, "latest") or float("inf"), ctx.args.flag("inclusive")


def history(ctx: ApiContext) -> dict[str, Any]:
    ch = visible_channel(ctx, ctx.args.text("channel"))
    if ctx.bot not in ch.members:
        raise ApiError("not_in_channel")
    oldest, latest, inclusive = _ts_window(ctx)
    with_metadata = ctx.args.flag("include_all_metadata")

    def inside(ts: float) -> bool:
        if inclusive:
            return oldest <= ts <= latest
        return oldest < ts < latest

    messages = [
        m.to_api(include_metadata=with_metadata)
        for m in reversed(ch.messages)
        if (not m.thread_ts or m.thread_ts == m.ts) and inside(float(m.ts))
    ]
    page, cursor = paginate(ctx, messages)
    return {
        "messages": page,
        "has_more": bool(cursor),
        "pin_count": len(ch.pins),
        "channel_actions_ts": None,
        "channel_actions_count": 0,
        "response_metadata": {"next_cursor": cursor},
    }


def replies(ctx: ApiContext) -> dict[str, Any]:
    ch = visible_channel(ctx, ctx.args.text("channel"))
    if ctx.bot not in ch.members:
        raise ApiError("not_in_channel")
    ts = ctx.args.text("ts") or ""
    parent = ch.find(ts)
    if parent is None:
        raise ApiError("thread_not_found")
    with_metadata = ctx.args.flag("include_all_metadata")
    thread = [parent] + [m for m in ch.messages if m.thread_ts == ts and m.ts != ts]
    page, cursor = paginate(ctx, [m.to_api(include_metadata=with_metadata) for m in thread])
    return {"messages": page, "has_more": bool(cursor), "response_metadata": {"next_cursor": cursor}}


def archive(ctx: ApiContext) -> dict[str, Any]:
    ch = visible_channel(ctx, ctx.args.text("channel"))
    if ch.is_im or ch.is_mpim:
        raise ApiError("method_not_supported_for_channel_type")
    if ch.is_general:
        raise ApiError("cant_archive_general")
    if ch.is_archived:
        raise ApiError("already_archived")
    if ctx.bot not in ch.members:
        raise ApiError("not_in_channel")
    system_message(ctx, ch, ctx.bot, "channel_archive", "archived the channel")
    ch.is_archived = True
    return {}


def unarchive(ctx: ApiContext) -> dict[str, Any]:
    ch = visible_channel(ctx, ctx.args.text("channel"))
    if not ch.is_archived:
        raise ApiError("not_archived")
    if ctx.bot not in ch.members:
        raise ApiError("not_in_channel")
    ch.is_archived = False
    system_message(ctx, ch, ctx.bot, "channel_unarchive", "un-archived the channel")
    return {}


def rename(ctx: ApiContext) -> dict[str, Any]:
    ch = member_channel(ctx, ctx.args.text("channel"))
    name = ctx.args.text("name", "") or ""
    check_name(ctx, name, current=ch)
    if name != ch.name:
        ch.previous_names.insert(0, ch.name)
        ch.name = name
    return {"channel": ch.to_api(ctx.bot)}


def open_(ctx: ApiContext) -> dict[str, Any]:
    ws = ctx.workspace
    channel_id = ctx.args.text("channel")
    if channel_id:
        ch = visible_channel(ctx, channel_id)
        return {"channel": ch.to_api(ctx.bot) if ctx.args.flag("return_im") else {"id": ch.id}}
    users = ctx.args.id_list("users")
    if not users:
        raise ApiError("users_list_not_supplied")
    for uid in users:
        if uid not in ws.users:
            raise ApiError("user_not_found")
        if uid == ctx.bot:
            raise ApiError("cannot_dm_bot")
    if len(users) == 1:
        ch = ws.dm_channel(users[0], create=True)
        body = {"no_op": False, "already_open": False, "channel": {"id": ch.id}}
        if ctx.args.flag("return_im"):
            body["channel"] = ch.to_api(ctx.bot)
        return body
    if len(users) > 8:
        raise ApiError("too_many_users")
    everyone = sorted({ctx.bot, *users})
    for ch in ws.channels.values():
        if ch.is_mpim and sorted(ch.members) == everyone:
            return {"channel": ch.to_api(ctx.bot)}
    name = "mpdm-" + "--".join(ws.user_name(u) for u in everyone) + "-1"
    ch = ws.add_channel(
        name, channel_id=ws.new_id("G"), is_private=True, members=everyone, creator=ctx.bot
    )
    ch.is_mpim = True
    return {"channel": ch.to_api(ctx.bot)}


def join(ctx: ApiContext) -> dict[str, Any]:
    raise ApiError("missing_scope", needed="channels:join", provided="(the app's bot scopes)")


METHODS = {
    "conversations.create": create,
    "conversations.invite": invite,
    "conversations.setTopic": set_topic,
    "conversations.setPurpose": set_purpose,
    "conversations.info": info,
    "conversations.members": members,
    "conversations.list": list_,
    "conversations.history": history,
    "conversations.replies": replies,
    "conversations.archive": archive,
    "conversations.unarchive": unarchive,
    "conversations.rename": rename,
    "conversations.open": open_,
    "conversations.join": join,
}

"""users.* and usergroups.*"""

from __future__ import annotations

from typing import Any

from .base import ApiContext, ApiError, paginate


def info(ctx: ApiContext) -> dict[str, Any]:
    ws = ctx.workspace
    user = ws.users.get(ctx.args.text("user") or "")
    if user is None:
        raise ApiError("user_not_found")
    out = user.to_api(ws.team_id, ctx.now())
    if ctx.args.flag("include_locale"):
        out["locale"] = "en-US"
    return {"user": out}


def list_(ctx: ApiContext) -> dict[str, Any]:
    ws = ctx.workspace
    users = [u.to_api(ws.team_id, ctx.now()) for u in ws.users.values()]
    page, cursor = paginate(ctx, users, default_limit=1000)
    return {"members": page, "cache_ts": int(ctx.now()), "response_metadata": {"next_cursor": cursor}}


def lookup_by_email(ctx: ApiContext) -> dict[str, Any]:
    ws = ctx.workspace
    email = (ctx.args.text("email") or "").lower()
    for user in ws.users.values():
        if user.email and user.email.lower() == email and not user.is_bot:
            return {"user": user.to_api(ws.team_id, ctx.now())}
    raise ApiError("users_not_found")


def usergroup_users(ctx: ApiContext) -> dict[str, Any]:
    group = ctx.workspace.usergroups.get(ctx.args.text("usergroup") or "")
    if group is None:
        raise ApiError("no_such_subteam")
    return {"users": list(group.users)}


def usergroups_list(ctx: ApiContext) -> dict[str, Any]:
    ws = ctx.workspace
    groups = []
    for group in ws.usergroups.values():
        body = group.to_api(ws.team_id)
        if not ctx.args.flag("include_users"):
            body.pop("users")
        groups.append(body)
    return {"usergroups": groups}


METHODS = {
    "users.info": info,
    "users.list": list_,
    "users.lookupByEmail": lookup_by_email,
    "usergroups.users.list": usergroup_users,
    "usergroups.list": usergroups_list,
}

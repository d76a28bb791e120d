"""views.*"""

from __future__ import annotations

import copy
import secrets
from typing import Any

from ..blockkit import BlockError, check_view
from ..models import View
from ..workspace import Workspace
from .base import ApiContext, ApiError, normalize_blocks

TRIGGER_TTL = 3.0
MAX_STACK = 3


def new_hash(ws: Workspace) -> str:
    return f"{int(ws.now())}.{secrets.token_hex(4)}"


def _consume_trigger(ctx: ApiContext) -> str:
    """Check the trigger_id and return the user it belongs to (mark it used later)."""
    trigger_id = ctx.args.text("trigger_id") or ""
    if not trigger_id:
        raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: trigger_id"]})
    trigger = ctx.workspace.triggers.get(trigger_id)
    if trigger is None:
        raise ApiError("invalid_trigger_id")
    if trigger.used:
        raise ApiError("exchanged_trigger_id")
    if ctx.now() - trigger.created > TRIGGER_TTL:
        raise ApiError("expired_trigger_id")
    return trigger.user


def _view_arg(ctx: ApiContext, types: tuple[str, ...] = ("modal",)) -> dict[str, Any]:
    raw = ctx.args.structured("view")
    try:
        check_view(raw, types)
    except BlockError as exc:
        raise ApiError(exc.code, response_metadata={"messages": exc.messages}) from None
    return copy.deepcopy(raw)


def _check_external_id(ctx: ApiContext, external_id: str, current: View | None = None) -> None:
    if not external_id:
        return
    for view in ctx.workspace.views.values():
        if view.external_id == external_id and view is not current and not view.closed:
            raise ApiError("duplicate_external_id")


def apply_view(ws: Workspace, view: View, raw: dict[str, Any]) -> None:
    """Give `view` the content of the view payload `raw` and a new hash."""
    view.type = raw.get("type", "modal")
    view.blocks = normalize_blocks(raw.get("blocks") or []) or []
    view.title = raw.get("title")
    view.submit = raw.get("submit")
    view.close = raw.get("close")
    view.callback_id = raw.get("callback_id") or ""
    view.private_metadata = raw.get("private_metadata") or ""
    view.external_id = raw.get("external_id") or ""
    view.notify_on_close = bool(raw.get("notify_on_close"))
    view.clear_on_close = bool(raw.get("clear_on_close"))
    view.hash = new_hash(ws)
    kept = {b.get("block_id") for b in view.blocks}
    view.state = {"values": {k: v for k, v in view.state.get("values", {}).items() if k in kept}}


def new_view(ws: Workspace, user: str, raw: dict[str, Any], previous: View | None) -> View:
    """A new modal for `user` (on top of `previous` when pushed), registered in `ws`."""
    view = View(
        id=ws.new_id("V"),
        user=user,
        team_id=ws.team_id,
        app_id=ws.app_id,
        bot_id=ws.bot_id,
        type="modal",
        blocks=[],
        previous_view_id=previous.id if previous else None,
    )
    apply_view(ws, view, raw)
    view.root_view_id = previous.root_view_id if previous else view.id
    ws.views[view.id] = view
    return view


def open_(ctx: ApiContext) -> dict[str, Any]:
    user = _consume_trigger(ctx)
    raw = _view_arg(ctx)
    ws = ctx.workspace
    _check_external_id(ctx, raw.get("external_id") or "")
    view = new_view(ws, user, raw, None)
    ws.triggers[ctx.args.text("trigger_id")].used = True
    ws.close_view(user, clear=True)
    ws.view_stacks[user] = [view.id]
    return {"view": view.to_api()}


def push(ctx: ApiContext) -> dict[str, Any]:
    user = _consume_trigger(ctx)
    raw = _view_arg(ctx)
    ws = ctx.workspace
    stack = ws.view_stacks.setdefault(user, [])
    if len(stack) >= MAX_STACK:
        raise ApiError("push_limit_reached")
    previous = ws.views[stack[-1]] if stack else None
    _check_external_id(ctx, raw.get("external_id") or "")
    view = new_view(ws, user, raw, previous)
    ws.triggers[ctx.args.text("trigger_id")].used = True
    stack.append(view.id)
    return {"view": view.to_api()}


def update(ctx: ApiContext) -> dict[str, Any]:
    ws = ctx.workspace
    view_id = ctx.args.text("view_id")
    external_id = ctx.args.text("external_id")
    if not view_id and not external_id:
        raise ApiError("invalid_arguments", response_metadata={"messages": ["[ERROR] view_id or external_id is required"]})
    view = ws.views.get(view_id or "")
    if view is None and external_id:
        view = next((v for v in ws.views.values() if v.external_id == external_id and not v.closed), None)
    if view is None or view.closed:
        raise ApiError("not_found")
    expected = ctx.args.text("hash")
    if expected and expected != view.hash:
        raise ApiError("hash_conflict")
    raw = _view_arg(ctx, (view.type,))
    _check_external_id(ctx, raw.get("external_id") or "", current=view)
    apply_view(ws, view, raw)
    return {"view": view.to_api()}


def publish(ctx: ApiContext) -> dict[str, Any]:
    """The Home tab of `user_id`: created on first publish, replaced after."""
    ws = ctx.workspace
    user_id = ctx.args.text("user_id") or ""
    user = ws.users.get(user_id)
    if user is None or user.deleted or user.is_bot:
        raise ApiError("invalid_arguments", response_metadata={"messages": ["invalid `user_id`"]})
    current = ws.views.get(ws.home_views.get(user_id, ""))
    expected = ctx.args.text("hash")
    if expected and current is not None and expected != current.hash:
        raise ApiError("hash_conflict")
    raw = _view_arg(ctx, ("home",))
    _check_external_id(ctx, raw.get("external_id") or "", current=current)
    if current is None:
        current = new_view(ws, user_id, raw, None)
        ws.home_views[user_id] = current.id
    else:
        apply_view(ws, current, raw)
    return {"view": current.to_api()}


METHODS = {"views.open": open_, "views.push": push, "views.update": update, "views.publish": publish}

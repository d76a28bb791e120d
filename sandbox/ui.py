"""JSON endpoints behind the sandbox page (`/_sandbox/ui/...`); actions go through the driver."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify, request

from .driver import Result, describe
from .models import Message

if TYPE_CHECKING:
    from .server import Sandbox


def _message(message: Message) -> dict[str, Any]:
    out = message.to_api()
    out["ephemeral"] = message.is_ephemeral
    out["source"] = message.source
    out["channel"] = message.channel
    return out


def _result(result: Result) -> dict[str, Any]:
    return {
        "ok": result.ok or (result.status is None and not result.error),
        "status": result.status,
        "elapsed": round(result.elapsed, 3),
        "timed_out": result.timed_out,
        "error": result.error,
        "errors": result.errors,
        "summary": describe(result),
    }


def state(sandbox: Sandbox, user: str, channel: str) -> dict[str, Any]:
    """Everything the page shows for `user` looking at `channel`."""
    ws = sandbox.state
    with ws.lock:
        users = [
            {"id": u.id, "name": u.name, "real_name": u.real_name, "is_bot": u.is_bot, "tz": u.tz}
            for u in ws.users.values()
        ]
        if user not in ws.users:
            user = next((u["id"] for u in users if not u["is_bot"]), "")
        channels = [
            {
                "id": c.id,
                "name": c.name,
                "is_private": c.is_private,
                "is_archived": c.is_archived,
                "is_member": user in c.members,
                "count": len(c.messages),
            }
            for c in ws.channels.values()
            if not c.is_im and (user in c.members or not c.is_private)
        ]
        ch = ws.channels.get(channel)
        if ch is None or ch.is_im or (ch.is_private and user not in ch.members):
            ch = next((ws.channels[c["id"]] for c in channels if c["is_member"]), None)
        shown: list[dict[str, Any]] = []
        selected = None
        if ch is not None:
            mine = [m for m in ch.ephemeral if m.ephemeral_to == user]
            shown = [_message(m) for m in sorted(ch.messages + mine, key=lambda m: float(m.ts))]
            selected = {
                "id": ch.id,
                "name": ch.name,
                "is_private": ch.is_private,
                "is_archived": ch.is_archived,
                "is_member": user in ch.members,
                "topic": ch.topic.get("value", ""),
                "purpose": ch.purpose.get("value", ""),
                "members": list(ch.members),
                "pins": list(ch.pins),
                "bookmarks": [{"title": b.title, "link": b.link} for b in ch.bookmarks],
            }
        dm = ws.dm_channel(user)
        dms = [_message(m) for m in dm.messages] if dm else []
        views = [v.to_api() for v in ws.open_views(user)]
        home = ws.views.get(ws.home_views.get(user, ""))
        return {
            "team": {"id": ws.team_id, "domain": ws.team_domain, "name": ws.team_name},
            "bot_user_id": ws.bot_user_id,
            "user": user,
            "users": users,
            "usergroups": {g.id: g.handle for g in ws.usergroups.values()},
            "channels": channels,
            "channel": selected,
            "messages": shown,
            "dm_channel": dm.id if dm else None,
            "dms": dms,
            "views": views,
            "home": home.to_api() if home is not None else None,  # the app's Home tab for this user
            "bot_connected": sandbox.driver.reachable,
        }


def register(app: Flask, sandbox: Sandbox) -> None:
    driver = sandbox.driver

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data

    def run(fn) -> Response:
        if not request.is_json:  # only the page's fetch() can call these (no form posts)
            out = jsonify({"ok": False, "error": "expected application/json"})
            out.status_code = 415
            return out
        try:
            return jsonify(fn(body()))
        except (ValueError, KeyError, RuntimeError) as exc:
            out = jsonify({"ok": False, "error": str(exc)})
            out.status_code = 400
            return out

    @app.get("/_sandbox/ui/state")
    def ui_state() -> Response:
        return jsonify(state(sandbox, request.args.get("user", ""), request.args.get("channel", "")))

    @app.post("/_sandbox/ui/command")
    def ui_command() -> Response:
        def go(data: dict[str, Any]) -> dict[str, Any]:
            text = str(data.get("text", "")).strip()
            command = "/incident"
            if text.startswith("/"):
                command, _, text = text.partition(" ")
            return _result(driver.command(data["user"], text.strip(), data["channel"], command))

        return run(go)

    @app.post("/_sandbox/ui/click")
    def ui_click() -> Response:
        return run(
            lambda d: _result(
                driver.click(d["user"], d["channel"], d["ts"], d["action_id"], d.get("value"), d.get("block_id"))
            )
        )

    @app.post("/_sandbox/ui/click_view")
    def ui_click_view() -> Response:
        return run(
            lambda d: _result(
                driver.click_view(d["user"], d["view_id"], d["action_id"], d.get("value"), d.get("block_id"))
            )
        )

    @app.post("/_sandbox/ui/submit")
    def ui_submit() -> Response:
        return run(lambda d: _result(driver.submit_view(d["user"], d["view_id"], d.get("values") or {})))

    @app.post("/_sandbox/ui/close")
    def ui_close() -> Response:
        return run(lambda d: _result(driver.close_view(d["user"], d["view_id"])))

    @app.post("/_sandbox/ui/post")
    def ui_post() -> Response:
        return run(lambda d: _result(driver.post_as(d["user"], d["channel"], str(d.get("text", "")))))

    @app.post("/_sandbox/ui/home")
    def ui_home() -> Response:  # the person opens the app's Home tab: the bot hears app_home_opened
        return run(lambda d: _result(driver.open_home(d["user"])))

    @app.post("/_sandbox/ui/click_home")
    def ui_click_home() -> Response:
        return run(lambda d: _result(driver.click_home(d["user"], d["action_id"], d.get("value"), d.get("block_id"))))

    @app.post("/_sandbox/ui/react")
    def ui_react() -> Response:
        return run(lambda d: _result(driver.react(d["user"], d["channel"], d["ts"], str(d["reaction"]))))

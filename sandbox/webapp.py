"""The sandbox's HTTP surface: the Web API, response URLs, uploads, faults, the page."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify, redirect, request, send_from_directory

from . import ui
from .api import METHODS, ApiContext, ApiError, Args
from .faults import Fault
from .models import Call
from .responses import ResponseError, post_to_response_url

if TYPE_CHECKING:
    from .server import Sandbox

STATIC = Path(__file__).parent / "static"
APP_LEVEL_METHODS = {"apps.connections.open"}  # only an app-level (xapp-) token may call these


def collect_args() -> Args:
    """Query string, then form fields, then JSON body (later ones win)."""
    args = Args()
    args.update(request.args.to_dict())
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        args.update(request.form.to_dict())
    elif request.mimetype == "application/json":
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            args.update(body)
    return args


def token_of(args: Args) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    token = args.get("token")
    return str(token) if token else None


def failure_response(fault: Fault) -> tuple[dict[str, Any], int, dict[str, str]]:
    if fault.kind == "ratelimit":
        return {"ok": False, "error": "ratelimited"}, 429, {"Retry-After": str(fault.retry_after)}
    error = "service_unavailable" if fault.status == 503 else "internal_error"
    return {"ok": False, "error": error}, fault.status, {}


def create_app(sandbox: Sandbox) -> Flask:
    app = Flask("sandbox", static_folder=str(STATIC), static_url_path="/_sandbox/static")
    app.json.sort_keys = False
    ws = sandbox.state

    @app.route("/api/<path:method>", methods=["GET", "POST"])
    def api(method: str) -> Response:
        args = collect_args()

        def record(body: dict[str, Any], status: int) -> None:
            ws.calls.append(Call(method=method, args=dict(args), ok=bool(body.get("ok")), error=body.get("error"),
                                 http_status=status, at=ws.now(), response=body))

        token = token_of(args)
        args.pop("token", None)
        delay, fault = sandbox.faults.take(method)
        if delay:
            time.sleep(delay / 1000)
        ctx = ApiContext(workspace=ws, args=args, base_url=sandbox.base_url, method=method)
        headers: dict[str, str] = {}
        status = 200
        recorded = False
        if fault is not None and fault.kind != "lost":
            body, status, headers = failure_response(fault)
        elif method not in METHODS and method not in APP_LEVEL_METHODS:
            body = {"ok": False, "error": "unknown_method", "req_method": method}
        elif token is None:
            body = {"ok": False, "error": "not_authed"}
        elif token not in (sandbox.bot_token, sandbox.app_token):
            body = {"ok": False, "error": "invalid_auth"}
        elif (token == sandbox.app_token) != (method in APP_LEVEL_METHODS):
            body = {"ok": False, "error": "not_allowed_token_type"}
        elif method == "apps.connections.open":
            body = {"ok": True, "url": sandbox.socket_mode.ticket_url()}
        elif (retry_after := sandbox.limits.check(method, args.text("channel"))) is not None:
            body, status, headers = {"ok": False, "error": "ratelimited"}, 429, {"Retry-After": str(retry_after)}
        else:
            with ws.lock:
                try:
                    body = {"ok": True, **METHODS[method](ctx)}
                except ApiError as exc:
                    body = {"ok": False, "error": exc.error, **exc.extra}
                    ctx.events.clear()
                    ctx.after.clear()
                if fault is None:  # recorded with its effect: whoever sees the one sees the other
                    record(body, status)
                    recorded = True
        if fault is not None and fault.kind == "lost":  # it happened; the app just never hears so
            body, status, headers = failure_response(fault)
        if not recorded:
            with ws.lock:
                record(body, status)
        response = jsonify(body)
        response.status_code = status
        response.headers.update(headers)
        if ctx.events and sandbox.emit_events and sandbox.driver.reachable:
            events = list(ctx.events)
            sandbox.events.reserve()  # so events.wait() right after the answer sees them
            response.call_on_close(lambda: sandbox.events.deliver_async(events, reserved=True))
        for fn in ctx.after:
            response.call_on_close(fn)
        return response

    @app.post("/_sandbox/response/<rid>")
    def response_url(rid: str) -> Response:
        body = request.get_json(silent=True, force=True)
        if body is None and request.form.get("payload"):
            body = json.loads(request.form["payload"])
        try:
            post_to_response_url(ws, rid, body)
        except ResponseError as exc:
            out = jsonify({"ok": False, "error": exc.code})
            out.status_code = exc.status
            return out
        return jsonify({"ok": True})

    @app.post("/_sandbox/upload/<file_id>")
    def upload(file_id: str) -> Response:
        data = request.get_data(cache=True)  # slack_sdk posts the raw bytes
        if request.mimetype == "multipart/form-data" and "file" in request.files:
            data = request.files["file"].read()
        with ws.lock:
            file = ws.files.get(file_id)
            if file is None or file.completed:
                return Response("invalid upload URL", status=404, mimetype="text/plain")
            file.data = data
        return Response(f"OK - {len(data)}", mimetype="text/plain")

    @app.get("/_sandbox/files/<file_id>")
    def file_bytes(file_id: str) -> Response:
        file = ws.files.get(file_id)
        if file is None or file.data is None:
            return Response("no such file", status=404, mimetype="text/plain")
        return Response(
            file.data,
            mimetype="application/octet-stream",
            headers={
                "Content-Disposition": f'attachment; filename="{file.id}-{file.filetype}"',
                "X-Content-Type-Options": "nosniff",
            },
        )

    @app.route("/_sandbox/faults", methods=["GET", "POST", "DELETE"])
    def faults() -> Response:
        if request.method == "DELETE":
            sandbox.faults.clear(request.args.get("method"))
        elif request.method == "POST":
            spec = request.get_json(silent=True)
            specs = spec if isinstance(spec, list) else [spec]
            try:
                for item in specs:
                    if not isinstance(item, dict):
                        raise ValueError("expected a JSON object")
                    sandbox.faults.add(item)
            except (ValueError, TypeError) as exc:
                out = jsonify({"ok": False, "error": str(exc)})
                out.status_code = 400
                return out
        return jsonify({"ok": True, "faults": sandbox.faults.to_list()})

    @app.get("/_sandbox/health")
    def health() -> Response:
        return jsonify({"ok": True, **ws.summary()})

    @app.get("/archives/<channel>/<message>")
    def permalink(channel: str, message: str) -> Response:
        return redirect(f"/#{channel}/{message}")

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status=204)

    @app.get("/")
    def index() -> Response:
        response = send_from_directory(STATIC, "index.html")
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:"
        )
        return response

    ui.register(app, sandbox)
    return app

"""A local stand-in for the PagerDuty Events API v2 (``POST /v2/enqueue``).

It validates events the way the real API does and answers like it (202 ``success`` or 400
``invalid event``), keeps what it accepted (``.events``) and an incident view keyed by
dedup_key (``.incidents``), and can be told to fail (``.fail_next``) or to be slow
(``.delay``). Served by waitress from a daemon thread::

    with PagerDutyStandIn() as pd:
        httpx.post(pd.url, json={...})
        assert pd.incidents["safeguard-page-1"] == "triggered"

Independent of the bot: it imports nothing of ``bot``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime
from typing import Any

from flask import Flask, Response, request

from runtime.serving import BackgroundServer

ROUTING_KEY_LENGTH = 32
EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
SUMMARY_MAX = 1024
DEDUP_KEY_MAX = 255
MAX_BODY_BYTES = 512 * 1024
OPEN_STATES = ("triggered", "acknowledged")


def validate_event(event: Any) -> list[str]:
    """The list of problems with an Events API v2 event; empty when it is valid."""
    if not isinstance(event, dict):
        return ["Event must be a JSON object"]
    errors: list[str] = []
    key = event.get("routing_key")
    if not isinstance(key, str) or not key:
        errors.append("'routing_key' is missing or blank")
    elif len(key) != ROUTING_KEY_LENGTH:
        errors.append(
            f"Length of 'routing_key' is incorrect (should be {ROUTING_KEY_LENGTH} characters)"
        )
    action = event.get("event_action")
    if action not in EVENT_ACTIONS:
        errors.append(
            "'event_action' is missing or invalid (should be trigger, acknowledge or resolve)"
        )
    dedup = event.get("dedup_key")
    if dedup is not None and not isinstance(dedup, str):
        errors.append("'dedup_key' must be a string")
    elif isinstance(dedup, str) and len(dedup) > DEDUP_KEY_MAX:
        errors.append(f"'dedup_key' is too long (maximum is {DEDUP_KEY_MAX} characters)")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append(f"'dedup_key' is required for event_action '{action}'")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing or not an object")
        else:
            errors.extend(_validate_payload(payload))
    for name in ("links", "images"):
        if name in event and not isinstance(event[name], list):
            errors.append(f"'{name}' must be an array")
    links = event.get("links")
    for i, link in enumerate(links if isinstance(links, list) else []):
        if not isinstance(link, dict) or not isinstance(link.get("href"), str) or not link["href"]:
            errors.append(f"'links[{i}].href' is missing or blank")
    return errors


def _validate_payload(payload: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors.append("'payload.summary' is missing or blank")
    elif len(summary) > SUMMARY_MAX:
        errors.append(f"'payload.summary' is too long (maximum is {SUMMARY_MAX} characters)")
    source = payload.get("source")
    if not isinstance(source, str) or not source.strip():
        errors.append("'payload.source' is missing or blank")
    severity = payload.get("severity")
    if severity not in SEVERITIES:
        errors.append(
            "'payload.severity' is missing or invalid (should be critical, error, warning or info)"
        )
    timestamp = payload.get("timestamp")
    if timestamp is not None:
        try:
            datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
        except ValueError:
            errors.append("'payload.timestamp' is not an ISO 8601 timestamp")
    for name in ("component", "group", "class"):
        if name in payload and payload[name] is not None and not isinstance(payload[name], str):
            errors.append(f"'payload.{name}' must be a string")
    return errors


def _json(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body), status=status, mimetype="application/json", headers=headers or {}
    )


class PagerDutyStandIn:
    """The stand-in server. ``port=0`` picks a free port; ``.url`` is the enqueue URL."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self.events: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.incidents: dict[str, str] = {}
        self.opened: list[str] = []
        self._lock = threading.Lock()
        self._failures: list[int] = []
        self._delay = 0.0
        self._stopping = threading.Event()
        self._http: BackgroundServer | None = None
        self.app = self._make_app()

    # -- control --------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/v2/enqueue"

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        """Answer the next ``n`` enqueue requests with ``status`` (500 or 429) instead."""
        if status not in (429, 500, 502, 503, 504):
            raise ValueError("status must be 429 or a 5xx")
        with self._lock:
            self._failures.extend([status] * n)

    def delay(self, seconds: float) -> None:
        """Wait ``seconds`` before answering each request (0 turns it off)."""
        with self._lock:
            self._delay = max(0.0, float(seconds))

    def reset(self) -> None:
        with self._lock:
            self.events.clear()
            self.requests.clear()
            self.incidents.clear()
            self.opened.clear()
            self._failures.clear()
            self._delay = 0.0

    def start(self) -> PagerDutyStandIn:
        if self._http is not None:
            raise RuntimeError("already started")
        self._stopping.clear()
        self._http = BackgroundServer(self.app, host=self.host, port=self.port, threads=8).start()
        self.port = self._http.port
        return self

    def stop(self) -> None:
        if self._http is None:
            return
        self._stopping.set()  # wakes requests sleeping in a delay
        server, self._http = self._http, None
        server.stop()

    def __enter__(self) -> PagerDutyStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the API --------------------------------------------------------------------------

    def _make_app(self) -> Flask:
        app = Flask("pagerduty_standin")

        @app.post("/v2/enqueue")
        def enqueue() -> Response:
            return self._enqueue()

        @app.errorhandler(404)
        def not_found(_: Exception) -> Response:
            return _json({"status": "not found", "message": "Not found"}, 404)

        @app.errorhandler(405)
        def not_allowed(_: Exception) -> Response:
            return _json({"status": "method not allowed", "message": "Method not allowed"}, 405)

        return app

    def _enqueue(self) -> Response:
        with self._lock:
            delay = self._delay
            failure = self._failures.pop(0) if self._failures else None
        if delay:
            self._stopping.wait(delay)
        raw = request.get_data(cache=False)
        if failure == 429:
            return _json(
                {
                    "status": "throttle event",
                    "message": "Requests for this service are arriving too quickly. Please retry later.",
                },
                429,
                {"Retry-After": "1"},
            )
        if failure is not None:
            return _json({"status": "error", "message": "Internal server error"}, failure)
        if len(raw) > MAX_BODY_BYTES:
            return _json({"status": "invalid event", "message": "Request too large"}, 413)
        try:
            event = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return self._invalid(["Event body is not valid JSON"], None)
        errors = validate_event(event)
        if errors:
            return self._invalid(errors, event)
        return self._accept(event)

    def _invalid(self, errors: list[str], event: Any) -> Response:
        with self._lock:
            self.requests.append({"at": time.time(), "status": 400, "event": event})
        return _json(
            {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
            400,
        )

    def _accept(self, event: dict[str, Any]) -> Response:
        action = event["event_action"]
        with self._lock:
            dedup = event.get("dedup_key") or uuid.uuid4().hex
            state = self.incidents.get(dedup)
            if action == "trigger":
                if state not in OPEN_STATES:  # a trigger on an open incident only adds an alert
                    self.incidents[dedup] = "triggered"
                    self.opened.append(dedup)
            elif action == "acknowledge":
                if state in OPEN_STATES:
                    self.incidents[dedup] = "acknowledged"
            elif state in OPEN_STATES:  # resolve
                self.incidents[dedup] = "resolved"
            self.events.append(dict(event, dedup_key=dedup))
            self.requests.append({"at": time.time(), "status": 202, "event": event})
        return _json({"status": "success", "message": "Event processed", "dedup_key": dedup}, 202)

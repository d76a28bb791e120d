"""The HTTP side: Slack's endpoint (through Bolt's Flask adapter), health, metrics, and the
timeline page behind signed, expiring links."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, Response, jsonify, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from sqlalchemy import func, select, text

from .clock import utcnow
from .core import Core
from .db.models import Incident, Page, Task, Timer
from .scheduler import Clockwork
from .timeline import export, links
from .timeline.build import build_review

_GRACE = timedelta(seconds=30)  # a timer this late means no replica is firing timers


def create_web(core: Core, bolt: App, clockwork: Clockwork) -> Flask:
    web = Flask("safeguard")
    slack = SlackRequestHandler(bolt)

    @web.post("/slack/events")
    def slack_events():
        return slack.handle(request)

    @web.get("/healthz")
    def healthz():
        try:
            with core.db.read() as session:
                session.execute(text("SELECT 1"))
                overdue = session.scalar(select(func.count(Timer.id)).where(
                    Timer.state == "pending", Timer.due_at < utcnow().replace(microsecond=0) - _GRACE))
        except Exception as err:  # the database is down: say so, do not crash
            return jsonify(ok=False, database=f"error: {type(err).__name__}"), 503
        running = clockwork.scheduler.running
        body = {"ok": running, "database": "ok", "scheduler": "running" if running else "stopped",
                "timers_overdue": overdue}
        return jsonify(body), 200 if running else 503

    @web.get("/metrics")
    def metrics():
        with core.db.read() as session:
            lines = []
            for status, count in session.execute(select(Incident.status, func.count()).group_by(Incident.status)):
                lines.append(f'safeguard_incidents{{status="{status}"}} {count}')
            for state, count in session.execute(select(Timer.state, func.count()).group_by(Timer.state)):
                lines.append(f'safeguard_timers{{state="{state}"}} {count}')
            for state, count in session.execute(select(Task.state, func.count()).group_by(Task.state)):
                lines.append(f'safeguard_tasks{{state="{state}"}} {count}')
            for state, count in session.execute(select(Page.state, func.count()).group_by(Page.state)):
                lines.append(f'safeguard_pages{{state="{state}"}} {count}')
        header = ["# HELP safeguard_incidents Incidents by status.", "# TYPE safeguard_incidents gauge",
                  "# HELP safeguard_timers Timers by state.", "# TYPE safeguard_timers gauge",
                  "# HELP safeguard_tasks Outbox tasks by state (dead = gave up).", "# TYPE safeguard_tasks gauge",
                  "# HELP safeguard_pages Pages by state.", "# TYPE safeguard_pages gauge"]
        return Response("\n".join(header + lines) + "\n", mimetype="text/plain; version=0.0.4")

    @web.get("/incidents/<int:number>")
    def timeline_page(number: int):
        secret = (core.settings.link_secret or core.settings.slack_signing_secret or "").encode()
        try:
            links.check_link(secret, number, request.args.get(links.TOKEN_PARAM, ""), utcnow())
        except links.LinkError as err:
            return Response(f"This link is not valid ({err.reason}). Ask the bot for a new one with "
                            "/incident timeline html in the incident channel.\n", status=403, mimetype="text/plain")
        body = export.render(build_review(core, number), "html", template_dir=core.settings.templates_dir)
        response = Response(body, mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
        return response

    return web


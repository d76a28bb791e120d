"""The HTTP side: Slack's endpoint (through Bolt's Flask adapter), health, metrics, and the
timeline page behind signed, expiring links."""

from __future__ import annotations

import logging
from datetime import timedelta

import jinja2
from flask import Flask, Response, jsonify, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import func, select, text

from api import register_api
from bot.clocks.now import utcnow
from bot.clocks.scheduler import Clockwork
from bot.core import Core
from bot.db.models import Timer
from bot.durations import format_duration
from bot.errors import DomainError, Forbidden, NotFound
from bot.incidents.queries import check_access
from bot.timeline import export, links
from bot.timeline.build import build_review
from bot.timeline.service import link_secret
from bot.wellbeing import tz_of
from handlers.errors import new_error_id
from runtime.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

_GRACE = timedelta(seconds=30)
log = logging.getLogger(__name__)
MAX_BODY = 1_000_000  # Slack's payloads are far smaller; anything bigger is not from Slack


def signed(verifier: SignatureVerifier, body: bytes, headers) -> bool:
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12) or not signature.isascii():
        return False
    if len(body) > MAX_BODY:
        return False
    try:
        return verifier.is_valid(body, timestamp, signature)
    except (UnicodeDecodeError, ValueError, TypeError):  # not even text: Slack never sent it
        return False  # a timer this late means no replica is firing timers


def create_web(core: Core, bolt: App, clockwork: Clockwork, signing_secret: str) -> Flask:
    web = Flask("safeguard")
    slack = SlackRequestHandler(bolt)
    verifier = SignatureVerifier(signing_secret)

    @web.before_request
    def learn_own_port():
        # Served on port 0 (any free port) without SAFEGUARD_PUBLIC_URL: timeline links fall back
        # to 127.0.0.1 and the port, which only the server knows. The WSGI server's SERVER_PORT
        # is its own listening port (not a request header), so it is safe to learn it here.
        if not core.settings.public_url and not core.settings.port:
            port = str(request.environ.get("SERVER_PORT", ""))
            if port.isdigit() and int(port):
                core.settings.port = int(port)

    @web.post("/slack/events")
    def slack_events():
        # The signature first, on the raw bytes, before anything parses the body: a request Slack
        # did not sign gets Bolt's 401 and a one-line log, never its body and never a 500.
        body = request.get_data(cache=True)
        if not signed(verifier, body, request.headers):
            log.info("refused an unsigned or stale request to /slack/events (%s bytes)", len(body))
            return jsonify(error="invalid request"), 401
        try:
            return slack.handle(request)
        except Exception as err:  # a signed body Bolt cannot read (truncated JSON, a form without payload)
            log.warning("%s: a signed request could not be read (%s)", new_error_id(), type(err).__name__)
            return jsonify(error="malformed request"), 400

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
        slack_ready = core.gateway is None or core.gateway.ready
        ok = running and slack_ready
        body = {"ok": ok, "database": "ok", "scheduler": "running" if running else "stopped",
                "slack": "ready" if slack_ready else "not answering yet (auth.test is retried)",
                "timers_overdue": overdue}
        return jsonify(body), 200 if ok else 503

    @web.get("/metrics")
    def metrics():
        # prometheus_client's exposition of this bot's own registry (runtime/metrics.py).
        exposition = getattr(core.metrics, "exposition", None)
        body = exposition() if exposition is not None else b""
        return Response(body, content_type=METRICS_CONTENT_TYPE)

    @web.get("/incidents/<int:number>")
    def timeline_page(number: int):
        secret = link_secret(core.settings)
        try:
            if not secret:  # nothing can have signed a link: refuse them all
                raise links.LinkError(links.FORGED, "this bot has no secret to sign links")
            user = links.check_link(secret, number, request.args.get(links.TOKEN_PARAM, ""), utcnow())
            if user is None:  # a link from before links named their holder
                raise links.LinkError(links.EXPIRED, "this kind of link is no longer accepted")
        except links.LinkError as err:
            return Response(f"This link is not valid ({err.reason}). Ask the bot for a new one with "
                            "/incident timeline html in the incident channel.\n", status=403, mimetype="text/plain")
        try:  # the link is personal: someone removed from the channel since cannot use it
            check_access(core, number, user)
        except NotFound:
            return Response("There is no such incident.\n", status=404, mimetype="text/plain")
        except DomainError:
            return Response(f"This link was given to someone who may no longer see INC-{number}.\n",
                            status=403, mimetype="text/plain")
        try:
            review = build_review(core, number)
        except NotFound:  # a genuine link to an incident this database does not hold
            return Response("There is no such incident.\n", status=404, mimetype="text/plain")
        # Times in the reader's own zone, as Slack has it (the link names its holder): no script needed.
        return _private_page(export.render(review, "html", template_dir=core.settings.templates_dir,
                                           reader_tz=tz_of(core, user)))

    @web.get("/reports")
    def report_page():
        from bot.reports.build import build_report
        from bot.reports.period import period_of
        from bot.reports.render import render as render_report
        from bot.reports.service import scope

        secret = link_secret(core.settings)
        playbook = request.args.get("playbook") or None
        try:
            period = period_of(request.args.get("from"), request.args.get("to"), utcnow().date())
        except DomainError as err:
            return Response(f"{err}\n", status=400, mimetype="text/plain")
        try:
            if not secret:
                raise links.LinkError(links.FORGED, "this bot has no secret to sign links")
            user = links.check_report_link(secret, scope(period, playbook), request.args.get(links.TOKEN_PARAM, ""),
                                           utcnow())
        except links.LinkError as err:
            return Response(f"This link is not valid ({err.reason}). Ask the bot for a new one with "
                            "/incident report.\n", status=403, mimetype="text/plain")
        try:  # the link is personal: someone who is no longer a lead cannot use it
            report = build_report(core, user, period, playbook=playbook)
        except Forbidden:
            return Response("This link was given to someone who may no longer read reports.\n", status=403,
                            mimetype="text/plain")
        except DomainError as err:  # a playbook since removed from the configuration
            return Response(f"{err}\n", status=400, mimetype="text/plain")
        return _private_page(render_report(report, "html", template_dir=core.settings.templates_dir))

    @web.get("/playbooks/<playbook_id>")
    def playbook_page(playbook_id: str):
        """A playbook as a page (the incident channel's bookmark): steps, owners, clocks and their
        legal basis. No incident data, so no link token."""
        playbook = core.playbooks.get(playbook_id)
        if playbook is None:
            return Response("There is no such playbook.\n", status=404, mimetype="text/plain")
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(core.settings.templates_dir)), autoescape=True,
                                 undefined=jinja2.StrictUndefined)
        labels = {role: core.role_label(role) for role in
                  {*playbook.roles, *(s.owner for s in playbook.steps), *(t.page for s in playbook.steps
                                                                          for t in s.timers if t.page)}}
        durations = {f"{i}{s.id}": format_duration(t.after) for s in playbook.steps for i, t in enumerate(s.timers)}
        body = env.get_template("playbook.html.j2").render(playbook=playbook, labels=labels, durations=durations)
        response = Response(body, mimetype="text/html")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
        return response

    register_api(web, core)
    return web


def _private_page(body: str) -> Response:
    """A page holding incident data: never cached, never referred, and no script at all (the
    template's own policy, its data: favicon included, plus what only a header can say)."""
    response = Response(body, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                                   "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return response


"""What responders add to the timeline (notes from messages, 📌) and exporting it to Slack."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from sqlalchemy import select

from bot.errors import SlackError

from ..clocks.dispatcher import GiveUp, Retry
from ..clocks.now import utcnow
from ..clocks.outbox import enqueue
from ..core import Core
from ..db.models import Incident, TimelineEvent
from ..errors import InvalidInput, NotFound
from ..incidents import ref
from ..outcomes import Outcome
from ..policy import mutation
from . import export, links
from .build import build_review
from .store import append, lock_incident


@mutation("note")
def add_message(core: Core, incident_id: int, actor: str, *, channel_id: str, message: dict[str, Any],
                via: str) -> Outcome:
    """Keep a message as text, author, time and permalink. Files are never fetched or stored:
    the event only records that the message had some."""
    _in_its_channel(core, incident_id, channel_id)
    ts = message.get("ts")
    if not isinstance(ts, str):
        raise InvalidInput("That message has no timestamp; it cannot be added.")
    permalink = core.gateway.permalink(channel_id, ts) if core.gateway is not None and ts else None
    files = message.get("files") or []
    data = {"via": via, "author": message.get("user") or message.get("bot_id"), "message_ts": ts,
            "permalink": permalink, "had_files": len(files)}
    text = str(message.get("text") or "").replace("\x00", "").strip()[:MAX_MESSAGE]
    if files:
        text = (text + "\n" if text else "") + f"[message had {len(files)} file(s); not copied]"
    with core.db.tx() as session:
        # Lock before looking for the message, so two people adding it at once make one event.
        lock_incident(session, incident_id)
        for existing in session.scalars(select(TimelineEvent).where(
                TimelineEvent.incident_id == incident_id, TimelineEvent.kind == "note")):
            if existing.data.get("message_ts") == ts and ts:
                return Outcome("already_on_timeline", incident_id, {"seq": existing.seq})
        event = append(session, incident_id, "note", text or "(empty message)", actor=actor, data=data)
    return Outcome("added_to_timeline", incident_id, {"seq": event.seq})


def _in_its_channel(core: Core, incident_id: int, channel_id: str) -> None:
    with core.db.read() as session:
        incident = session.get(Incident, incident_id)
        if incident is None or incident.channel_id != channel_id:
            raise NotFound("Only messages in an incident channel can be added to its timeline.")


@mutation("note")
def add_pinned_message(core: Core, incident_id: int, actor: str, *, channel_id: str, ts: str) -> Outcome:
    _in_its_channel(core, incident_id, channel_id)
    message = core.gateway.message(channel_id, ts)
    if message is None:
        raise NotFound("That message is gone.")
    return add_message(core, incident_id, actor, channel_id=channel_id, message=message, via="reaction")


MAX_MESSAGE = 3000

# Errors after which uploading again cannot succeed.
FINAL_UPLOAD_ERRORS = {"channel_not_found", "is_archived", "not_in_channel", "invalid_auth", "account_inactive",
                       "missing_scope", "file_uploads_disabled"}


def link_secret(settings) -> bytes:
    """The key that signs timeline links: the link secret, else the signing secret, else (Socket
    Mode needs no signing secret) the app-level token. Empty when none is set."""
    return (settings.link_secret or settings.slack_signing_secret or settings.slack_app_token or "").encode()


def link_for(core: Core, incident_id: int, user: str) -> str:
    secret = link_secret(core.settings)
    if not secret:
        raise InvalidInput("Timeline pages need a secret to sign links (SLACK_SIGNING_SECRET); "
                           "use `/incident timeline md` instead.")
    token = links.sign_link(secret, incident_id, links.default_expiry(utcnow()), user)
    return f"{public_base(core)}/incidents/{incident_id}?{links.TOKEN_PARAM}={token}"


def public_base(core: Core) -> str:
    """Where the bot's own pages are reachable (SAFEGUARD_PUBLIC_URL, else this host and port)."""
    return (core.settings.public_url or f"http://127.0.0.1:{core.settings.port}").rstrip("/")


@mutation("export")
def post_to_channel(core: Core, incident_id: int, actor: str, fmt: str) -> Outcome:
    user = actor
    if fmt not in export.FORMATS:
        raise InvalidInput(f"Formats: {', '.join(export.FORMATS)}.")
    link = link_for(core, incident_id, user) if fmt == "html" else None
    with core.db.tx() as session:
        incident = session.get(Incident, incident_id)
        enqueue(session, "upload_timeline", {"incident": incident_id, "format": fmt, "user": user,
                                             "channel": incident.channel_id}, incident_id=incident_id)
        if link:
            append(session, incident_id, "timeline_link", "Issued a one-hour link to the timeline page", actor=user,
                   data={"format": "html"})
    core.dispatcher.kick()
    return Outcome("timeline_posting", incident_id, {"format": fmt, "link": link})


def upload_task(core: Core, task) -> None:
    p = task.payload
    review = build_review(core, p["incident"])
    body = export.render(review, p["format"], template_dir=core.settings.templates_dir)
    name = export.filename(review, p["format"])
    requested = f"{review.ref} timeline, requested by <@{p['user']}>"
    try:
        # An earlier attempt may have posted it and only lost Slack's answer: not twice.
        if not (task.attempts > 1 and core.gateway.posted_file(p["channel"], name, _epoch(task.created_at),
                                                               requested)):
            head = review.events[-1]  # the anchor kept in Slack, for `safeguard verify --anchor`
            core.gateway.upload(p["channel"], name, body, title=name,
                                comment=f"{requested}. Timeline anchor: `{head.seq}:{head.hash}`")
    except SlackError as err:
        if err.code in FINAL_UPLOAD_ERRORS:
            raise GiveUp(str(err)) from None
        raise Retry(str(err)) from None
    with core.db.tx() as session:
        append(session, p["incident"], "timeline_exported", f"Posted the timeline as {name}", actor=p["user"],
               data={"format": p["format"], "events": len(review.events)})


def _epoch(at) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() - 5  # a little clock skew


def upload_failed(core: Core, task, error: str) -> None:
    """Slack would not take the file: say so on the timeline and to the one who asked."""
    p = task.payload
    first = error.splitlines()[0][:300] if error else "unknown error"
    with core.db.tx() as session:
        append(session, p["incident"], "timeline_export_failed", f"Could not post the timeline ({p['format']}): {first}",
               actor=p["user"], data={"format": p["format"], "error": first, "attempts": task.attempts})
    text = (f":warning: Could not post {ref(p['incident'])}'s timeline ({p['format']}) here: {first}. "
            f"Try `/incident timeline {p['format']}` again later, or ask an operator for "
            f"`safeguard timeline {ref(p['incident'])} --format {p['format']}`.")
    core.gateway.tell(p["channel"], p["user"], text)  # a DM when the channel is gone or archived


def register_tasks(core: Core) -> None:
    core.dispatcher.register("upload_timeline", lambda t: upload_task(core, t), max_attempts=10,
                             on_dead=lambda t, e: upload_failed(core, t, e))

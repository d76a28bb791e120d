"""Notes, severity, resolve and close."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from ..clocks.arming import arm_status_update, cancel_timers, outlives_close
from ..clocks.now import utcnow
from ..clocks.outbox import enqueue, to_incident_channel
from ..core import Core
from ..db.models import Incident, Page, StepState, TimelineEvent, Timer
from ..errors import InvalidInput, NotFound
from ..outcomes import Outcome
from ..paging.messages import sync_incident_pages
from ..paging.service import withdraw_pages
from ..policy import mutation
from ..timeline.store import append, lock_incident
from . import ref
from .announce import announce
from .checklist import request_refresh
from .declare import SEVERITIES

MAX_NOTE = 3000
MAX_REASON = 500


def _incident(session, incident_id: int) -> Incident:
    lock_incident(session, incident_id)
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"There is no incident {ref(incident_id)}.")
    return incident


@mutation("note")
def add_note(core: Core, incident_id: int, actor: str, text: str) -> Outcome:
    text = (text or "").strip()
    if not text:
        raise InvalidInput("Usage: `/incident note TEXT…` (refer to evidence by ids and hashes, never describe content).")
    if len(text) > MAX_NOTE:
        raise InvalidInput(f"Keep a note under {MAX_NOTE} characters.")
    with core.db.tx() as session:
        _incident(session, incident_id)
        event = append(session, incident_id, "note", text, actor=actor, data={"via": "command"})
    return Outcome("added_to_timeline", incident_id, {"seq": event.seq})


@mutation("note")
def add_correction(core: Core, incident_id: int, actor: str, target: str, text: str) -> Outcome:
    """Events are never changed: a correction is a new event that names the one it corrects."""
    target = target.strip().lstrip("#")
    text = (text or "").strip()
    if not (target.isascii() and target.isdigit() and len(target) <= 9) or not text:
        raise InvalidInput("Usage: `/incident correct N TEXT…`, where N is the event's number on the "
                           "timeline (`/incident timeline`); TEXT says what was wrong and what is right.")
    if len(text) > MAX_NOTE:
        raise InvalidInput(f"Keep a correction under {MAX_NOTE} characters.")
    with core.db.tx() as session:
        _incident(session, incident_id)
        corrected = session.scalar(select(TimelineEvent).where(
            TimelineEvent.incident_id == incident_id, TimelineEvent.seq == int(target)))
        if corrected is None:
            raise NotFound(f"{ref(incident_id)} has no event #{target}.")
        event = append(session, incident_id, "correction", text, actor=actor,
                       data={"corrects": corrected.seq, "corrects_kind": corrected.kind,
                             "corrects_hash": corrected.hash})
    return Outcome("correction_added", incident_id, {"corrects": corrected.seq, "seq": event.seq})


@mutation("severity")
def set_severity(core: Core, incident_id: int, actor: str, severity: str) -> Outcome:
    user = actor
    severity = severity.strip().lower()
    if severity in ("1", "2", "3"):  # `/incident severity 2` means sev2
        severity = f"sev{severity}"
    if severity not in SEVERITIES:
        raise InvalidInput(f"Usage: `/incident severity SEV` with SEV one of {', '.join(SEVERITIES)}.")
    with core.db.tx() as session:
        incident = _incident(session, incident_id)
        if incident.status != "open":
            raise InvalidInput(f"{ref(incident_id)} is {incident.status}.")
        if incident.severity == severity:
            raise InvalidInput(f"{ref(incident_id)} is already {severity.upper()}.")
        previous, incident.severity = incident.severity, severity
        append(session, incident_id, "severity_changed", f"Severity {previous.upper()} → {severity.upper()}",
               actor=user, data={"from": previous, "to": severity})
        # The status-update cadence follows the severity, counted from the last status update
        # (or the declaration): sev1 → sev2 → sev1 must not push the next one back.
        cancel_timers(session, incident_id, reason="severity changed", actor=user, kinds=("status",))
        arm_status_update(core, session, incident, _last_status_update(session, incident), not_before=utcnow())
        request_refresh(session, incident)
        _retopic(session, incident)
        _announce(session, incident, f":rotating_light: Severity changed to *{severity.upper()}* by <@{user}>.")
        announce(core, session, incident, "severity")
    core.dispatcher.kick()
    return Outcome("severity_changed", incident_id, {"severity": severity})


@mutation("resolve")
def resolve(core: Core, incident_id: int, actor: str, summary: str) -> Outcome:
    user = actor
    summary = " ".join((summary or "").split())[:1000]
    with core.db.tx() as session:
        incident = _incident(session, incident_id)
        if incident.status != "open":
            raise InvalidInput(f"{ref(incident_id)} is already {incident.status}.")
        incident.status, incident.resolved_at, incident.resolution = "resolved", utcnow(), summary or None
        append(session, incident_id, "resolved", f"Resolved{': ' + summary if summary else ''}", actor=user,
               data={"summary": summary})
        cancel_timers(session, incident_id, reason="incident resolved", actor=user, kinds=("status",))
        sync_incident_pages(session, incident_id)  # open pages' messages say the incident is resolved
        request_refresh(session, incident)
        _retopic(session, incident)
        _announce(session, incident, f":white_check_mark: {ref(incident_id)} resolved by <@{user}>. "
                                     "`/incident timeline` posts the review; `/incident close` closes it.")
        announce(core, session, incident, "resolved")
    core.dispatcher.kick()
    return Outcome("resolved", incident_id)


@dataclass(frozen=True)
class ClosePreview:
    """What closing would stop, for the confirmation modal and the refusal."""

    incident: int
    legal_steps: list[tuple[str, str]]  # (step id, title): a `law:` clock, neither done nor skipped
    clocks: list[str]  # the clocks that would be cancelled, in words
    kept: list[str]  # the clocks that outlive close
    pages: int  # open or unanswered pages that would be withdrawn


def _preview(core: Core, session, incident: Incident) -> ClosePreview:
    playbook = core.playbooks.get(incident.playbook_id)
    states = {s.step_id: s.state for s in session.scalars(select(StepState).where(StepState.incident_id == incident.id))}
    legal = [(step.id, step.title) for step in (playbook.steps if playbook else [])
             if step.has_legal_clock and states.get(step.id) not in ("done", "skipped")]
    clocks, kept = [], []
    titles = {step.id: step.title for step in (playbook.steps if playbook else [])}
    for timer in session.scalars(select(Timer).where(Timer.incident_id == incident.id, Timer.state == "pending")
                                 .order_by(Timer.due_at)):
        what = {"remind": "reminder", "page": "page", "status": "status-update reminder",
                "escalate": "page escalation"}.get(timer.kind, timer.kind)
        line = f"{what} for “{titles.get(timer.step_id, timer.step_id)}”" if timer.step_id else what
        (kept if outlives_close(timer, playbook) else clocks).append(line)
    pages = session.scalar(select(func.count(Page.id)).where(
        Page.incident_id == incident.id, Page.state.in_(("open", "unanswered")))) or 0
    return ClosePreview(incident.id, legal, clocks, kept, pages)


@mutation("close")
def close_preview(core: Core, incident_id: int, actor: str) -> ClosePreview:
    """What `close` would stop (nothing is changed): the Close button's confirmation."""
    with core.db.read() as session:
        incident = session.get(Incident, incident_id)
        if incident.status == "closed":
            raise InvalidInput(f"{ref(incident_id)} is already closed.")
        return _preview(core, session, incident)


@mutation("close")
def close(core: Core, incident_id: int, actor: str, anyway: str | None = None) -> Outcome:
    """Close: the work is over. Refused while a step with a legal clock is neither done nor
    skipped, unless `anyway` gives the reason (recorded: `closed` with `forced`)."""
    user = actor
    forced = " ".join((anyway or "").split())[:MAX_REASON] or None
    if anyway is not None and not forced:
        raise InvalidInput("Say why: `/incident close anyway REASON…`.", {"reason": "A reason is required."})
    with core.db.tx() as session:
        incident = _incident(session, incident_id)
        if incident.status == "closed":
            raise InvalidInput(f"{ref(incident_id)} is already closed.")
        preview = _preview(core, session, incident)
        if preview.legal_steps and not forced:
            open_steps = "; ".join(f"“{title}” (`{sid}`)" for sid, title in preview.legal_steps)
            raise InvalidInput(
                f"{ref(incident_id)} still has steps with a legal clock: {open_steps}. Finish or skip them, "
                "or close all the same with `/incident close anyway REASON…` (the reason is recorded).",
                {"reason": "Steps with a legal clock are still open."})
        if incident.status == "open":
            incident.resolved_at = incident.resolved_at or utcnow()
        incident.status, incident.closed_at = "closed", utcnow()
        # A lasting duty's clock (the 1-year preservation review) outlives the incident's channel.
        cancel_timers(session, incident_id, reason="incident closed", actor=user, keep_lasting=True,
                      playbook=core.playbooks.get(incident.playbook_id))
        withdraw_pages(core, session, incident_id, user)
        archive = core.config.archive_on_close and incident.channel_id is not None
        text = "Closed" + (" and the channel archived" if archive else "")
        data = {"archive": archive}
        if forced:
            text += f" with legal steps open ({', '.join(sid for sid, _ in preview.legal_steps)}): {forced}"
            data |= {"forced": True, "reason": forced, "open_legal_steps": [sid for sid, _ in preview.legal_steps]}
        closed = append(session, incident_id, "closed", text, actor=user, data=data)
        announce(core, session, incident, "closed")
        if incident.channel_id and not archive:
            _retopic(session, incident)  # the channel stays: its topic says CLOSED
        if incident.channel_id:
            # One task, in order: redraw the checklist, say so, then archive. The anchor kept in
            # Slack lets `safeguard verify --anchor` notice events later removed from the end.
            enqueue(session, "close_channel", {
                "incident": incident_id, "channel": incident.channel_id, "archive": archive,
                "text": f":lock: {ref(incident_id)} closed by <@{user}>."
                        + (" This channel is being archived." if archive else "")
                        + f"\nTimeline anchor: `{closed.seq}:{closed.hash}`",
            }, incident_id=incident_id)
    core.dispatcher.kick()
    return Outcome("closed", incident_id, {"forced": bool(forced and preview.legal_steps)})


def _last_status_update(session, incident: Incident):
    """When the cadence last restarted: the last reminder that fired, or the last update posted."""
    last = session.scalar(select(Timer.due_at).where(
        Timer.incident_id == incident.id, Timer.kind == "status", Timer.state == "fired").order_by(Timer.due_at.desc()))
    posted = session.scalar(select(TimelineEvent.at).where(
        TimelineEvent.incident_id == incident.id, TimelineEvent.kind == "status_update").order_by(TimelineEvent.seq.desc()))
    return max([t for t in (last, posted) if t is not None], default=incident.declared_at)


def _retopic(session, incident: Incident) -> None:
    """The channel topic shows the severity and the status: set it again (folded per incident)."""
    enqueue(session, "topic", {"incident": incident.id}, incident_id=incident.id, dedup_key=f"topic:{incident.id}")


def _announce(session, incident: Incident, text: str) -> None:
    to_incident_channel(session, incident, text)

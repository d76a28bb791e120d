"""Firing due timers: claim the row, act, all in one transaction.

The claim is one conditional UPDATE (`… WHERE id = ? AND state = 'pending'`): of several
processes that see the same due timer, exactly one changes the row and acts. The incident
row is locked first, as in every transaction that changes an incident, so claims never
deadlock against people's commands.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update

from .clock import utcnow
from .clocks import arm_status_update
from .core import Core
from .db.models import Incident, Timer
from .incidents import ref
from .incidents.checklist import request_refresh
from .incidents.views import role_holders
from .outbox import enqueue
from .paging import service as pages
from .timeline.store import append, lock_incident

BATCH = 500


def fire_due(core: Core, now: datetime) -> int:
    with core.db.read() as session:
        due = session.execute(
            select(Timer.id, Timer.incident_id).where(Timer.state == "pending", Timer.due_at <= now)
            .order_by(Timer.due_at).limit(BATCH)
        ).all()
    fired = 0
    for timer_id, incident_id in due:
        with core.db.tx() as session:
            lock_incident(session, incident_id)
            claimed = session.execute(
                update(Timer).where(Timer.id == timer_id, Timer.state == "pending")
                .values(state="fired", fired_at=utcnow(), fired_by=core.dispatcher.node)
            ).rowcount
            if claimed:
                _act(core, session, session.get(Timer, timer_id))
                fired += 1
    core.wake(next_due(core))
    return fired


def next_due(core: Core) -> datetime | None:
    with core.db.read() as session:
        return session.scalar(select(func.min(Timer.due_at)).where(Timer.state == "pending"))


def _act(core: Core, session, timer: Timer) -> None:
    incident = session.get(Incident, timer.incident_id)
    late = (timer.fired_at - timer.due_at).total_seconds()
    base = {"timer": timer.id, "kind": timer.kind, "step": timer.step_id, "target": timer.target,
            "due_at": timer.due_at.isoformat(), "late_seconds": round(late, 3)}
    if timer.kind == "escalate":
        append(session, incident.id, "timer_fired", f"Page #{timer.page_id} not acknowledged in time", data=base)
        pages.escalate(core, session, timer)
        return
    if incident.status != "open" and timer.kind == "status":
        append(session, incident.id, "timer_fired", f"Status update not needed: the incident is {incident.status}",
               data=base)
        return
    playbook = core.playbook(incident.playbook_id)
    step = playbook.step(timer.step_id) if timer.step_id else None
    if timer.kind == "remind":
        role = step.owner if timer.target == "owner" and step else timer.target
        users = role_holders(session, incident.id).get(role, []) or _config_users(core, role)
        append(session, incident.id, "timer_fired", f"Reminder due for “{step.title if step else 'the incident'}”",
               data=base)
        text = core.render.text("slack/reminder.txt.j2", ref=ref(incident.id), step=step, users=users,
                                label=core.role_label(role), due=timer.due_at, spec=timer.spec)
        what = f"Reminded {core.role_label(role)} about “{step.title if step else ''}”"
        if incident.channel_id and not incident.archived and incident.status != "closed":
            enqueue(session, "post", {"channel": incident.channel_id, "text": text, "event": {
                "kind": "reminder_sent", "text": what,
                "data": {"timer": timer.id, "users": users, "step": timer.step_id}}}, incident_id=incident.id)
        else:  # the channel is archived (a legal clock outliving the incident): tell them directly
            for user in users:
                enqueue(session, "post", {"channel": user, "text": text, "event": {
                    "kind": "reminder_sent", "text": what + " by direct message",
                    "data": {"timer": timer.id, "users": [user], "step": timer.step_id}}}, incident_id=incident.id)
        request_refresh(session, incident)
    elif timer.kind == "page" and incident.status == "closed":
        append(session, incident.id, "timer_fired", "Deadline passed after the incident was closed; not paging",
               data=base)
    elif timer.kind == "page":
        append(session, incident.id, "timer_fired", f"Deadline for “{step.title}” passed: paging "
                                                    f"{core.role_label(timer.target)}", data=base)
        pages.open_page(core, session, incident, timer.target,
                        f"“{step.title}” is overdue ({timer.spec.get('after')} after {timer.spec.get('from')})", None)
        request_refresh(session, incident)
    elif timer.kind == "status":
        leads = role_holders(session, incident.id).get("incident_lead", [])
        append(session, incident.id, "timer_fired", "Status update due", data=base)
        if incident.channel_id:
            enqueue(session, "post", {"channel": incident.channel_id, "text": core.render.text(
                "slack/status_due.txt.j2", ref=ref(incident.id), leads=leads, every=timer.spec.get("every")),
                "event": {"kind": "reminder_sent", "text": "Asked for a status update",
                          "data": {"timer": timer.id, "users": leads}}}, incident_id=incident.id)
        arm_status_update(core, session, incident, timer.due_at if timer.due_at > utcnow() else utcnow())


def _config_users(core: Core, role: str) -> list[str]:
    cfg = core.config.roles.get(role)
    return list(cfg.users[:1]) if cfg else []




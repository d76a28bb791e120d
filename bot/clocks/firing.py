"""Firing due timers: claim the rows, act, all in one transaction.

A pass takes the due timers in batches, each batch the earliest due timers whose rows and
incident rows no other transaction holds (`FOR UPDATE OF timers, incidents SKIP LOCKED` on
PostgreSQL, so replicas fire different batches side by side, and a claim never waits, so it
never deadlocks against people's commands, which take the incident lock first; SQLite's
BEGIN IMMEDIATE already serialises writers).
Under those locks nobody else can fire or cancel these timers, so the ones still pending are
claimed (`state = 'fired'`) and acted on in the same transaction: of several processes that
see the same due timer, exactly one fires it, and a crash before the commit leaves it pending.
If acting on one timer fails, the batch is rolled back and fired one timer per transaction,
so a bad timer is retried on its own (with backoff) and never holds up the others.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select

from ..core import Core
from ..db.models import Incident, RoleAssignment, Timer
from ..incidents import ref
from ..incidents.checklist import request_refresh
from ..incidents.views import role_holders
from ..metrics import TIMER_LATENESS
from ..paging import service as pages
from ..timeline.store import append
from .arming import arm_status_update
from .now import utcnow
from .outbox import NORMAL, URGENT, enqueue, to_incident_channel

BATCH = 200
# Batches per pass: under a flood of due timers the dispatcher still starts the outbox's tasks
# (the reminders these timers post) between passes, instead of only once the flood is over.
BATCHES_PER_PASS = 5
FAILURES_BEFORE_NOTICE = 3
BUSY_RETRY = timedelta(milliseconds=100)  # timers of an incident someone else holds: look again
FORGET_FAILURE = timedelta(hours=1)
log = logging.getLogger(__name__)


def fire_due(core: Core, now: datetime) -> int:
    failing = core.dispatcher.timer_failures
    for gone in [tid for tid, (_, retry_at) in failing.items() if retry_at < now - FORGET_FAILURE]:
        del failing[gone]  # fired or cancelled elsewhere since; if not, it is simply tried again
    held = [tid for tid, (_, retry_at) in failing.items() if retry_at > now]
    fired, busy, batches = 0, False, 0
    while True:
        candidates: list[tuple[int, int]] = []
        count = 0
        try:
            with core.db.tx() as session:
                query = (select(Timer.id, Timer.incident_id).join(Incident, Incident.id == Timer.incident_id)
                         .where(Timer.state == "pending", Timer.due_at <= now))
                if held:
                    query = query.where(Timer.id.not_in(held))
                # SKIP LOCKED on the timers and their incidents (PostgreSQL): a replica takes the
                # earliest due timers that no other replica (and no command) holds, instead of all
                # replicas queueing for the same first rows. It never waits, so it never deadlocks.
                candidates = list(session.execute(query.order_by(Timer.due_at).limit(BATCH)
                                                  .with_for_update(skip_locked=True, of=(Timer, Incident))).all())
                timers, skipped = _claim(core, session, candidates)
                busy = busy or skipped
                for timer in timers:
                    _act(core, session, timer)
            count = len(timers)
            for timer in timers:
                failing.pop(timer.id, None)
        except Exception:
            if not candidates:
                raise
            log.warning("a batch of %s timers failed; firing them one by one", len(candidates), exc_info=True)
            count = _fire_one_by_one(core, candidates)
        fired += count
        batches += 1
        if len(candidates) < BATCH or count == 0 or batches >= BATCHES_PER_PASS:
            break  # (a full pass hands over to the outbox; the wake-up below comes back at once)
    following = next_due(core)
    if busy and following is not None:
        following = max(following, utcnow() + BUSY_RETRY)
    core.wake(following)
    return fired


def _claim(core: Core, session, candidates: list[tuple[int, int]]) -> tuple[list[Timer], bool]:
    """Lock the candidates' incidents (skipping those another transaction holds) and claim their
    timers that are still pending. Returns the claimed timers and whether any were skipped."""
    if not candidates:
        return [], False
    wanted = sorted({incident_id for _, incident_id in candidates})
    locked = set(session.scalars(select(Incident.id).where(Incident.id.in_(wanted)).order_by(Incident.id)
                                 .with_for_update(skip_locked=True)))
    ids = [timer_id for timer_id, incident_id in candidates if incident_id in locked]
    if not ids:
        return [], bool(candidates)
    timers = list(session.scalars(select(Timer).where(Timer.id.in_(ids), Timer.state == "pending")
                                  .order_by(Timer.due_at)))
    _preload(session, locked)
    at = utcnow()
    for timer in timers:
        timer.state, timer.fired_at, timer.fired_by = "fired", at, core.dispatcher.node
        basis = str((timer.spec or {}).get("basis") or "").strip().lower()
        core.metrics.observe(TIMER_LATENESS, (at - timer.due_at).total_seconds(), kind=timer.kind,
                             clock="legal" if basis.startswith("law") else "internal" if basis else "none")
    return timers, len(locked) < len(wanted)


def _preload(session, incident_ids: set[int]) -> None:
    """What acting on the batch reads, in three queries instead of several per timer: the
    incidents (held: the identity map keeps only weak references), who holds which role, and
    each step's earliest clock (what the checklist shows as the step's due time)."""
    holders: dict[int, dict[str, list[str]]] = {i: {} for i in incident_ids}
    for incident_id, role, user in session.execute(
            select(RoleAssignment.incident_id, RoleAssignment.role, RoleAssignment.user_id)
            .where(RoleAssignment.incident_id.in_(incident_ids)).order_by(RoleAssignment.id)):
        holders[incident_id].setdefault(role, []).append(user)
    earliest = {(incident_id, step_id): due for incident_id, step_id, due in session.execute(
        select(Timer.incident_id, Timer.step_id, func.min(Timer.due_at))
        .where(Timer.incident_id.in_(incident_ids), Timer.step_id.is_not(None),
               Timer.kind.in_(("remind", "page")), Timer.state.in_(("pending", "fired")))
        .group_by(Timer.incident_id, Timer.step_id))}
    session.info["firing"] = {
        "incidents": list(session.scalars(select(Incident).where(Incident.id.in_(incident_ids)))),
        "holders": holders, "earliest": earliest,
    }


def _holders(session, incident_id: int) -> dict[str, list[str]]:
    preloaded = session.info.get("firing", {}).get("holders", {})
    return preloaded[incident_id] if incident_id in preloaded else role_holders(session, incident_id)


def _fire_one_by_one(core: Core, candidates: list[tuple[int, int]]) -> int:
    fired = 0
    for timer_id, incident_id in candidates:
        try:
            with core.db.tx() as session:
                timers, _ = _claim(core, session, [(timer_id, incident_id)])
                for timer in timers:
                    _act(core, session, timer)
            fired += len(timers)
        except Exception as exc:  # one bad timer must not hold up every timer due after it
            _failed(core, timer_id, incident_id, exc)
        else:
            core.dispatcher.timer_failures.pop(timer_id, None)
    return fired


def _failed(core: Core, timer_id: int, incident_id: int, exc: Exception) -> None:
    """The timer stays pending (a clock is never dropped) and is tried again with backoff; the
    timeline says so once it keeps failing."""
    count = core.dispatcher.timer_failures.get(timer_id, (0, None))[0] + 1
    delay = min(2 ** (count - 1), 300)
    core.dispatcher.timer_failures[timer_id] = (count, utcnow() + timedelta(seconds=delay))
    log.exception("timer %s failed to fire (attempt %s); trying again in %ss", timer_id, count, delay)
    if count == FAILURES_BEFORE_NOTICE:
        try:
            with core.db.tx() as session:
                append(session, incident_id, "timer_failed",
                       f"A clock could not fire ({type(exc).__name__}); it stays armed and is retried",
                       data={"timer": timer_id, "error": f"{type(exc).__name__}: {exc}"[:500], "attempts": count})
        except Exception:
            log.exception("could not record the failure of timer %s", timer_id)


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
    # The playbook may have changed since the clock was armed (a 330-day clock outlives many
    # edits): a step that is gone is named by its id instead of failing the timer.
    playbook = core.playbooks.get(incident.playbook_id)
    step = playbook.step(timer.step_id) if playbook and timer.step_id and playbook.has_step(timer.step_id) else None
    title = step.title if step else (timer.step_id or "the incident")
    if timer.kind == "remind":
        role = step.owner if timer.target == "owner" and step else timer.target
        users = _holders(session, incident.id).get(role, []) or _config_users(core, role)
        append(session, incident.id, "timer_fired", f"Reminder due for “{title}”", data=base)
        text = core.render.text("slack/reminder.txt.j2", ref=ref(incident.id), step=step, users=users,
                                label=core.role_label(role), due=timer.due_at, spec=timer.spec)
        what = f"Reminded {core.role_label(role)} about “{title}”"
        legal = str(timer.spec.get("basis") or "").lower().startswith("law")
        priority = URGENT if legal else NORMAL  # a legal clock's reminder goes first
        if not incident.archived and incident.status != "closed":
            # In the channel (one that Slack has not created yet is waited for: outbox.to_incident_channel).
            to_incident_channel(session, incident, text, event={
                "kind": "reminder_sent", "text": what,
                "data": {"timer": timer.id, "users": users, "step": timer.step_id}}, priority=priority)
        else:  # the channel is archived (a legal clock outliving the incident): tell them directly
            for user in users:
                enqueue(session, "post", {"channel": user, "text": text, "event": {
                    "kind": "reminder_sent", "text": what + " by direct message",
                    "data": {"timer": timer.id, "users": [user], "step": timer.step_id}}}, incident_id=incident.id,
                    priority=priority)
        if _first_of_step(session, timer):
            request_refresh(session, incident)
    elif timer.kind == "page" and incident.status == "closed":
        append(session, incident.id, "timer_fired", "Deadline passed after the incident was closed; not paging",
               data=base)
    elif timer.kind == "page":
        append(session, incident.id, "timer_fired", f"Deadline for “{title}” passed: paging "
                                                    f"{core.role_label(timer.target)}", data=base)
        pages.open_page(core, session, incident, timer.target,
                        f"“{title}” is overdue ({timer.spec.get('after')} after {timer.spec.get('from')})", None,
                        step_id=timer.step_id)
        request_refresh(session, incident)
    elif timer.kind == "status":
        leads = role_holders(session, incident.id).get("incident_lead", [])
        append(session, incident.id, "timer_fired", "Status update due", data=base)
        to_incident_channel(session, incident, core.render.text(
            "slack/status_due.txt.j2", ref=ref(incident.id), leads=leads, every=timer.spec.get("every")),
            event={"kind": "reminder_sent", "text": "Asked for a status update",
                   "data": {"timer": timer.id, "users": leads}})
        # Keep the cadence (next = this one's due time + every), unless that is already past
        # (the bot was down): then one reminder now and the next a full interval later.
        every = core.config.status_updates.get(incident.severity)
        now = utcnow()
        arm_status_update(core, session, incident,
                          timer.due_at if every is not None and timer.due_at + every > now else now)


def _first_of_step(session, timer: Timer) -> bool:
    """Whether this timer is the step's earliest clock, i.e. the step only now becomes overdue
    on the checklist (which shows each step's earliest due time): later reminders of a step
    already overdue change nothing there, and need no chat.update (a rate-limited method)."""
    if timer.step_id is None:
        return True
    earliest = session.info.get("firing", {}).get("earliest", {}).get((timer.incident_id, timer.step_id))
    if earliest is not None:
        return timer.due_at <= earliest
    earlier = session.scalar(select(Timer.id).where(
        Timer.incident_id == timer.incident_id, Timer.step_id == timer.step_id, Timer.id != timer.id,
        Timer.kind.in_(("remind", "page")), Timer.state.in_(("pending", "fired")), Timer.due_at < timer.due_at,
    ).limit(1))
    return earlier is None


def _config_users(core: Core, role: str) -> list[str]:
    cfg = core.config.roles.get(role)
    return list(cfg.users[:1]) if cfg else []




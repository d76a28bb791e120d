"""Firing due timers: claim a batch, act on it, commit, in one short transaction.

A pass fires the due timers in batches of BATCH, each a few statements however large: one
UPDATE … RETURNING claims the earliest due pending timers whose rows and incident rows no other
transaction holds (PostgreSQL: `FOR UPDATE OF timers, incidents SKIP LOCKED`, so replicas take
disjoint batches side by side and a claim never waits, hence never deadlocks against people's
commands, which take the incident lock first; SQLite's BEGIN IMMEDIATE already serialises
writers); three queries read what acting needs for the whole batch, one the timeline heads
of its incidents; the timeline events and tasks are inserted together (multi-row INSERTs at the
commit) and the checklist refreshes in one INSERT … ON CONFLICT. Claim and effects commit
together: of several processes that see the same due timer exactly one fires it, and a crash
before the commit leaves it pending. No Slack call happens here (the outbox does them later).
If acting on one timer fails, the batch is rolled back and fired one timer per transaction,
so a bad timer is retried on its own (with backoff) and never holds up the others.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from ..core import Core
from ..db.models import Incident, RoleAssignment, Timer
from ..incidents import ref
from ..incidents.checklist import request_batched_refreshes, request_refresh
from ..incidents.views import role_holders
from ..metrics import TIMER_LATENESS
from ..paging import service as pages
from ..timeline.store import append, bulk_heads
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
    fired, batches = 0, 0
    while True:
        claimed: list[tuple[int, int]] = []
        try:
            with core.db.tx() as session:
                timers = _claim(core, session, now, held=held)
                claimed = [(timer.id, timer.incident_id) for timer in timers]
                _act_all(core, session, timers)
            for timer_id, _ in claimed:
                failing.pop(timer_id, None)
            count = len(claimed)
        except Exception:
            if not claimed:
                raise
            log.warning("a batch of %s timers failed; firing them one by one", len(claimed), exc_info=True)
            count = _fire_one_by_one(core, now, claimed)
        fired += count
        batches += 1
        if len(claimed) < BATCH or count == 0 or batches >= BATCHES_PER_PASS:
            break  # (a full pass hands over to the outbox; the wake-up below comes back at once)
    following = next_due(core)
    at = utcnow()
    if following is not None and following <= at and (len(claimed) < BATCH or count == 0):
        # Still due but not taken: another replica or a command holds them (or they wait for a
        # retry): look again shortly instead of at once.
        following = at + BUSY_RETRY
    core.wake(following)
    return fired


def _claim(core: Core, session, now: datetime, *, held=(), only: int | None = None) -> list[Timer]:
    """Claim a batch in one statement: the earliest due pending timers whose rows and incident
    rows no other transaction holds (PostgreSQL: `FOR UPDATE OF timers, incidents SKIP LOCKED`
    in the sub-select, so replicas take disjoint batches and a claim never waits, hence never
    deadlocks against people's commands; SQLite's BEGIN IMMEDIATE already serialises writers),
    set to fired with RETURNING. The incidents stay locked until the batch commits."""
    pick = (select(Timer.id).join(Incident, Incident.id == Timer.incident_id)
            .where(Timer.state == "pending", Timer.due_at <= now))
    if only is not None:
        pick = pick.where(Timer.id == only)
    elif held:
        pick = pick.where(Timer.id.not_in(held))
    pick = pick.order_by(Timer.due_at).limit(BATCH).with_for_update(skip_locked=True, of=(Timer, Incident))
    at = utcnow()
    timers = sorted(session.scalars(
        update(Timer).where(Timer.id.in_(pick)).values(state="fired", fired_at=at, fired_by=core.dispatcher.node)
        .returning(Timer), execution_options={"synchronize_session": False}).all(),
        key=lambda timer: (timer.due_at, timer.id))
    session.info.setdefault("locked_incidents", set()).update(timer.incident_id for timer in timers)
    for timer in timers:
        basis = str((timer.spec or {}).get("basis") or "").strip().lower()
        core.metrics.observe(TIMER_LATENESS, (at - timer.due_at).total_seconds(), kind=timer.kind,
                             clock="legal" if basis.startswith("law") else "internal" if basis else "none")
    return timers


def _act_all(core: Core, session, timers: list[Timer]) -> None:
    """Act on a claimed batch with a few statements: what acting reads is loaded for the whole
    batch, the timeline events and tasks are added without a flush each (inserted together at
    the commit, one multi-row INSERT per table) and the checklist refreshes are written in one
    statement at the end."""
    if not timers:
        return
    incident_ids = {timer.incident_id for timer in timers}
    _preload(session, incident_ids)
    session.info["bulk"] = {"heads": bulk_heads(session, incident_ids), "refresh": {}}
    try:
        for timer in timers:
            _act(core, session, timer)
        request_batched_refreshes(session)
    finally:
        session.info.pop("bulk", None)


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


def _fire_one_by_one(core: Core, now: datetime, claimed: list[tuple[int, int]]) -> int:
    fired = 0
    for timer_id, incident_id in claimed:
        try:
            with core.db.tx() as session:
                timers = _claim(core, session, now, only=timer_id)
                _act_all(core, session, timers)
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




"""Reading an incident out of the database into the review's plain data (for every export)."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clocks.arming import first_completion
from ..clocks.now import utcnow
from ..core import Core
from ..db.models import Incident, Page, Participant, RoleAssignment, StepState, TimelineEvent, Timer
from ..errors import NotFound
from ..hours import role_hours
from ..incidents import ref
from .review import DeadlineView, EventView, IncidentReview, PageView, ResponderView, StepView


def load_events(session: Session, incident_id: int) -> list[EventView]:
    rows = session.execute(
        select(TimelineEvent.seq, TimelineEvent.at, TimelineEvent.kind, TimelineEvent.actor, TimelineEvent.text,
               TimelineEvent.data, TimelineEvent.prev_hash, TimelineEvent.hash)
        .where(TimelineEvent.incident_id == incident_id).order_by(TimelineEvent.seq)
    ).all()
    return [EventView(seq=r.seq, at=r.at, kind=r.kind, actor=r.actor, text=r.text, data=r.data,
                      prev_hash=r.prev_hash, hash=r.hash) for r in rows]


def build_review(core: Core, incident_id: int) -> IncidentReview:
    with core.db.read() as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"There is no incident {ref(incident_id)}.")
        playbook = core.playbooks.get(incident.playbook_id)
        states = {s.step_id: s for s in session.scalars(select(StepState).where(StepState.incident_id == incident_id))}
        holders: dict[str, list[str]] = {}
        for row in session.scalars(select(RoleAssignment).where(RoleAssignment.incident_id == incident_id)):
            holders.setdefault(row.role, []).append(row.user_id)
        roles_of: dict[str, list[str]] = {}
        for role, users in holders.items():
            for user in users:
                roles_of.setdefault(user, []).append(core.role_label(role))
        people = list(session.scalars(select(Participant.user_id).where(Participant.incident_id == incident_id)))
        responders = [ResponderView(user_id=u, display=_display(core, u), roles=roles_of.get(u, []))
                      for u in dict.fromkeys(people + list(roles_of))]
        events = load_events(session, incident_id)
        named = {r.user_id for r in responders}
        others = {}
        for event in events:  # actors and message authors who are not responders (any more)
            for user in (event.actor, event.data.get("author"), event.data.get("user")):
                if isinstance(user, str) and user[:1] in "UW" and user not in named and user not in others:
                    others[user] = _display(core, user)
        steps_def = playbook.steps if playbook else []
        steps = []
        for step in steps_def:
            s = states.get(step.id)
            steps.append(StepView(
                id=step.id, title=step.title, owner_role=step.owner, owner_users=holders.get(step.owner, []),
                state=s.state if s else "waiting", done_by=s.done_by if s else None,
                done_at=s.done_at if s else None, skipped_reason=s.skipped_reason if s else None,
                values={k: str(v) for k, v in (s.values or {}).items()} if s else {},
            ))
        titles = {step.id: step.title for step in steps_def}
        # One row per playbook clock: an Undo re-arms a reopened step's clocks as new rows (with
        # their first due times); the latest row of each clock says where it stands.
        clocks: dict[tuple, Timer] = {}
        for timer in session.scalars(select(Timer).where(
                Timer.incident_id == incident_id, Timer.kind.in_(("remind", "page"))).order_by(Timer.id)):
            index = timer.spec.get("index")
            clocks[(timer.step_id, index, timer.kind, timer.target) if index is not None else (timer.id,)] = timer
        first_done = {step.id: first_completion(session, incident_id, step.id, done_only=True) for step in steps_def}
        deadlines = []
        for timer in clocks.values():
            s = states.get(timer.step_id)
            # Met when the step was first done (clocks count from first completions, see arming).
            met = first_done.get(timer.step_id) if s is not None and s.state == "done" else None
            if met is not None:
                state = "met" if met <= timer.due_at else "missed"
            elif timer.state == "fired":
                state = "fired"
            else:
                state = timer.state if timer.state in ("pending", "cancelled") else "pending"
            label = ("remind owner" if timer.target == "owner" else f"remind {timer.target}") \
                if timer.kind == "remind" else f"page {timer.target}"
            deadlines.append(DeadlineView(
                step_id=timer.step_id or "", step_title=titles.get(timer.step_id, timer.step_id or ""),
                label=label, basis=str(timer.spec.get("basis", "")), clock_from=str(timer.spec.get("from", "declared")),
                started_at=timer.armed_at, due_at=timer.due_at, met_at=met, state=state,
            ))
        pages = [PageView(id=p.id, role=core.role_label(p.role), level=p.level, reason=p.reason, sent_at=p.created_at,
                          acked_at=p.acked_at, acked_by=p.acked_by, escalated=p.level > 1)
                 for p in session.scalars(select(Page).where(Page.incident_id == incident_id).order_by(Page.id))]
        first = states.get(steps_def[0].id) if steps_def else None
        events = load_events(session, incident_id)
        review = IncidentReview(
            ref=ref(incident.id), number=incident.id, title=incident.title, summary=incident.title,
            playbook_id=incident.playbook_id, playbook_title=playbook.title if playbook else incident.playbook_id,
            severity=incident.severity, status=incident.status, declared_at=incident.declared_at,
            declared_by=incident.declared_by,
            # T0: the first confirmation, however often it was undone and redone since.
            confirmed_at=first_done.get(first.step_id) if first is not None and first.state == "done" else None,
            resolved_at=incident.resolved_at, closed_at=incident.closed_at, resolution=incident.resolution,
            channel_id=incident.channel_id, channel_name=incident.channel_name, responders=responders,
            people=others, role_labels={role: core.role_label(role) for role in
                                        set(core.config.roles) | set(playbook.roles if playbook else [])},
            steps=steps, deadlines=deadlines, pages=pages, events=events, generated_at=utcnow(),
        )
    # After the read: the time zones may need Slack, which should not hold a database connection.
    return replace(review, responder_hours=_role_hours(core, events, roles_of))


def _role_hours(core: Core, events: list[EventView], roles_of: dict[str, list[str]]):
    from ..wellbeing import tz_of  # (lazily: wellbeing reaches into the incident domain)

    zones: dict[str, object] = {}

    def zone_of(user: str):
        if user not in zones:
            zones[user] = tz_of(core, user)
        return zones[user]

    return role_hours(((e.actor, e.at) for e in events), roles_of, zone_of)


def _display(core: Core, user: str) -> str:
    """The config's name for `user`, else Slack's (display name, real name; the gateway caches
    users.info), else the id. The CLI has no Slack: config names or ids there."""
    person = core.config.people.get(user)
    if person is not None and person.name:
        return person.name
    if core.gateway is not None and user[:1] in "UW" and len(user) <= 20:
        try:
            info = core.gateway.user(user) or {}
        except Exception:  # noqa: BLE001 (Slack unreachable: the id will do)
            info = {}
        profile = info.get("profile") or {}
        for name in (profile.get("display_name"), info.get("real_name"), profile.get("real_name"), info.get("name")):
            if isinstance(name, str) and name.strip():
                return name.strip()[:80]
    return user

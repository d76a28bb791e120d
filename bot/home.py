"""The Home tab: what one person has on their plate — their open incidents with their steps and
the next deadline of each, the pages waiting for their acknowledgement, a Declare button, and
(for the person alone: no one else ever sees their Home tab) their exposure today.

Published when they open the tab (`app_home_opened`), and again, through the outbox, when
something on it changes: a page to them, an ack, a step done in one of their incidents. Requests
for the same person fold into one publish (the dedup key) a moment later."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .clocks.now import utcnow
from .clocks.outbox import enqueue
from .core import Core
from .db.models import Page, Participant, RoleAssignment, StepState, Task, Timer
from .errors import SlackError
from .incidents import ref
from .incidents.queries import list_open

DEBOUNCE = timedelta(seconds=1)  # changes within this fold into one views.publish
MAX_INCIDENTS, MAX_STEPS, MAX_PAGES = 15, 5, 10  # a Home tab holds at most 100 blocks


@dataclass(frozen=True)
class HomeStep:
    id: str
    title: str
    due_at: datetime | None  # the step's earliest clock still running or run out (as the checklist shows it)
    overdue: bool = False


@dataclass(frozen=True)
class HomeIncident:
    number: int
    ref: str
    title: str | None  # None: a restricted incident they may not see the summary of
    severity: str
    playbook_title: str
    channel_id: str | None
    steps: list[HomeStep] = field(default_factory=list)


@dataclass(frozen=True)
class HomePage:
    id: int
    ref: str
    role_label: str
    level: int
    created_at: datetime


@dataclass(frozen=True)
class HomeView:
    user: str
    incidents: list[HomeIncident]
    more_incidents: int
    pages: list[HomePage]
    exposure: Any | None  # wellbeing.WellbeingView, for viewers only
    generated_at: datetime


def my_roles(core: Core, session: Session, incident_id: int, user: str) -> set[str]:
    """Roles `user` holds in the incident: assigned, invited for, or configured in (as the policy reads them)."""
    roles = set(session.scalars(select(RoleAssignment.role).where(
        RoleAssignment.incident_id == incident_id, RoleAssignment.user_id == user)))
    reason = session.scalar(select(Participant.reason).where(
        Participant.incident_id == incident_id, Participant.user_id == user, Participant.left_at.is_(None)))
    if reason is not None:
        if reason.startswith("role:"):
            roles.add(reason[5:])
        roles.update(name for name, role in core.config.roles.items() if user in role.users)
    return roles


def home_view(core: Core, user: str, now: datetime | None = None) -> HomeView:
    now = now or utcnow()
    with core.db.read() as session:
        mine = set(session.scalars(select(Participant.incident_id).where(
            Participant.user_id == user, Participant.left_at.is_(None))))
        mine |= set(session.scalars(select(RoleAssignment.incident_id).where(RoleAssignment.user_id == user)))
    listed = list_open(core, user, only=mine)  # the policy decides what is shown
    shown = listed[-MAX_INCIDENTS:][::-1]  # the newest first
    incidents = []
    with core.db.read() as session:
        for item in shown:
            steps: list[HomeStep] = []
            playbook_id = core.playbook_id_of(item.number)
            playbook = core.playbooks.get(playbook_id)
            if item.title is not None and playbook is not None:
                roles = my_roles(core, session, item.number, user)
                due = dict(session.execute(
                    select(Timer.step_id, func.min(Timer.due_at)).where(
                        Timer.incident_id == item.number, Timer.state.in_(("pending", "fired")),
                        Timer.kind.in_(("remind", "page")), Timer.step_id.is_not(None))
                    .group_by(Timer.step_id)).all())
                active = set(session.scalars(select(StepState.step_id).where(
                    StepState.incident_id == item.number, StepState.state == "active")))
                steps = [HomeStep(s.id, s.title, due.get(s.id), due.get(s.id) is not None and due[s.id] <= now)
                         for s in playbook.steps
                         if s.id in active and s.owner in roles][:MAX_STEPS]
            incidents.append(HomeIncident(item.number, item.ref, item.title, item.severity, item.playbook_title,
                                          item.channel_id, steps))
        pages = [HomePage(p.id, ref(p.incident_id), core.role_label(p.role), p.level, p.created_at)
                 for p in session.scalars(select(Page).where(Page.state == "open").order_by(Page.id))
                 if user in (p.notified or [])][:MAX_PAGES]
    return HomeView(user=user, incidents=incidents, more_incidents=max(len(listed) - len(shown), 0), pages=pages,
                    exposure=_exposure(core, user), generated_at=now)


def _exposure(core: Core, user: str):
    """Their own viewing today, for people in a viewing role (or who logged some)."""
    from . import wellbeing

    viewer = any(user in core.config.roles[r].users for r in core.config.wellbeing.viewers if r in core.config.roles)
    view = wellbeing.my_wellbeing(core, user)
    return view if viewer or view.figures.today else None


def render_home(core: Core, view: HomeView) -> dict[str, Any]:
    return core.render.blocks("slack/home.json.j2", home=view)


def publish(core: Core, user: str) -> None:
    """Publish `user`'s Home tab now (SlackError when Slack refuses)."""
    core.gateway.publish_home(user, render_home(core, home_view(core, user)))


def opened(core: Core, user: str) -> None:
    """`user` opened the Home tab: publish it, and keep it current from now on."""
    if len(core.home_seen) > 100_000:
        core.home_seen.clear()
    core.home_seen.add(user)
    publish(core, user)


def request_home(core: Core, session: Session, users: list[str] | set[str]) -> None:
    """Ask for these people's Home tabs to be published again, a moment from now (folded per
    person), for those who opened it since this process started."""
    when = utcnow() + DEBOUNCE
    for user in sorted(set(u for u in users if u in core.home_seen)):
        enqueue(session, "publish_home", {"user": user}, not_before=when, dedup_key=f"home:{user}")


def request_home_for_incident(core: Core, incident_id: int) -> None:
    """Everyone in the incident who keeps a Home tab: their steps, deadlines or pages may have changed."""
    if not core.home_seen:
        return
    with core.db.tx() as session:
        request_home(core, session, set(session.scalars(select(Participant.user_id).where(
            Participant.incident_id == incident_id, Participant.left_at.is_(None)))))


def publish_task(core: Core, task: Task) -> None:
    from .clocks.dispatcher import GiveUp, Retry

    try:
        publish(core, task.payload["user"])
    except SlackError as err:
        if err.code in ("user_not_found", "invalid_arguments", "account_inactive", "not_enabled", "invalid_auth"):
            raise GiveUp(str(err)) from None
        raise Retry(str(err)) from None


def register_tasks(core: Core) -> None:
    core.dispatcher.register("publish_home", lambda t: publish_task(core, t), max_attempts=10)

"""Pages: who is paged, on which backends, escalation when nobody acknowledges, and the ack.

A page is a row; each delivery (one backend, one level, and for Slack one person) is an outbox
task retried with backoff. A backend that still fails after its retries hands the page to
Slack and the channel is told. Escalation is a timer row like any other clock.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from bot.errors import SlackError

from ..clocks.arming import add_timer, cancel_timers
from ..clocks.dispatcher import GiveUp, Retry
from ..clocks.now import utcnow
from ..clocks.outbox import URGENT, enqueue, to_incident_channel
from ..core import Core
from ..db.models import Incident, Page, Task, Timer
from ..durations import format_duration
from ..errors import InvalidInput
from ..home import request_home
from ..incidents import ref
from ..incidents.checklist import request_refresh
from ..incidents.views import role_holders
from ..metrics import PAGE_ACK, PAGES
from ..outcomes import Outcome
from ..policy import mutation
from ..render import mrkdwn_escape
from ..suggest import no_such
from ..timeline.store import append, lock_incident
from . import messages
from .base import DeliveryError, PageNotice
from .retry import backoff

log = logging.getLogger(__name__)
DEFAULT_ACK_WITHIN = timedelta(minutes=15)
RESOLVABLE = ("pagerduty", "webhook")
# Slack refuses these for what the message is, every time it is sent again.
REFUSED_AS_MADE = {"invalid_blocks", "msg_too_long", "msg_blocks_too_long", "no_text"}  # pagers that can take a page back (an e-mail cannot be unsent)


class Level:
    def __init__(self, notify: list[str], ack_within: timedelta, users: list[str]) -> None:
        self.notify, self.ack_within, self.users = notify, ack_within, users


def levels(core: Core, role: str) -> list[Level]:
    """The role's escalation policy; a role without one gets one Slack level."""
    cfg = core.config.roles.get(role)
    role_users = list(cfg.users) if cfg else []
    if cfg is None or not cfg.escalation:
        return [Level(["slack"], DEFAULT_ACK_WITHIN, role_users)]
    return [Level(list(lv.notify), lv.ack_within, list(lv.users or role_users)) for lv in cfg.escalation]


def _page_targets(session, incident: Incident, role: str, level: Level, number: int) -> list[str]:
    # Level 1 also reaches whoever holds the role in this incident.
    holders = role_holders(session, incident.id).get(role, []) if number == 1 else []
    return list(dict.fromkeys(holders + list(level.users)))


def open_page(core: Core, session, incident: Incident, role: str, reason: str, requested_by: str | None,
              step_id: str | None = None) -> Page:
    """`step_id`: a deadline page, withdrawn when that step is done or skipped."""
    now = utcnow()
    page = Page(incident_id=incident.id, role=role, reason=reason, requested_by=requested_by, level=1,
                state="open", created_at=now, notified=[], step_id=step_id)
    session.add(page)
    session.flush()
    text = f"Paging {core.role_label(role)}" + (f": {reason}" if reason else f" by hand (<@{requested_by}>)")
    append(session, incident.id, "page_opened", text, actor=requested_by,
           data={"page": page.id, "role": role, "reason": reason})
    _notify_level(core, session, incident, page, 1)
    return page


def _notify_level(core: Core, session, incident: Incident, page: Page, number: int) -> None:
    policy = levels(core, page.role)
    level = policy[number - 1]
    users = _page_targets(session, incident, page.role, level, number)
    page.level, page.level_sent_at = number, utcnow()
    page.notified = list(dict.fromkeys(list(page.notified or []) + users))
    request_home(core, session, users)  # the page waits on their Home tab, with its Acknowledge button
    page.levels = [*(page.levels or []), {"level": number, "users": users, "at": page.level_sent_at.isoformat(),
                                          "ack_within": format_duration(level.ack_within)}]
    for backend in level.notify:
        if backend == "slack":
            for user in users:
                enqueue(session, "page_notify", {"page": page.id, "level": number, "backend": "slack", "user": user},
                        incident_id=incident.id)
            if incident.channel_id:  # one post per level, kept current in place (messages.py)
                enqueue(session, "page_post", {"page": page.id, "level": number}, incident_id=incident.id)
            else:  # no channel yet: a plain post, sent once the channel is there
                session.flush()
                to_incident_channel(session, incident, messages.render_channel_post(core, session, page, number),
                                    priority=URGENT)
        else:
            enqueue(session, "page_notify", {"page": page.id, "level": number, "backend": backend, "users": users},
                    incident_id=incident.id)
    add_timer(core, session, incident, kind="escalate", due=utcnow() + level.ack_within, page_id=page.id,
              target=page.role, spec={"level": number, "ack_within": format_duration(level.ack_within)},
              text=f"Page #{page.id} level {number}: escalate if nobody acknowledges within "
                   f"{format_duration(level.ack_within)}")


def escalate(core: Core, session, timer: Timer) -> None:
    page = session.get(Page, timer.page_id)
    incident = session.get(Incident, timer.incident_id)
    if page is None or page.state != "open":
        return
    policy = levels(core, page.role)
    if page.level < len(policy):
        append(session, incident.id, "page_escalated",
               f"Nobody acknowledged the page for {core.role_label(page.role)}: escalating to level {page.level + 1}",
               data={"page": page.id, "from_level": page.level, "to_level": page.level + 1})
        _notify_level(core, session, incident, page, page.level + 1)
        messages.request_sync(session, page)  # the earlier levels' messages say it escalated
        return
    page.state = "unanswered"
    append(session, incident.id, "page_unanswered",
           f"Nobody acknowledged the page for {core.role_label(page.role)} after {len(policy)} level(s)",
           data={"page": page.id, "levels": len(policy)})
    messages.request_sync(session, page)
    leads = list(dict.fromkeys(role_holders(session, incident.id).get("incident_lead", []) + list(core.config.leads)))
    to_incident_channel(session, incident, core.render.text(
        "slack/page_unanswered.txt.j2", page=page, label=core.role_label(page.role),
        leads=" ".join(f"<@{u}>" for u in leads), levels=len(policy)))
    request_refresh(session, incident)


@mutation("page")
def page_by_hand(core: Core, incident_id: int, actor: str, role: str, reason: str) -> Outcome:
    user = actor
    if not role:
        raise InvalidInput("Usage: `/incident page ROLE [REASON…]`.")
    with core.db.tx() as session:
        lock_incident(session, incident_id)
        incident = session.get(Incident, incident_id)
        if incident.status == "closed":
            raise InvalidInput(f"{ref(incident_id)} is closed.")
        known = sorted(set(core.config.roles) | set(core.playbook(incident.playbook_id).roles))
        if role not in known:
            raise InvalidInput(no_such("role", role, known))
        page = open_page(core, session, incident, role, reason, user)
        request_refresh(session, incident)
        page_id = page.id
    core.dispatcher.kick()
    return Outcome("paged", incident_id, {"page": page_id, "role": role, "label": core.role_label(role)})


@mutation("ack")
def acknowledge(core: Core, actor: str, *, page_id: int | None = None, incident_id: int | None = None) -> Outcome:
    """Only the people a page went to can acknowledge it (see below)."""
    user = actor
    with core.db.tx() as session:
        query = select(Page).where(Page.state == "open")
        if page_id is not None:
            query = query.where(Page.id == page_id)
        elif incident_id is not None:
            query = query.where(Page.incident_id == incident_id)
        # Only the people a page went to can acknowledge it: anyone else's ack (a lead's too)
        # would stop the escalation while the person who must act has not answered.
        pages = [p for p in session.scalars(query.order_by(Page.id)) if user in (p.notified or [])]
        if not pages:
            page = session.get(Page, page_id) if page_id is not None else None
            # Only someone the page went to learns what became of it (an outsider learns nothing,
            # not even whether page #N exists).
            if page is not None and user in (page.notified or []) and page.state in ("acked", "withdrawn"):
                return Outcome(f"page_already_{page.state}", page.incident_id, {"page": page_id, "by": page.acked_by})
            raise InvalidInput("No open page is addressed to you.")
        acked = []
        for page in pages:
            lock_incident(session, page.incident_id)
            # Read again under the lock: an escalation that committed meanwhile raised the level
            # (its PagerDuty incident must be resolved too), or the page is no longer open.
            session.refresh(page)
            if page.state != "open":
                continue
            acked.append(page)
            page.state, page.acked_at, page.acked_by = "acked", utcnow(), user
            incident = session.get(Incident, page.incident_id)
            took = page.acked_at - page.created_at
            append(session, incident.id, "page_acked",
                   f"<@{user}> acknowledged the page for {core.role_label(page.role)} (level {page.level})",
                   actor=user, data={"page": page.id, "level": page.level,
                                     "seconds_to_ack": int(took.total_seconds())})
            cancel_timers(session, incident.id, reason=f"page #{page.id} acknowledged", actor=user, kinds=("escalate",))
            _resolve_on_pagers(core, session, page)
            # The DMs and the channel posts say who acknowledged, when, after how long (in place).
            messages.request_sync(session, page)
            request_refresh(session, incident)
            request_home(core, session, page.notified or [])  # off everyone's Home tab it was on
        if not acked:
            raise InvalidInput("No open page is addressed to you.")
        pages_acked = [{"page": p.id, "incident": p.incident_id} for p in acked]
    for page in acked:  # once the acknowledgement is committed
        core.metrics.observe(PAGE_ACK, (page.acked_at - page.created_at).total_seconds(), role=page.role)
    core.dispatcher.kick()
    return Outcome("page_acked", pages_acked[0]["incident"], {"pages": pages_acked})


def withdraw_pages(core: Core, session, incident_id: int, user: str, *, step_id: str | None = None,
                   why: str | None = None) -> int:
    """The incident is closed (or, with `step_id`, the step whose deadline paged is done or
    skipped): its pages still open or unanswered stop ringing anywhere.

    At close their escalation timers are cancelled with the incident's other clocks (for a step,
    here); each page is marked withdrawn, its messages say why, and it is resolved on
    PagerDuty / the webhook, so nobody is woken for it."""
    why = why or f"{ref(incident_id)} was closed"
    query = select(Page).where(Page.incident_id == incident_id, Page.state.in_(("open", "unanswered")))
    if step_id is not None:
        query = query.where(Page.step_id == step_id)
    withdrawn = 0
    for page in session.scalars(query.order_by(Page.id)):
        was, page.state, page.withdrawn_why = page.state, "withdrawn", why
        append(session, incident_id, "page_withdrawn",
               f"Page #{page.id} for {core.role_label(page.role)} withdrawn: {why}",
               actor=user, data={"page": page.id, "level": page.level, "was": was, "why": why})
        if step_id is not None:
            for timer in session.scalars(select(Timer).where(Timer.page_id == page.id, Timer.state == "pending")):
                timer.state = "cancelled"
                append(session, incident_id, "timer_cancelled", f"Clock cancelled: page #{page.id} withdrawn",
                       actor=user, data={"timer": timer.id, "kind": timer.kind, "step": None,
                                         "reason": f"page #{page.id} withdrawn"})
        _resolve_on_pagers(core, session, page)
        messages.request_sync(session, page)
        withdrawn += 1
    return withdrawn


def _resolve_on_pagers(core: Core, session, page: Page) -> None:
    """Take the page back on every pager of its levels so far that can (PagerDuty, webhook)."""
    for backend in _backends_used(core, page):
        enqueue(session, "page_resolve", {"page": page.id, "backend": backend}, incident_id=page.incident_id)


def _backends_used(core: Core, page: Page) -> list[str]:
    used: list[str] = []
    for level in levels(core, page.role)[: page.level]:
        # Only backends with something to resolve (an e-mail cannot be unsent).
        used += [b for b in level.notify if b in RESOLVABLE and b not in used]
    return used


# -- delivery tasks ----------------------------------------------------------------------

def notice(core: Core, session, page: Page, level: int, users: list[str]) -> PageNotice:
    incident = session.get(Incident, page.incident_id)
    emails = [p.email for u in users if (p := core.config.people.get(u)) and p.email]
    link = f"https://slack.com/app_redirect?channel={incident.channel_id}" if incident.channel_id else None
    return PageNotice(
        page_id=page.id, incident_ref=ref(incident.id), incident_title=incident.title,
        playbook_title=core.playbook(incident.playbook_id).title, severity=incident.severity,
        role=page.role, role_label=core.role_label(page.role), level=level,
        # A page by hand carries the responder's words only inside Slack (`said`).
        reason=page.reason if page.requested_by is None else "paged by hand by a responder; see the incident channel",
        said=page.reason if page.requested_by is not None else "",
        channel_id=incident.channel_id, channel_link=link, users=users, emails=emails,
    )


def notify_task(core: Core, task: Task) -> bool:
    p = task.payload
    with core.db.read() as session:
        page = session.get(Page, p["page"])
        # Acknowledged or withdrawn meanwhile: nothing to send. A page that went unanswered
        # (its delivery was held up past the last level) is still owed to the people it names.
        if page is None or page.state in ("acked", "withdrawn"):
            return False
        users = [p["user"]] if "user" in p else p["users"]
        note = notice(core, session, page, p["level"], users)
    how = "posted"
    if p["backend"] == "slack":
        how = _send_slack_dm(core, task, note, p["user"])
    else:
        backend = core.backends.get(p["backend"])
        if backend is None:
            raise GiveUp(f"pager {p['backend']} is not configured")
        try:
            backend.send(note)
        except DeliveryError as err:
            if not err.transient:
                raise GiveUp(str(err)) from None
            delay = backoff(task.attempts, core.config.delivery.first_retry)
            if err.retry_after:
                delay = max(delay, timedelta(seconds=err.retry_after))
            raise Retry(str(err), delay) from None
    with core.db.tx() as session:
        lock_incident(session, task.incident_id)
        who = f"<@{p['user']}>" if p["backend"] == "slack" else f"{len(users)} recipient(s)"
        if how == "exists":  # the person already had this page's DM: it now shows this level
            who += " (the DM already sent was updated)"
        elif how == "later":  # an earlier level's DM is still on its way; it will show this level
            who += " (in the DM an earlier level is still sending)"
        append(session, task.incident_id, "page_sent",
               f"Paged {note.role_label} (level {note.level}) via {p['backend']}: {who}",
               data={"page": note.page_id, "level": note.level, "backend": p["backend"], "users": users})
        page = session.get(Page, p["page"])
        if page.state in ("acked", "withdrawn") and p["backend"] in RESOLVABLE:
            # Acknowledged or withdrawn while this trigger was on its way: its resolve may have
            # arrived first, so resolve again now that the trigger is in.
            enqueue(session, "page_resolve", {"page": page.id, "backend": p["backend"]}, incident_id=page.incident_id)
    return True


def _counted_notify(core: Core, task: Task) -> None:
    """A delivery, counted per backend and outcome (sent, retry, failed, or moot: acknowledged meanwhile)."""
    backend = str(task.payload.get("backend", "unknown"))
    try:
        sent = notify_task(core, task)
    except GiveUp:
        core.metrics.inc(PAGES, backend=backend, outcome="failed")
        raise
    except Exception:
        core.metrics.inc(PAGES, backend=backend, outcome="retry")
        raise
    core.metrics.inc(PAGES, backend=backend, outcome="sent" if sent else "moot")


def _send_slack_dm(core: Core, task: Task, note: PageNotice, user: str) -> str:
    """One DM per page and person, whatever the level: a later level updates it in place
    (messages.deliver; the page and the person ride on the message as its metadata)."""
    from ..tasks import post_once

    try:
        try:
            return messages.deliver(core, task, note.page_id, messages.dm_key(user), note.level, user)
        except SlackError as err:
            if err.code not in REFUSED_AS_MADE:
                raise
            # Slack will refuse this message every time: a page must still get through, so send
            # the fixed minimum (who, which incident, the Acknowledge button) without the words.
            log.warning("page %s DM refused as made (%s); sending the minimal page", note.page_id, err.code)
            minimal = replace(note, said="", reason="see the incident channel", playbook_title="", channel_id=None)
            with core.db.read() as session:
                state = messages.page_state(core, session, session.get(Page, note.page_id))
            text = core.render.text("slack/page_dm.txt.j2", notice=minimal, st=state)
            key = messages.dm_key(user)
            ts = post_once(core, task, user, text,
                           core.render.blocks("slack/page_dm.json.j2", notice=minimal, text="", st=state),
                           identity={"page": note.page_id, "key": key})
            messages.record(core, task, note.page_id, key, user, ts, "minimal")
            return "posted"
    except SlackError as err:
        if err.code in ("user_not_found", "channel_not_found", "account_inactive", "user_disabled"):
            raise GiveUp(str(err)) from None
        raise Retry(str(err)) from None


def post_task(core: Core, task: Task) -> None:
    """The incident channel's post of one level of a page (kept current by page_sync)."""
    p = task.payload
    with core.db.read() as session:
        incident = session.get(Incident, task.incident_id)
        channel = incident.channel_id
    try:
        messages.deliver(core, task, p["page"], messages.channel_key(p["level"]), p["level"], channel)
    except SlackError as err:
        if err.code in ("channel_not_found", "is_archived", "not_in_channel") | REFUSED_AS_MADE:
            raise GiveUp(str(err)) from None
        raise Retry(str(err)) from None


def notify_dead(core: Core, task: Task, error: str) -> None:
    """A backend kept failing: page on Slack instead, and tell the channel."""
    p = task.payload
    with core.db.tx() as session:
        lock_incident(session, task.incident_id)
        page = session.get(Page, p["page"])
        incident = session.get(Incident, task.incident_id)
        append(session, incident.id, "page_failed",
               f"Could not page {core.role_label(page.role)} via {p['backend']}: {error.splitlines()[0][:300]}",
               data={"page": page.id, "backend": p["backend"], "level": p["level"]})
        if page.state != "open":
            return
        if p["backend"] == "slack":
            # The DM did not go through: say so where everyone sees it, naming the person.
            to_incident_channel(session, incident, f":warning: Could not send the page for "
                                f"{mrkdwn_escape(core.role_label(page.role))} to <@{p.get('user')}> by direct message. "
                                "Reach them another way; escalation continues.")
            return
        policy = levels(core, page.role)
        on_slack = p["level"] <= len(policy) and "slack" in policy[p["level"] - 1].notify
        if not on_slack:  # this level had no Slack DM: it is the fallback
            for user in p.get("users", []):
                enqueue(session, "page_notify", {"page": page.id, "level": p["level"], "backend": "slack",
                                                 "user": user}, incident_id=incident.id)
        how = "they were paged by Slack DM too" if on_slack else "paged on Slack instead"
        to_incident_channel(session, incident, f":warning: {p['backend']} did not accept the page for "
                            f"{mrkdwn_escape(core.role_label(page.role))} after {task.attempts} attempts; {how}. "
                            "Check the pager configuration.")


def resolve_task(core: Core, task: Task) -> None:
    p = task.payload
    backend = core.backends.get(p["backend"])
    if backend is None:
        return
    with core.db.read() as session:
        page = session.get(Page, p["page"])
        note = notice(core, session, page, page.level, list(page.notified or []))
    try:
        backend.resolve(note)
    except DeliveryError as err:
        if not err.transient:
            raise GiveUp(str(err)) from None
        raise Retry(str(err), backoff(task.attempts, core.config.delivery.first_retry)) from None
    with core.db.tx() as session:
        append(session, task.incident_id, "page_resolved", f"Resolved page #{page.id} on {p['backend']}",
               data={"page": page.id, "backend": p["backend"]})


def register_tasks(core: Core) -> None:
    attempts = core.config.delivery.max_attempts
    core.dispatcher.register("page_notify", lambda t: _counted_notify(core, t), max_attempts=attempts,
                             on_dead=lambda t, e: notify_dead(core, t, e))
    core.dispatcher.register("page_resolve", lambda t: resolve_task(core, t), max_attempts=attempts)
    core.dispatcher.register("page_post", lambda t: post_task(core, t), max_attempts=20)
    messages.register_tasks(core)

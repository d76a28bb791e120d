"""A page's Slack messages, kept current in place.

Each page has at most one DM per person (whatever the level: a level that pages someone again
updates their DM) and one post in the incident channel per level. Each is a `PageMessage` row:
claimed by the task that posts it, then holding the message's ts, so every later change of the
page (acknowledged, escalated, unanswered, withdrawn, the incident resolved) is a `page_sync`
outbox task that redraws them with chat.update. The rows are the durable record: a restarted
bot, or a second replica, finds the DM it already sent and never sends another.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.errors import SlackError

from ..clocks.dispatcher import Retry
from ..clocks.now import utcnow
from ..clocks.outbox import enqueue
from ..core import Core
from ..db.models import Incident, Page, PageMessage, Task
from ..incidents import ref
from ..timeline.store import lock_incident

log = logging.getLogger(__name__)

# chat.update cannot succeed again for these: the message (or its channel) is gone or closed.
GONE = {"message_not_found", "cant_update_message", "channel_not_found", "is_archived", "not_in_channel",
        "invalid_blocks", "msg_too_long", "msg_blocks_too_long", "no_text", "account_inactive"}


def dm_key(user: str) -> str:
    return f"dm:{user}"


def channel_key(level: int) -> str:
    return f"channel:{level}"


def request_sync(session, page: Page) -> None:
    """Redraw the page's messages (folded while one redraw is pending)."""
    enqueue(session, "page_sync", {"page": page.id}, incident_id=page.incident_id, dedup_key=f"page_sync:{page.id}")


def sync_incident_pages(session, incident_id: int) -> None:
    """The incident changed in a way its pages' messages show (resolved): redraw them all."""
    ids = set(session.scalars(select(PageMessage.page_id).where(PageMessage.incident_id == incident_id)))
    for page in session.scalars(select(Page).where(Page.id.in_(ids)).order_by(Page.id)):
        request_sync(session, page)


def took(seconds: float) -> str:
    """`252` → `4 min 12 s`: how long an acknowledgement took, for people."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def _levels(page: Page) -> list[dict[str, Any]]:
    levels = [dict(entry) for entry in page.levels or []]
    if not levels:  # a page from before levels were recorded: one level, everyone it reached
        levels = [{"level": page.level, "users": list(page.notified or []), "at": None, "ack_within": None}]
    return levels


def page_state(core: Core, session, page: Page) -> dict[str, Any]:
    """What every message of the page shows about its current state (no content: role, level,
    people and times)."""
    incident = session.get(Incident, page.incident_id)
    levels = _levels(page)
    for entry in levels:
        entry["at_dt"] = datetime.fromisoformat(entry["at"]) if entry.get("at") else None
    return {
        "page": page, "state": page.state, "level": page.level, "levels": levels,
        "label": core.role_label(page.role), "ref": ref(page.incident_id),
        "acked_by": page.acked_by, "acked_at": page.acked_at,
        "took": took((page.acked_at - page.created_at).total_seconds()) if page.acked_at else None,
        "incident_status": incident.status, "resolved_at": incident.resolved_at, "closed_at": incident.closed_at,
        "channel_id": incident.channel_id,
    }


def render_dm(core: Core, session, page: Page, user: str, level: int | None = None) -> tuple[str, list[dict]]:
    from .service import notice

    note = notice(core, session, page, level or page.level, [user])
    state = page_state(core, session, page)
    text = core.render.text("slack/page_dm.txt.j2", notice=note, st=state)
    return text, core.render.blocks("slack/page_dm.json.j2", notice=note, text=text, st=state)


def render_channel_post(core: Core, session, page: Page, level: int) -> str:
    state = page_state(core, session, page)
    entry = next((e for e in state["levels"] if e["level"] == level), {"users": [], "level": level})
    before = next((e for e in state["levels"] if e["level"] == level - 1), None)
    mentions = " ".join(f"<@{u}>" for u in entry["users"]) or core.role_label(page.role)
    return core.render.text("slack/page_channel.txt.j2", page=page, label=state["label"], mentions=mentions,
                            level=level, before=before, st=state)


def _render(core: Core, session, page: Page, row: PageMessage) -> tuple[str, list[dict] | None]:
    if row.key.startswith("dm:"):
        return render_dm(core, session, page, row.key[3:])
    return render_channel_post(core, session, page, row.level), None


def _shown(text: str, blocks: list[dict] | None) -> str:
    return hashlib.sha256(json.dumps([text, blocks], sort_keys=True).encode()).hexdigest()


def claim(core: Core, task: Task, page_id: int, key: str, level: int, channel: str) -> str:
    """Whether this task posts the message: `post` (it is ours), `takeover` (a task that died
    claimed it; it may have posted), `exists` (posted already: redraw it instead) or `later`
    (another live task is posting it; it redraws once posted)."""
    with core.db.tx() as session:
        lock_incident(session, task.incident_id)
        row = session.scalar(select(PageMessage).where(PageMessage.page_id == page_id, PageMessage.key == key))
        if row is None:
            session.add(PageMessage(page_id=page_id, incident_id=task.incident_id, key=key, level=level,
                                    task_id=task.id, channel=channel))
            return "post"
        if row.ts is not None:
            request_sync(session, session.get(Page, page_id))
            return "exists"
        if row.task_id == task.id:
            return "post"
        other = session.get(Task, row.task_id) if row.task_id is not None else None
        if other is not None and other.state in ("pending", "running"):
            return "later"
        row.task_id = task.id
        return "takeover"


def record(core: Core, task: Task, page_id: int, key: str, channel: str, ts: str, shown: str) -> None:
    """The message is in Slack: keep its ts. If the page changed while it was on its way, redraw."""
    with core.db.tx() as session:
        lock_incident(session, task.incident_id)
        row = session.scalar(select(PageMessage).where(PageMessage.page_id == page_id, PageMessage.key == key))
        row.ts, row.channel, row.posted_at, row.shown = ts, channel, utcnow(), shown
        page = session.get(Page, page_id)
        if _shown(*_render(core, session, page, row)) != shown:
            request_sync(session, page)


def deliver(core: Core, task: Task, page_id: int, key: str, level: int, channel: str) -> str:
    """Post one page message once (see `claim`); returns what happened."""
    from ..tasks import post_once

    how = claim(core, task, page_id, key, level, channel)
    if how in ("exists", "later"):
        return how
    with core.db.read() as session:
        page = session.get(Page, page_id)
        row = session.scalar(select(PageMessage).where(PageMessage.page_id == page_id, PageMessage.key == key))
        text, blocks = _render(core, session, page, row)
    ts = post_once(core, task, channel, text, blocks, identity={"page": page_id, "key": key},
                   look_first=how == "takeover")
    record(core, task, page_id, key, channel, ts, _shown(text, blocks))
    return "posted"


def sync_task(core: Core, task: Task) -> None:
    """Redraw every posted message of the page that shows something else than the page now."""
    page_id = task.payload["page"]
    with core.db.read() as session:
        page = session.get(Page, page_id)
        rows = list(session.scalars(select(PageMessage).where(PageMessage.page_id == page_id,
                                                              PageMessage.ts.is_not(None)).order_by(PageMessage.id)))
        drawn = [(row.id, row.channel, row.ts, *_render(core, session, page, row)) for row in rows
                 if page is not None]
        shown = {row.id: row.shown for row in rows}
    failed: str | None = None
    for row_id, channel, ts, text, blocks in drawn:
        digest = _shown(text, blocks)
        if shown[row_id] == digest:
            continue
        try:
            where = core.gateway.open_dm(channel) if channel.startswith(("U", "W")) else channel
            core.gateway.update(where, ts, text, blocks)
        except SlackError as err:
            if err.code not in GONE:
                failed = str(err)
                continue
            log.info("page %s: message %s can no longer be updated (%s)", page_id, row_id, err.code)
        with core.db.tx() as session:
            row = session.get(PageMessage, row_id)
            row.shown = digest
    if failed:
        raise Retry(failed, timedelta(seconds=2))


def register_tasks(core: Core) -> None:
    core.dispatcher.register("page_sync", lambda t: sync_task(core, t), max_attempts=20)

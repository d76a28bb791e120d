"""The Slack side of a declaration, after the ack: channel, topic, invitations, checklist, pin.

Each effect is recorded in the database as soon as Slack confirms it, so a retry after a
Slack error or a crash resumes at the first effect not yet recorded and never repeats one.
"""

from __future__ import annotations

import logging
from datetime import UTC

from sqlalchemy import select

from bot.errors import SlackError

from ..clocks.dispatcher import Retry
from ..clocks.now import utcnow
from ..clocks.outbox import enqueue
from ..core import Core
from ..db.models import Incident, Participant, Task
from ..timeline.store import append
from . import ref
from .checklist import render_checklist
from .views import load_view

log = logging.getLogger(__name__)

CHECKLIST_EVENT = "safeguard_checklist"
# Slack errors that retrying cannot fix for one user: invite the others and record it.
USER_ERRORS = {"user_not_found", "user_is_bot", "user_is_restricted", "user_is_ultra_restricted",
               "user_disabled", "cant_invite", "ura_max_channels", "not_allowed_token_type"}


def provision_task(core: Core, task: Task) -> None:
    incident_id = task.payload["incident"]
    try:
        # The checklist goes up right after the channel: it is what responders need first,
        # and invited people see it when they arrive.
        _ensure_channel(core, incident_id)
        _ensure_checklist(core, incident_id, retrying=task.attempts > 1)
        _ensure_topic(core, incident_id)
        _ensure_invited(core, incident_id)
        _finish(core, incident_id, task.payload.get("response_url"))
    except SlackError as err:
        raise Retry(str(err)) from None


def declared_ready_task(core: Core, task: Task) -> None:
    """Tell the declarer their channel is open, linked, with an Open button: replacing the
    command's confirmation through its response_url when there is one, else ephemerally where
    they declared (or by DM). An ephemeral message cannot be looked up, so after a crash between
    posting and recording the declarer may see it twice; never a channel message."""
    p = task.payload
    with core.db.read() as session:
        incident = session.get(Incident, p["incident"])
        playbook = core.playbooks.get(incident.playbook_id)
        context = {"ref": ref(incident.id), "playbook_title": playbook.title if playbook else incident.playbook_id,
                   "severity": incident.severity, "channel_id": incident.channel_id}
    if not context["channel_id"] or incident.status == "closed":
        return
    text = core.render.text("slack/declared_ready.txt.j2", **context).strip()
    blocks = core.render.blocks("slack/declared_ready.json.j2", text=text,
                                url=core.gateway.channel_url(context["channel_id"]))
    if p.get("response_url") and task.attempts <= 2:
        try:
            core.gateway.respond(p["response_url"], text, blocks)
            return
        except SlackError:
            pass  # expired or used up: say it the other way
    core.gateway.tell(p.get("channel"), p["user"], text, blocks)


def _load(core: Core, incident_id: int) -> Incident:
    with core.db.read() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        return incident


def _ensure_channel(core: Core, incident_id: int) -> None:
    incident = _load(core, incident_id)
    if incident.channel_id:
        return
    name = incident.channel_name or f"inc-{incident.id}-{incident.playbook_id}"
    channel = None
    for attempt in range(1, 6):
        candidate = name if attempt == 1 else f"{name[:76]}-{attempt}"
        try:
            channel = core.gateway.create_channel(candidate, private=incident.private)
            break
        except SlackError as err:
            if err.code != "name_taken":
                raise
            # Ours from an attempt that crashed (or lost Slack's answer) before recording it?
            # Adopt it; else take a new name.
            existing = core.gateway.find_channel(candidate)
            if existing and _made_for(core, existing, incident):
                channel = existing
                break
    if channel is None:
        raise Retry(f"no free channel name for {name}")
    with core.db.tx() as session:
        incident = session.get(Incident, incident_id)
        incident.channel_id, incident.channel_name = channel["id"], channel["name"]
        append(session, incident_id, "channel_created",
               f"Created {'private' if channel.get('is_private', incident.private) else 'public'} channel #{channel['name']}",
               data={"channel_id": channel["id"], "channel_name": channel["name"],
                     "private": bool(channel.get("is_private", incident.private))})


def _made_for(core: Core, channel: dict, incident: Incident) -> bool:
    """Whether `channel` is this incident's: the bot created it, after the declaration (with a
    minute for clock skew). An older one (another incident's, from a database that was reset,
    or a second bot on the same workspace) is never taken over."""
    declared = incident.declared_at if incident.declared_at.tzinfo else incident.declared_at.replace(tzinfo=UTC)
    return (channel.get("creator") == core.gateway.bot_user_id() and not channel.get("is_archived")
            and int(channel.get("created") or 0) >= declared.timestamp() - 60)


def _ensure_topic(core: Core, incident_id: int) -> None:
    incident = _load(core, incident_id)
    if incident.topic_set:
        return
    set_topic(core, incident)


def topic_task(core: Core, task: Task) -> None:
    """The topic again, after a change it shows (severity, resolved); none before the channel."""
    incident = _load(core, task.payload["incident"])
    if incident.channel_id and incident.topic_set and not incident.archived:
        set_topic(core, incident)


def set_topic(core: Core, incident: Incident) -> None:
    incident_id = incident.id
    playbook = core.playbook(incident.playbook_id)
    topic = core.render.text("slack/topic.txt.j2", ref=ref(incident.id), playbook=playbook, incident=incident)
    core.gateway.set_topic(incident.channel_id, topic)
    with core.db.tx() as session:
        incident = session.get(Incident, incident_id)
        incident.topic_set = True
        append(session, incident_id, "topic_set", f"Channel topic: {topic}", data={"topic": topic})


def bookmarks_for(core: Core, incident: Incident) -> list[tuple[str, str, str]]:
    """(title, link, emoji) of the channel's bookmarks: the review page (a timeline link is
    personal and lasts an hour, so the bookmark opens a page that says how to get one:
    `/incident timeline html`) and the playbook's page."""
    from ..timeline.service import public_base

    base = public_base(core)
    playbook = core.playbooks.get(incident.playbook_id)
    marks = [(f"{ref(incident.id)} review", f"{base}/incidents/{incident.id}", ":scroll:")]
    if playbook is not None:
        marks.append((f"Playbook: {playbook.title}"[:100], f"{base}/playbooks/{playbook.id}", ":books:"))
    return marks


def bookmarks_task(core: Core, task: Task) -> None:
    """Each bookmark once: those the channel already has (an earlier attempt's) are not added again.
    A task of its own after provisioning: bookmarks.add is a slow tier, and nothing waits on it."""
    incident_id = task.payload["incident"]
    incident = _load(core, incident_id)
    if incident.channel_id is None or incident.archived:
        return
    try:
        have = {b.get("title") for b in core.gateway.bookmarks(incident.channel_id)}
        for title, link, emoji in bookmarks_for(core, incident):
            if title not in have:
                core.gateway.add_bookmark(incident.channel_id, title, link, emoji)
    except SlackError as err:
        if err.code not in ("invalid_link", "missing_scope", "not_allowed", "invalid_title"):
            raise
        log.warning("INC-%s: could not bookmark the review and playbook pages (%s)", incident_id, err.code)


def _ensure_invited(core: Core, incident_id: int) -> None:
    incident = _load(core, incident_id)
    _expand_usergroups(core, incident)
    with core.db.read() as session:
        pending = list(session.scalars(
            select(Participant.user_id).where(Participant.incident_id == incident_id,
                                              Participant.invited_at.is_(None)).order_by(Participant.id)
        ))
    bot = core.gateway.bot_user_id()
    pending = [u for u in pending if u != bot]
    if not pending:
        return
    failed: dict[str, str] = {}
    try:
        core.gateway.invite(incident.channel_id, pending)
    except SlackError as err:
        if err.code not in USER_ERRORS:
            raise
        for user in pending:  # find who cannot be invited; invite the others
            try:
                core.gateway.invite(incident.channel_id, [user])
            except SlackError as one:
                if one.code not in USER_ERRORS:
                    raise
                failed[user] = one.code
    now = utcnow()
    with core.db.tx() as session:
        for participant in session.scalars(
            select(Participant).where(Participant.incident_id == incident_id, Participant.user_id.in_(pending))
        ):
            participant.invited_at = now
            if participant.user_id in failed:
                append(session, incident_id, "invite_failed",
                       f"Could not invite <@{participant.user_id}>: {failed[participant.user_id]}",
                       data={"user": participant.user_id, "error": failed[participant.user_id]})
            else:
                append(session, incident_id, "member_invited", f"Invited <@{participant.user_id}>",
                       data={"user": participant.user_id, "reason": participant.reason})


def _expand_usergroups(core: Core, incident: Incident) -> None:
    """Members of the roles' Slack user groups join the role's configured users."""
    playbook = core.playbook(incident.playbook_id)
    extra: dict[str, str] = {}
    for role in playbook.roles:
        role_cfg = core.config.roles.get(role)
        if role_cfg and role_cfg.usergroup:
            try:
                for user in core.gateway.usergroup_members(role_cfg.usergroup):
                    extra.setdefault(user, f"role:{role}")
            except SlackError as err:
                if err.code != "no_such_subteam":
                    raise
                log.warning("user group %s of role %s does not exist", role_cfg.usergroup, role)
    if not extra:
        return
    with core.db.tx() as session:
        known = set(session.scalars(select(Participant.user_id).where(Participant.incident_id == incident.id)))
        for user, reason in extra.items():
            if user not in known:
                session.add(Participant(incident_id=incident.id, user_id=user, reason=reason, added_at=utcnow()))


def _ensure_checklist(core: Core, incident_id: int, *, retrying: bool) -> None:
    incident = _load(core, incident_id)
    if incident.checklist_ts is None:
        ts = (retrying and _find_posted_checklist(core, incident)) or _post_checklist(core, incident_id)
        with core.db.tx() as session:
            incident = session.get(Incident, incident_id)
            incident.checklist_ts = ts
            append(session, incident_id, "checklist_posted", "Posted the playbook checklist",
                   data={"channel_id": incident.channel_id, "ts": ts})
    if not incident.checklist_pinned:
        core.gateway.pin(incident.channel_id, incident.checklist_ts)
        with core.db.tx() as session:
            incident = session.get(Incident, incident_id)
            incident.checklist_pinned = True
            append(session, incident_id, "checklist_pinned", "Pinned the checklist",
                   data={"ts": incident.checklist_ts})


def _post_checklist(core: Core, incident_id: int) -> str:
    with core.db.tx() as session:
        incident = session.get(Incident, incident_id)
        incident.checklist_rendered_at = utcnow()
        view = load_view(core, session, incident)
    text, blocks = render_checklist(core, view)
    metadata = {"event_type": CHECKLIST_EVENT, "event_payload": {"incident": incident_id}}
    # Not retried blindly: after a lost answer the task's retry looks for it by its metadata.
    return core.gateway.post(view.channel_id, text, blocks, metadata=metadata, once=True)


def _find_posted_checklist(core: Core, incident: Incident) -> str | None:
    """A checklist posted by an attempt that crashed before recording it (found by metadata)."""
    bot = core.gateway.bot_user_id()
    for message in core.gateway.history(incident.channel_id, limit=50):
        meta = message.get("metadata") or {}
        if (message.get("user") == bot and meta.get("event_type") == CHECKLIST_EVENT
                and (meta.get("event_payload") or {}).get("incident") == incident.id):
            return message["ts"]
    return None


def _finish(core: Core, incident_id: int, response_url: str | None = None) -> None:
    with core.db.tx() as session:
        incident = session.get(Incident, incident_id)
        if incident.provisioned_at is None:
            incident.provisioned_at = utcnow()
            declarer = session.scalars(select(Participant).where(
                Participant.incident_id == incident_id, Participant.user_id == incident.declared_by,
                Participant.left_at.is_(None))).first()
            if declarer is not None:  # the confirmation again, now with the channel linked
                enqueue(session, "declared_ready", {"incident": incident_id, "user": incident.declared_by,
                                                    "channel": incident.declared_in, "response_url": response_url},
                        incident_id=incident_id, dedup_key=f"declared_ready:{incident_id}")
            enqueue(session, "bookmarks", {"incident": incident_id}, incident_id=incident_id,
                    dedup_key=f"bookmarks:{incident_id}")

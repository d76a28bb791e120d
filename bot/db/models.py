"""The database models. The database is the only truth: incidents, timers, pages and the
work still to do in Slack are rows, so a restart or a second replica loses nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .types import UTCDateTime


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # the number in INC-7
    playbook_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | resolved | closed
    private: Mapped[bool] = mapped_column(default=True)
    declared_at: Mapped[datetime]
    declared_by: Mapped[str] = mapped_column(String(32))
    declared_in: Mapped[str | None] = mapped_column(String(32))
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None]
    # Slack side effects, recorded one by one so a retry resumes where a failure stopped.
    channel_name: Mapped[str | None] = mapped_column(String(80))
    channel_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    topic_set: Mapped[bool] = mapped_column(default=False)
    checklist_ts: Mapped[str | None] = mapped_column(String(32))
    checklist_pinned: Mapped[bool] = mapped_column(default=False)
    checklist_rendered_at: Mapped[datetime | None]
    archived: Mapped[bool] = mapped_column(default=False)
    provisioned_at: Mapped[datetime | None]
    external_id: Mapped[str | None] = mapped_column(String(128), index=True)  # the API caller's own id


class Participant(Base):
    """Someone who belongs in the incident channel (and whether the bot has invited them)."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("incident_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    user_id: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(64))  # declarer | role:<name> | joined
    added_at: Mapped[datetime]
    invited_at: Mapped[datetime | None]  # set once Slack confirmed the invitation or membership
    left_at: Mapped[datetime | None]  # left or was removed from the channel (access ends)


class RoleAssignment(Base):
    __tablename__ = "role_assignments"
    __table_args__ = (UniqueConstraint("incident_id", "role", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    role: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(32))
    assigned_at: Mapped[datetime]
    assigned_by: Mapped[str | None] = mapped_column(String(32))


class StepState(Base):
    __tablename__ = "step_states"
    __table_args__ = (UniqueConstraint("incident_id", "step_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    step_id: Mapped[str] = mapped_column(String(64))
    position: Mapped[int]
    state: Mapped[str] = mapped_column(String(16))  # waiting | active | done | skipped
    done_by: Mapped[str | None] = mapped_column(String(32))
    done_at: Mapped[datetime | None]
    skipped_reason: Mapped[str | None] = mapped_column(Text)
    values: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Timer(Base):
    __tablename__ = "timers"
    __table_args__ = (Index("ix_timers_due", "state", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    step_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # remind | page | status | escalate
    target: Mapped[str | None] = mapped_column(String(64))  # role name, or "owner"
    page_id: Mapped[int | None] = mapped_column(ForeignKey("pages.id"))
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | fired | cancelled
    armed_at: Mapped[datetime]
    fired_at: Mapped[datetime | None]
    fired_by: Mapped[str | None] = mapped_column(String(64))


class Page(Base):
    __tablename__ = "pages"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    role: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str | None] = mapped_column(String(32))
    level: Mapped[int] = mapped_column(default=1)
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | acked | unanswered | withdrawn
    created_at: Mapped[datetime]
    level_sent_at: Mapped[datetime | None]
    notified: Mapped[list[Any]] = mapped_column(default=list)  # every user paged so far
    acked_at: Mapped[datetime | None]
    acked_by: Mapped[str | None] = mapped_column(String(32))
    # Who each level tried and when: [{"level", "users", "at", "ack_within"}] (the messages say it).
    levels: Mapped[list[Any] | None] = mapped_column(JSON, default=list)
    step_id: Mapped[str | None] = mapped_column(String(64))  # a deadline page: the step that was overdue
    withdrawn_why: Mapped[str | None] = mapped_column(Text)  # "INC-7 was closed", "“…” was done"


class PageMessage(Base):
    """A Slack message of a page, kept current in place (chat.update) as the page changes.

    `key` is `dm:<user>` (one DM per person per page, whatever the level) or `channel:<level>`
    (the incident channel's post of each level). A row is claimed (ts still empty) by the task
    that posts it, so a second task for the same person updates that DM instead of posting."""

    __tablename__ = "page_messages"
    __table_args__ = (UniqueConstraint("page_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id"), index=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    key: Mapped[str] = mapped_column(String(48))
    level: Mapped[int]  # the level it was first posted for
    task_id: Mapped[int | None]  # the task posting it (a claim, until `ts` is set)
    channel: Mapped[str | None] = mapped_column(String(32))  # as posted to: a channel or a user id
    ts: Mapped[str | None] = mapped_column(String(32))
    posted_at: Mapped[datetime | None]
    shown: Mapped[str | None] = mapped_column(String(64))  # hash of what Slack shows now


class Task(Base):
    """Work for Slack or a pager, done after the transaction that asked for it (an outbox).

    A task is claimed with one conditional UPDATE and a lease, retried with backoff, and taken
    over by another worker when its lease runs out (the worker died)."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_due", "state", "not_before"),
                      Index("ix_tasks_claim", "state", "priority", "not_before"))

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    # 0 pages and legal clocks, 1 other messages and channel set-up, 2 checklist redraws, topics,
    # exports: claimed in that order (see clocks/outbox.py).
    priority: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Unique while pending: folds repeated requests (ten clicks → one checklist refresh).
    dedup_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | running | done | dead
    attempts: Mapped[int] = mapped_column(default=0)
    not_before: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    owner: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]


class TimelineEvent(Base):
    """Append-only. Never updated or deleted; a correction is a new event."""

    __tablename__ = "timeline_events"
    # The actor index serves responder hours (bot/hours.py): a person's events over a period.
    __table_args__ = (UniqueConstraint("incident_id", "seq"), Index("ix_timeline_actor_at", "actor", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    seq: Mapped[int]
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class SlackEventSeen(Base):
    """Events API deliveries already handled, so Slack's retries change nothing."""

    __tablename__ = "slack_events_seen"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime]


class Exposure(Base):
    """The private exposure ledger: how long someone viewed content, and of which kind. Personal
    data: read only by the person and the stewards, never shown in a channel, an export or
    /metrics, and deleted after `wellbeing.retention`. The custody fact (who viewed content for
    which incident, when, how many items) is on the incident's timeline instead."""

    __tablename__ = "exposure_ledger"
    __table_args__ = (Index("ix_exposure_user_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    seconds: Mapped[int]  # how long the viewing lasted; it ended at `at`
    kind: Mapped[str | None] = mapped_column(String(16))  # image | video | audio | text
    items: Mapped[int | None]
    at: Mapped[datetime] = mapped_column(index=True)


class WellbeingBreak(Base):
    """A break someone took (`/incident break`): no viewing assignments until `ends_at`."""

    __tablename__ = "wellbeing_breaks"
    __table_args__ = (Index("ix_breaks_user_ends", "user_id", "ends_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime]


class WellbeingNudge(Base):
    """A private nudge already sent (break due, 80 % / 100 % of the daily limit, the lead's
    notice), so each goes out once. Deleted with the ledger after `wellbeing.retention`."""

    __tablename__ = "wellbeing_nudges"
    __table_args__ = (UniqueConstraint("user_id", "kind", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # break | daily80 | daily100 | lead
    key: Mapped[str] = mapped_column(String(64))  # the local day, the streak, the incident
    sent_at: Mapped[datetime] = mapped_column(index=True)


class ApiToken(Base):
    """A token of the HTTP API. Only the SHA-256 of the token is kept; the token itself is shown
    once, by `safeguard token create`. A revoked token stops working at once (every request
    reads this row)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(28), unique=True)  # the actor is `api:NAME` (32 chars)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class IdempotencyKey(Base):
    """The first answer to an `Idempotency-Key` of a token, replayed for 24 hours. `status` is
    None while the first request is still being answered."""

    __tablename__ = "api_idempotency"
    __table_args__ = (UniqueConstraint("token", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(28))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None]
    body: Mapped[dict[str, Any] | None] = mapped_column(JSON())
    created_at: Mapped[datetime] = mapped_column(index=True)


class Evidence(Base):
    """An evidence reference (hashes, content id, source; never content) added to an incident by
    the API: with its declaration, or later as a sighting (a match of a hash the incident holds)."""

    __tablename__ = "evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    hashes: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"sha256": "…", "pdq": "…"}
    content_id: Mapped[str | None] = mapped_column(String(256))
    source: Mapped[str | None] = mapped_column(String(128))
    sighting: Mapped[bool] = mapped_column(default=False)  # False: came with the declaration
    added_by: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    summarised_at: Mapped[datetime | None]  # a sighting told in the channel's summary message


class EvidenceHash(Base):
    """Which incident holds a hash, per playbook: the primary key makes two declarations of the
    same new hash race for one row, so exactly one incident is opened and the other merges. A row
    whose incident is closed is stale and is replaced by the next declaration of that hash."""

    __tablename__ = "evidence_hashes"

    playbook_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hash: Mapped[str] = mapped_column(String(600), primary_key=True)  # `sha256:…` (kind:value)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)

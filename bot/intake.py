"""Intake from detection pipelines: a declaration that carries evidence references (hashes,
content ids; never content) opens an incident, or adds a sighting to the open incident of the
same playbook that holds one of its hashes.

Two declarations of the same new hash can arrive at once (a viral image matched by several
workers). Each claims its hashes in `evidence_hashes` (primary key playbook + hash) before
anything else, in sorted order: the database lets one insert win and makes the other wait for
it, so exactly one incident is opened and the other declaration merges into it. A claim whose
incident has been closed is stale: it is dropped and the hash opens a new incident.

Sightings are told in the incident's channel at most once a minute, in one summary message (an
outbox task folded by its dedup key), never a message per match."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from .clocks.dispatcher import Retry
from .clocks.now import utcnow
from .clocks.outbox import enqueue
from .core import Core
from .db.models import Evidence, EvidenceHash, Incident, Task
from .errors import InvalidInput
from .incidents import ref
from .incidents.declare import validate, write_incident
from .policy import mutation
from .timeline.store import append

HASH_KINDS = ("md5", "sha1", "sha256", "pdq", "photodna")
SUMMARY_GAP = timedelta(minutes=1)  # at most one sightings message per incident per minute
MAX_EVIDENCE = 50  # items in one declaration
_ATTEMPTS = 5


@dataclass(frozen=True)
class EvidenceItem:
    hashes: dict[str, str]  # kind → value (hex lowercased; PhotoDNA as given)
    content_id: str | None = None
    source: str | None = None

    def as_data(self) -> dict[str, Any]:
        return {"hashes": dict(self.hashes), **({"content_id": self.content_id} if self.content_id else {}),
                **({"source": self.source} if self.source else {})}


@dataclass(frozen=True)
class Intake:
    number: int
    ref: str
    status: str
    channel_id: str | None
    channel_name: str | None
    merged: bool
    sightings: int = 0  # sightings the incident holds (after this one)
    matched: list[str] = field(default_factory=list)  # the hashes it was merged on
    told: bool = False  # a new summary message was asked for (not folded into a pending one)


class _Raced(Exception):
    """A claimed hash's incident closed between the claim and the merge: start again."""


def hash_keys(items: list[EvidenceItem]) -> list[str]:
    return sorted({f"{kind}:{value}" for item in items for kind, value in item.hashes.items()})


@mutation("declare")
def declare_with_evidence(core: Core, *, playbook_id: str, summary: str, actor: str, severity: str | None = None,
                          external_id: str | None = None, evidence: list[EvidenceItem] | None = None) -> Intake:
    """Declare as `/incident declare` does (channel, invites, checklist, clocks), unless the
    evidence shares a hash with an open incident of the playbook: then add a sighting to it."""
    playbook, summary, severity = validate(core, playbook_id, summary, severity)
    items = list(evidence or [])
    if len(items) > MAX_EVIDENCE:
        raise InvalidInput(f"At most {MAX_EVIDENCE} evidence items at a time.", {"evidence": "too many"})
    keys = hash_keys(items)
    for attempt in range(_ATTEMPTS):
        try:
            with core.db.tx() as session:
                result = _declare_or_merge(core, session, playbook, summary, severity, actor, external_id,
                                           items, keys)
            break
        except _Raced:
            continue
        except DBAPIError as err:  # PostgreSQL: a deadlock or serialisation failure between claims
            if attempt == _ATTEMPTS - 1 or getattr(err.orig, "sqlstate", None) not in ("40P01", "40001"):
                raise
    else:  # pragma: no cover (a claim kept moving under us five times)
        raise InvalidInput("These hashes are being closed and reopened right now; try again.")
    if not result.merged or result.told:  # a sighting folded into a pending summary needs no look
        core.dispatcher.kick()
    return result


def _declare_or_merge(core: Core, session: Session, playbook, summary: str, severity: str, actor: str,
                      external_id: str | None, items: list[EvidenceItem], keys: list[str]) -> Intake:
    claimed: set[str] = set()
    if keys:
        claimed = _claim(session, playbook.id, keys)
        taken = [k for k in keys if k not in claimed]
        if taken:
            holders = session.execute(
                select(EvidenceHash.hash, EvidenceHash.incident_id, Incident.status)
                .join(Incident, Incident.id == EvidenceHash.incident_id)
                .where(EvidenceHash.playbook_id == playbook.id, EvidenceHash.hash.in_(taken))).all()
            open_ = sorted({row.incident_id for row in holders if row.status != "closed"})
            if open_:
                target = open_[0]
                _assign(session, playbook.id, claimed, target)
                matched = sorted(row.hash for row in holders if row.incident_id == target)
                return _merge(core, session, target, actor, external_id, items, matched)
            # Every holder is closed: those claims are stale. Drop them and claim the hashes anew
            # (another declaration may be doing the same: then it wins and this one merges).
            closed = select(Incident.id).where(Incident.status == "closed")
            session.execute(delete(EvidenceHash).where(
                EvidenceHash.playbook_id == playbook.id, EvidenceHash.hash.in_(taken),
                EvidenceHash.incident_id.in_(closed)))
            again = _claim(session, playbook.id, taken)
            if len(again) != len(taken):
                raise _Raced()
            claimed |= again
    incident, _ = write_incident(core, session, playbook, summary, severity, actor, external_id=external_id)
    _assign(session, playbook.id, claimed, incident.id)
    now = utcnow()
    for item in items:
        session.add(Evidence(incident_id=incident.id, hashes=item.hashes, content_id=item.content_id,
                             source=item.source, sighting=False, added_by=actor, at=now))
    if items:
        append(session, incident.id, "evidence_added",
               f"{len(items)} evidence reference{'s' if len(items) != 1 else ''} from the declaration",
               actor=actor, data={"evidence": [i.as_data() for i in items], "sighting": False})
    return Intake(incident.id, ref(incident.id), incident.status, incident.channel_id, incident.channel_name,
                  merged=False)


def _claim(session: Session, playbook_id: str, keys: list[str]) -> set[str]:
    """Insert the claims that nobody holds; returns those this transaction now holds. One
    statement, keys sorted: every declaration takes its claims in the same order, so two of
    them wait for each other (the second sees the first's claim once it commits) instead of
    deadlocking."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return set(session.scalars(
        insert(EvidenceHash).values([{"playbook_id": playbook_id, "hash": k, "incident_id": None} for k in keys])
        .on_conflict_do_nothing(index_elements=["playbook_id", "hash"]).returning(EvidenceHash.hash)))


def _assign(session: Session, playbook_id: str, keys: set[str], incident_id: int) -> None:
    if keys:
        session.execute(update(EvidenceHash).where(EvidenceHash.playbook_id == playbook_id,
                                                   EvidenceHash.hash.in_(sorted(keys)))
                        .values(incident_id=incident_id))


def _merge(core: Core, session: Session, incident_id: int, actor: str, external_id: str | None,
           items: list[EvidenceItem], matched: list[str]) -> Intake:
    # The incident's row lock, as every writer of an incident takes it (timeline.store), and the row.
    incident = session.scalars(select(Incident).where(Incident.id == incident_id).with_for_update()).one()
    session.info.setdefault("locked_incidents", set()).add(incident_id)
    now = utcnow()
    for item in items:
        session.add(Evidence(incident_id=incident_id, hashes=item.hashes, content_id=item.content_id,
                             source=item.source, sighting=True, added_by=actor, at=now))
    append(session, incident_id, "evidence_added",
           f"Sighting: a declaration matched {', '.join(matched[:3])}{' …' if len(matched) > 3 else ''}",
           actor=actor, data={"evidence": [i.as_data() for i in items], "sighting": True, "matched": matched,
                              **({"external_id": external_id} if external_id else {})})
    key = f"sightings:{incident_id}"
    told = False
    if session.scalar(select(Task.id).where(Task.dedup_key == key)) is None:  # else a pending one will tell
        last = session.scalar(select(func.max(Task.not_before)).where(Task.kind == "sightings",
                                                                      Task.incident_id == incident_id))
        when = now if last is None or now - last >= SUMMARY_GAP else last + SUMMARY_GAP
        told = enqueue(session, "sightings", {"incident": incident_id}, incident_id=incident_id, not_before=when,
                       dedup_key=key)
    session.flush()
    count = session.scalar(select(func.count(Evidence.id)).where(Evidence.incident_id == incident_id,
                                                                 Evidence.sighting.is_(True)))
    return Intake(incident_id, ref(incident_id), incident.status, incident.channel_id, incident.channel_name,
                  merged=True, sightings=count, matched=matched, told=told)


def sightings_task(core: Core, task: Task) -> None:
    """The channel's summary of the sightings not told yet (one message for all of them)."""
    from .tasks import _slack, post_once

    incident_id = task.payload["incident"]
    with core.db.read() as session:
        incident = session.get(Incident, incident_id)
        if incident is None or incident.status == "closed" or incident.archived:
            return
        if incident.channel_id is None:
            raise Retry("waiting for the incident channel", timedelta(seconds=2), counts=False)
        rows = list(session.scalars(select(Evidence).where(
            Evidence.incident_id == incident_id, Evidence.sighting.is_(True), Evidence.summarised_at.is_(None))
            .order_by(Evidence.id).limit(5000)))
        total = session.scalar(select(func.count(Evidence.id)).where(Evidence.incident_id == incident_id,
                                                                     Evidence.sighting.is_(True)))
        since = session.scalar(select(func.max(Evidence.summarised_at)).where(Evidence.incident_id == incident_id))
        channel = incident.channel_id
    if not rows:
        return
    # The gap counts from the last summary posted, not from when this one was due: a first
    # summary that waited for a late channel must not be followed by a second seconds later.
    if since is not None and (wait := SUMMARY_GAP - (utcnow() - since)) > timedelta(0):
        raise Retry("the last sightings summary was under a minute ago", wait, counts=False)
    counts: dict[str, int] = {}
    sources: dict[str, None] = {}
    for row in rows:
        for kind, value in row.hashes.items():
            key = f"{kind}:{value[:16]}…" if len(value) > 16 else f"{kind}:{value}"
            counts[key] = counts.get(key, 0) + 1
        if row.source:
            sources[row.source[:60]] = None
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    text = core.render.text("slack/sightings.txt.j2", count=len(rows), total=total, since=since,
                            hashes=ranked[:10], more=max(0, len(ranked) - 10), sources=list(sources)[:10],
                            ref=ref(incident_id))
    _slack(lambda: post_once(core, task, channel, text))
    with core.db.tx() as session:
        session.execute(update(Evidence).where(Evidence.id.in_([r.id for r in rows])).values(summarised_at=utcnow()))


def register_tasks(core: Core) -> None:
    core.dispatcher.register("sightings", lambda t: sightings_task(core, t), max_attempts=40,
                             max_retry=timedelta(seconds=30))

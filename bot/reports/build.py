"""Counting a period's incidents into a :class:`~.model.Report`, in a handful of set-wise
queries (no per-incident reads: 10,000 incidents take well under two seconds).

What counts (the README says the same for people):
- an incident belongs to the period it was declared in;
- T0 is the first completion of the playbook's first step (as in the incident's review);
- a report is a step with a report-id field (``report_id``, ``*_report_id``); it was filed when
  the step was first done (and it is still done);
- a clock is one playbook timer of an incident (its latest arming, as in the review): *on time*
  when its step was first done by the due time, *late* when after it, *missed* when it ran out
  with the step not done, *open* while it runs, *cancelled* when its step was skipped or the
  incident closed before it ran out. Shares are of the clocks with an outcome (on time + late +
  missed). A clock is legal when its ``basis`` starts with ``law``;
- preservation holds are every report whose year (2258A(h)) has not ended at the end of the
  period, whenever its incident was declared.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime

from sqlalchemy import DateTime, select, type_coerce

from ..clocks.now import utcnow
from ..core import Core
from ..db.models import Incident, Page, StepState, TimelineEvent, Timer
from ..durations import format_duration
from ..errors import Forbidden, InvalidInput
from ..metrics import FORBIDDEN
from ..timeline.review import is_report_field, preservation_end
from .model import (
    INTERNAL,
    LEGAL,
    ClockCounts,
    ClockRow,
    CountRow,
    Deadline,
    Filing,
    ForcedClose,
    Hold,
    PageRow,
    Report,
    SkipRow,
    Spread,
    TimingRow,
)
from .period import Period

# Who asks: a lead (Slack, the /reports page) or the operator at the console (`safeguard report`,
# who holds the database credentials and so sees everything anyway).
OPERATOR = "operator"


def may_read_reports(core: Core, viewer: str) -> bool:
    return viewer == OPERATOR or core.is_lead(viewer)


def check_reader(core: Core, viewer: str) -> None:
    if not may_read_reports(core, viewer):
        core.metrics.inc(FORBIDDEN, action="report")
        raise Forbidden("Only the incident leads can read reports across incidents. Nothing was shown.")


def report_steps(playbook) -> list[str]:
    return [step.id for step in playbook.steps if any(is_report_field(f.id) for f in step.fields)]


def _kind(basis: str) -> str:
    return LEGAL if str(basis or "").strip().lower().startswith("law") else INTERNAL


def _clock_name(kind: str, target: str | None, spec: dict) -> str:
    who = "owner" if target == "owner" else str(target)
    return f"{kind} {who} {spec.get('after', '?')} after {spec.get('from', 'declared')}"


def build_report(core: Core, viewer: str, period: Period, *, playbook: str | None = None,
                 now: datetime | None = None) -> Report:
    check_reader(core, viewer)
    if playbook is not None and playbook not in core.playbooks:
        raise InvalidInput(f"playbook: there is no playbook {playbook[:64]!r} (playbooks: "
                           f"{', '.join(sorted(core.playbooks))}).", {"playbook": "Unknown playbook."})
    now = now or utcnow()
    as_of = min(now, period.end)
    where = [Incident.declared_at >= period.start, Incident.declared_at < period.end]
    if playbook is not None:
        where.append(Incident.playbook_id == playbook)
    in_period = select(Incident.id).where(*where).scalar_subquery()
    # Times are read naive (UTC) where there are tens of thousands of them: making each aware was
    # a fifth of the time. Only differences and comparisons among them are taken.
    naive_as_of = as_of.astimezone(UTC).replace(tzinfo=None)

    with core.db.read() as session:
        conn = session.connection()  # Core rows: no ORM loading for 200,000 of them
        incidents = {row.id: row for row in conn.execute(
            select(Incident.id, Incident.playbook_id, Incident.severity, _naive(Incident.declared_at))
            .where(*where)).all()}
        # (JSON fields are read by the database: decoding every row's JSON in Python was most of the time.)
        first_done: dict[tuple[int, str], datetime] = {}
        for incident_id, at, step in conn.execute(
                select(TimelineEvent.incident_id, _naive(TimelineEvent.at), TimelineEvent.data["step"].as_string())
                .where(TimelineEvent.kind == "step_done", TimelineEvent.incident_id.in_(in_period))
                .order_by(TimelineEvent.incident_id, TimelineEvent.seq)).all():
            first_done.setdefault((incident_id, step), at)
        states = {(r.incident_id, r.step_id): r.state for r in conn.execute(
            select(StepState.incident_id, StepState.step_id, StepState.state)
            .where(StepState.incident_id.in_(in_period), StepState.state.in_(("done", "skipped")))).all()}
        # One clock per playbook timer: the latest arming of each (an Undo arms it again).
        clocks: dict[tuple, object] = {}
        for timer in conn.execute(
                select(Timer.id, Timer.incident_id, Timer.step_id, Timer.kind, Timer.target,
                       Timer.spec["index"].as_integer().label("index"), Timer.spec["basis"].as_string().label("basis"),
                       _naive(Timer.due_at), Timer.state)
                .where(Timer.kind.in_(("remind", "page")), Timer.step_id.is_not(None),
                       Timer.incident_id.in_(in_period)).order_by(Timer.id)).all():
            clocks[(timer[1], timer[2], timer[5], timer[3], timer[4])] = timer
        pages = list(conn.execute(select(Page.role, Page.level, Page.state, _naive(Page.created_at),
                                         _naive(Page.acked_at))
                                     .where(Page.incident_id.in_(in_period))))
        closes = list(conn.execute(select(TimelineEvent.incident_id, TimelineEvent.at, TimelineEvent.data)
                                      .where(TimelineEvent.kind == "closed", TimelineEvent.incident_id.in_(in_period))
                                      .order_by(TimelineEvent.incident_id, TimelineEvent.seq)))
        holds = _holds(core, session, playbook, as_of)

    counts = Counter((row.playbook_id, row.severity) for row in incidents.values())
    report_kwargs: dict = {
        "counts": [CountRow(pb, sev, n) for (pb, sev), n in sorted(counts.items())],
        "holds": holds,
    }

    # Declaration → T0 → each report.
    reporting = {pb: report_steps(book) for pb, book in core.playbooks.items()}
    to_t0: dict[str, list[float]] = defaultdict(list)
    to_report: dict[tuple[str, str], list[float]] = defaultdict(list)
    filings: list[Filing] = []
    for number, row in sorted(incidents.items()):
        book = core.playbooks.get(row.playbook_id)
        if book is None:
            continue
        first = book.steps[0].id
        t0 = first_done.get((number, first)) if states.get((number, first)) == "done" else None
        if t0 is None:
            continue
        to_t0[row.playbook_id].append((t0 - row.declared_at).total_seconds())
        for step in reporting[row.playbook_id]:
            filed = first_done.get((number, step)) if states.get((number, step)) == "done" else None
            if filed is not None:
                seconds = (filed - t0).total_seconds()
                to_report[(row.playbook_id, step)].append(seconds)
                filings.append(Filing(number, row.playbook_id, step, seconds))
    timings = [TimingRow(pb, "declared_to_t0", "", Spread.of(v)) for pb, v in sorted(to_t0.items())]
    timings += [TimingRow(pb, "t0_to_report", step, Spread.of(v)) for (pb, step), v in sorted(to_report.items())]

    # Clocks.
    tally: Counter = Counter()  # (clock, result) → how many
    clock_index: dict[tuple[str, str, str, str], int] = {}
    names: dict[tuple, tuple[str, str]] = {}  # a clock's name and kind, worked out once per kind of clock
    defined = {(pb, s.id, i): t for pb, book in core.playbooks.items() for s in book.steps
               for i, t in enumerate(s.timers)}
    for (number, step, index, kind, target), timer in clocks.items():
        _, _, _, _, _, _, basis, due_at, state = timer
        met = first_done.get((number, step)) if states.get((number, step)) == "done" else None
        if met is not None:
            result = "on_time" if met <= due_at else "late"
        elif state == "fired" or (state == "pending" and due_at <= naive_as_of):
            result = "missed"
        elif state == "cancelled":
            result = "cancelled"
        else:
            result = "open"
        pb = incidents[number].playbook_id
        shape = (pb, step, index, kind, target, basis)
        if shape not in names:  # named after the playbook's timer; legal or not as it was armed
            timer_def = defined.get((pb, step, index))
            spec = {"after": format_duration(timer_def.after), "from": timer_def.from_} if timer_def else {}
            names[shape] = (_clock_name(kind, target, spec), _kind(basis or ""))
        name, legal = names[shape]
        key = (pb, step, name, legal)
        tally[key, result] += 1
        if key not in clock_index:
            clock_index[key] = index if isinstance(index, int) else 99
    by_clock: dict[tuple[str, str, str, str], ClockCounts] = defaultdict(ClockCounts)
    totals = {LEGAL: ClockCounts(), INTERNAL: ClockCounts()}
    for (key, result), n in tally.items():
        for counts_of in (by_clock[key], totals[key[3]]):
            setattr(counts_of, result, getattr(counts_of, result) + n)
    order = {pb: {s.id: i for i, s in enumerate(book.steps)} for pb, book in core.playbooks.items()}
    report_kwargs["clocks"] = [
        ClockRow(pb, step, name, legal, c) for (pb, step, name, legal), c in
        sorted(by_clock.items(), key=lambda kv: (kv[0][0], order.get(kv[0][0], {}).get(kv[0][1], 99),
                                                clock_index[kv[0]], kv[0][2]))]

    # Deadlines of the reports, from the playbooks (clocks that start at T0), for the chart.
    deadlines = []
    for pb in sorted({f.playbook for f in filings}):
        book = core.playbooks[pb]
        for step_id in report_steps(book):
            for timer in book.step(step_id).timers:
                if timer.from_ == book.steps[0].id:
                    deadlines.append(Deadline(pb, step_id, _clock_name(timer.kind, timer.target,
                                              {"after": format_duration(timer.after), "from": timer.from_}),
                                              _kind(timer.basis), timer.after.total_seconds()))

    # Pages per role.
    per_role: dict[str, list] = defaultdict(list)
    for page in pages:
        per_role[page.role].append(page)
    page_rows = []
    for role, rows in sorted(per_role.items()):
        acked = [(p.acked_at - p.created_at).total_seconds() for p in rows if p.acked_at is not None]
        page_rows.append(PageRow(
            role=role, label=core.role_label(role), pages=len(rows), acked=len(acked),
            unanswered=sum(1 for p in rows if p.state == "unanswered"),
            escalated=sum(1 for p in rows if p.level > 1), escalations=sum(p.level - 1 for p in rows),
            time_to_ack=Spread.of(acked)))

    # Skipped steps: how many, and where (the reasons are responders' words: they stay in each
    # incident's own review, behind that incident's access check).
    skipped: dict[tuple[str, str], list[int]] = defaultdict(list)
    for (number, step), state in states.items():
        if state == "skipped" and number in incidents:
            skipped[(incidents[number].playbook_id, step)].append(number)
    skips = [SkipRow(pb, step, len(nums), tuple(sorted(nums))) for (pb, step), nums in
             sorted(skipped.items(), key=lambda kv: (kv[0][0], order.get(kv[0][0], {}).get(kv[0][1], 99)))]

    forced = [ForcedClose(number, incidents[number].playbook_id, at,
                          tuple(data.get("open_legal_steps") or ()))
              for number, at, data in closes if (data or {}).get("forced") and number in incidents]

    return Report(period=period, playbook=playbook, generated_at=now, incidents=len(incidents),
                  timings=timings, clock_totals=totals, deadlines=deadlines, pages=page_rows, skips=skips,
                  forced_closes=forced, filings=filings, **report_kwargs)


def _naive(column):
    """A UTC time column read as it is stored (naive), without the aware conversion."""
    return type_coerce(column, DateTime()).label(column.key)


def _holds(core: Core, session, playbook: str | None, as_of: datetime) -> list[Hold]:
    """Reports whose preservation year has not ended by `as_of`, from every incident."""
    steps = {(pb, s) for pb, book in core.playbooks.items() if playbook in (None, pb) for s in report_steps(book)}
    if not steps:
        return []
    query = (select(StepState.incident_id, StepState.step_id, StepState.done_at, StepState.values,
                    Incident.playbook_id)
             .join(Incident, Incident.id == StepState.incident_id)
             .where(StepState.state == "done", StepState.step_id.in_(sorted({s for _, s in steps}))))
    if playbook is not None:
        query = query.where(Incident.playbook_id == playbook)
    holds = []
    for row in session.execute(query.order_by(StepState.incident_id)):
        if (row.playbook_id, row.step_id) not in steps or row.done_at is None or row.done_at > as_of:
            continue
        if not any(is_report_field(k) and str(v).strip() for k, v in (row.values or {}).items()):
            continue
        ends = preservation_end(row.done_at)
        if ends > as_of:
            holds.append(Hold(row.incident_id, row.playbook_id, row.step_id, row.done_at, ends))
    return sorted(holds, key=lambda h: (h.ends_at, h.incident))

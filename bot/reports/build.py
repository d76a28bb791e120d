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

from collections import defaultdict
from datetime import datetime, timedelta
from itertools import groupby

from sqlalchemy import DateTime, and_, case, func, select, type_coerce

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
    # a fifth of the time. Only differences among them are taken.

    order = {pb: {s.id: i for i, s in enumerate(book.steps)} for pb, book in core.playbooks.items()}
    reporting = {pb: report_steps(book) for pb, book in core.playbooks.items()}
    firsts = {pb: book.steps[0].id for pb, book in core.playbooks.items() if book.steps}
    wanted = sorted(set(firsts.values()) | {s for steps in reporting.values() for s in steps})

    with core.db.read() as session:
        conn = session.connection()  # Core rows: no ORM loading
        counted = conn.execute(select(Incident.playbook_id, Incident.severity, func.count())
                               .where(*where).group_by(Incident.playbook_id, Incident.severity)).all()
        met = _met(in_period)
        # T0 and the reports: the first completion of each playbook's first step and report steps.
        timed = conn.execute(
            select(Incident.id, Incident.playbook_id, _naive(Incident.declared_at), met.c.step, met.c.at)
            .join(met, met.c.incident_id == Incident.id)
            .where(*where, met.c.step.in_(wanted)).order_by(Incident.id)).all()
        clock_counts = conn.execute(_clock_query(in_period, as_of)).all()
        page_counts = conn.execute(
            select(Page.role, func.count(), func.count(Page.acked_at),
                   func.sum(case((Page.state == "unanswered", 1), else_=0)),
                   func.sum(case((Page.level > 1, 1), else_=0)), func.sum(Page.level - 1))
            .where(Page.incident_id.in_(in_period)).group_by(Page.role)).all()
        acks = conn.execute(select(Page.role, _naive(Page.created_at), _naive(Page.acked_at))
                            .where(Page.incident_id.in_(in_period), Page.acked_at.is_not(None))).all()
        skipped_rows = conn.execute(
            select(Incident.playbook_id, StepState.step_id, StepState.incident_id)
            .join(Incident, Incident.id == StepState.incident_id)
            .where(*where, StepState.state == "skipped")).all()
        closes = conn.execute(
            select(TimelineEvent.incident_id, Incident.playbook_id, TimelineEvent.at, TimelineEvent.data)
            .join(Incident, Incident.id == TimelineEvent.incident_id)
            .where(*where, TimelineEvent.kind == "closed")
            .order_by(TimelineEvent.incident_id, TimelineEvent.seq)).all()
        holds = _holds(core, session, playbook, as_of)

    report_kwargs: dict = {
        "counts": [CountRow(pb, sev, n) for pb, sev, n in sorted(counted)],
        "holds": holds,
    }
    incidents = sum(n for _, _, n in counted)

    # Declaration → T0 → each report.
    to_t0: dict[str, list[float]] = defaultdict(list)
    to_report: dict[tuple[str, str], list[float]] = defaultdict(list)
    filings: list[Filing] = []
    for number, rows in groupby(timed, key=lambda row: row[0]):
        rows = list(rows)
        pb, declared_at = rows[0][1], rows[0][2]
        if pb not in core.playbooks:
            continue
        done_at = {step: at for _, _, _, step, at in rows}
        t0 = done_at.get(firsts.get(pb))
        if t0 is None:
            continue
        to_t0[pb].append((t0 - declared_at).total_seconds())
        for step in reporting[pb]:
            filed = done_at.get(step)
            if filed is not None:
                seconds = (filed - t0).total_seconds()
                to_report[(pb, step)].append(seconds)
                filings.append(Filing(number, pb, step, seconds))
    timings = [TimingRow(pb, "declared_to_t0", "", Spread.of(v)) for pb, v in sorted(to_t0.items())]
    timings += [TimingRow(pb, "t0_to_report", step, Spread.of(v)) for (pb, step), v in sorted(to_report.items())]

    # Clocks: counted by the database, named here after the playbook's timer.
    defined = {(pb, s.id, i): t for pb, book in core.playbooks.items() for s in book.steps
               for i, t in enumerate(s.timers)}
    by_clock: dict[tuple[str, str, str, str], ClockCounts] = defaultdict(ClockCounts)
    totals = {LEGAL: ClockCounts(), INTERNAL: ClockCounts()}
    clock_index: dict[tuple[str, str, str, str], int] = {}
    for pb, step, index, kind, target, basis, result, n in clock_counts:
        timer_def = defined.get((pb, step, index))
        spec = {"after": format_duration(timer_def.after), "from": timer_def.from_} if timer_def else {}
        key = (pb, step, _clock_name(kind, target, spec), _kind(basis or ""))
        for counts_of in (by_clock[key], totals[key[3]]):
            setattr(counts_of, result, getattr(counts_of, result) + n)
        index = index if isinstance(index, int) else 99
        clock_index[key] = min(clock_index.get(key, index), index)
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
    acked: dict[str, list[float]] = defaultdict(list)
    for role, created_at, acked_at in acks:
        acked[role].append((acked_at - created_at).total_seconds())
    page_rows = [PageRow(role=role, label=core.role_label(role), pages=n, acked=n_acked,
                         unanswered=int(unanswered or 0), escalated=int(escalated or 0),
                         escalations=int(escalations or 0), time_to_ack=Spread.of(acked[role]))
                 for role, n, n_acked, unanswered, escalated, escalations in sorted(page_counts)]

    # Skipped steps: how many, and where (the reasons are responders' words: they stay in each
    # incident's own review, behind that incident's access check).
    skipped: dict[tuple[str, str], list[int]] = defaultdict(list)
    for pb, step, number in skipped_rows:
        skipped[(pb, step)].append(number)
    skips = [SkipRow(pb, step, len(nums), tuple(sorted(nums))) for (pb, step), nums in
             sorted(skipped.items(), key=lambda kv: (kv[0][0], order.get(kv[0][0], {}).get(kv[0][1], 99)))]

    forced = [ForcedClose(number, pb, at, tuple(data.get("open_legal_steps") or ()))
              for number, pb, at, data in closes if (data or {}).get("forced")]

    return Report(period=period, playbook=playbook, generated_at=now, incidents=incidents,
                  timings=timings, clock_totals=totals, deadlines=deadlines, pages=page_rows, skips=skips,
                  forced_closes=forced, filings=filings, **report_kwargs)


def _met(in_period):
    """(incident, step, at): when each step of the period's incidents was first done, for the
    steps still done (as in the incident's review: an Undo keeps the first completion's time).
    Materialized: it is joined to tens of thousands of clocks (inlined, SQLite ran it per clock)."""
    step = TimelineEvent.data["step"].as_string()
    done = (select(TimelineEvent.incident_id, step.label("step"), TimelineEvent.at,
                   func.row_number().over(partition_by=(TimelineEvent.incident_id, step),
                                          order_by=TimelineEvent.seq).label("nth"))
            .where(TimelineEvent.kind == "step_done", TimelineEvent.incident_id.in_(in_period)).subquery())
    return (select(done.c.incident_id, done.c.step, _naive(done.c.at))
            .join(StepState, and_(StepState.incident_id == done.c.incident_id, StepState.step_id == done.c.step,
                                  StepState.state == "done"))
            .where(done.c.nth == 1).cte("met").prefix_with("MATERIALIZED"))


def _clock_query(in_period, as_of: datetime):
    """How many clocks ended how, per playbook timer as armed. A clock is the latest arming of a
    timer (an Undo arms it again); it was met when its step was first done, if it is still done
    (looked up per clock through the indexes: a few rows each)."""
    index = Timer.spec["index"].as_integer()
    armed = (select(Timer.incident_id, Timer.step_id, index.label("index"), Timer.kind, Timer.target,
                    Timer.spec["basis"].as_string().label("basis"), Timer.due_at, Timer.state,
                    func.row_number().over(partition_by=(Timer.incident_id, Timer.step_id, index, Timer.kind,
                                                         Timer.target), order_by=Timer.id.desc()).label("nth"))
             .where(Timer.kind.in_(("remind", "page")), Timer.step_id.is_not(None),
                    Timer.incident_id.in_(in_period)).subquery())
    first_done = (select(TimelineEvent.at)
                  .where(TimelineEvent.incident_id == armed.c.incident_id, TimelineEvent.kind == "step_done",
                         TimelineEvent.data["step"].as_string() == armed.c.step_id)
                  .order_by(TimelineEvent.seq).limit(1).scalar_subquery())
    still_done = (select(StepState.incident_id)
                  .where(StepState.incident_id == armed.c.incident_id, StepState.step_id == armed.c.step_id,
                         StepState.state == "done").exists())
    clocks = (select(armed.c.incident_id, armed.c.step_id, armed.c.index, armed.c.kind, armed.c.target,
                     armed.c.basis, armed.c.due_at, armed.c.state, case((still_done, first_done)).label("met_at"))
              .where(armed.c.nth == 1).cte("clocks").prefix_with("MATERIALIZED"))  # looked up once each
    met, due = clocks.c.met_at, type_coerce(clocks.c.due_at, Timer.due_at.type)  # as stored, beside `as_of`
    result = case((met.is_not(None) & (met <= clocks.c.due_at), "on_time"),
                  (met.is_not(None), "late"),
                  ((clocks.c.state == "fired") | ((clocks.c.state == "pending") & (due <= as_of)), "missed"),
                  (clocks.c.state == "cancelled", "cancelled"), else_="open").label("result")
    columns = (Incident.playbook_id, clocks.c.step_id, clocks.c.index, clocks.c.kind, clocks.c.target,
               clocks.c.basis)
    return (select(*columns, result, func.count())
            .select_from(clocks).join(Incident, Incident.id == clocks.c.incident_id)
            .group_by(*columns, result))


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
             .where(StepState.state == "done", StepState.step_id.in_(sorted({s for _, s in steps})),
                    # no hold lasts beyond a year (and a leap day): older reports are not read
                    StepState.done_at <= as_of, StepState.done_at > as_of - timedelta(days=367)))
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

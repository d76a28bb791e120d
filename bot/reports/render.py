"""The report in four formats from one plain structure (:func:`report_data`): JSON is that
structure, CSV flattens it (one figure a row), Markdown and HTML are Jinja2 templates over it
(``templates/report.md.j2``, ``templates/report.html.j2``). The HTML charts are SVG drawn here,
on the server: the page loads nothing and runs no script."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..timeline.chain import format_at
from ..timeline.export import defuse_cell, environment
from ..timeline.review import format_duration
from .model import CLOCK_RESULTS, INTERNAL, LEGAL, ClockCounts, Report, Spread

FORMATS = ("md", "html", "csv", "json")
MEDIA_TYPES = {"md": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8",
               "csv": "text/csv; charset=utf-8", "json": "application/json"}


def _num(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else round(value, 3)


def _spread(s: Spread, prefix: str = "") -> dict[str, Any]:
    return {f"{prefix}count": s.count, f"{prefix}p50": _num(s.p50), f"{prefix}p90": _num(s.p90),
            f"{prefix}max": _num(s.max)}


def _counts(c: ClockCounts) -> dict[str, Any]:
    out: dict[str, Any] = {r: getattr(c, r) for r in CLOCK_RESULTS}
    out |= {f"share_{r}": c.share(r) for r in ("on_time", "late", "missed")}
    return out


def report_data(report: Report) -> dict[str, Any]:
    """Everything the report says, as JSON-ready data (durations in seconds, times ISO 8601 UTC)."""
    return {
        "period": {"from": report.period.first.isoformat(), "to": report.period.last.isoformat()},
        "playbook": report.playbook,
        "generated_at": format_at(report.generated_at),
        "incidents": report.incidents,
        "incidents_by_playbook_severity": [
            {"playbook": r.playbook, "severity": r.severity, "incidents": r.incidents} for r in report.counts],
        "declared_to_t0": [{"playbook": t.playbook, **_spread(t.spread)}
                           for t in report.timings if t.measure == "declared_to_t0"],
        "t0_to_report": [{"playbook": t.playbook, "step": t.step, **_spread(t.spread)}
                         for t in report.timings if t.measure == "t0_to_report"],
        "clocks": {kind: _counts(report.clock_totals.get(kind, ClockCounts())) for kind in (LEGAL, INTERNAL)},
        "clocks_by_step": [{"playbook": c.playbook, "step": c.step, "clock": c.clock, "kind": c.kind,
                            **_counts(c.counts)} for c in report.clocks],
        "pages": [{"role": p.role, "label": p.label, "pages": p.pages, "acked": p.acked,
                   "unanswered": p.unanswered, "escalated": p.escalated, "escalations": p.escalations,
                   **_spread(p.time_to_ack, "ack_")} for p in report.pages],
        "skipped_steps": [{"playbook": s.playbook, "step": s.step, "skipped": s.skipped,
                           "incidents": list(s.incidents)} for s in report.skips],
        "forced_closes": [{"incident": f.incident, "playbook": f.playbook, "closed_at": format_at(f.closed_at),
                           "open_legal_steps": list(f.open_legal_steps)} for f in report.forced_closes],
        "preservation_holds": [{"incident": h.incident, "playbook": h.playbook, "step": h.step,
                                "started_at": format_at(h.started_at), "ends_at": format_at(h.ends_at)}
                               for h in report.holds],
    }


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


CSV_HEADER = ("section", "playbook", "subject", "figure", "value")


def csv_rows(data: dict[str, Any]) -> list[tuple[str, str, str, str, Any]]:
    """One figure a row: (section, playbook, subject, figure, value); subject is a severity,
    step, clock, role or incident number."""
    rows: list[tuple[str, str, str, str, Any]] = [
        ("period", "", "", "from", data["period"]["from"]), ("period", "", "", "to", data["period"]["to"]),
        ("period", data["playbook"] or "", "", "incidents", data["incidents"])]
    for r in data["incidents_by_playbook_severity"]:
        rows.append(("incidents", r["playbook"], r["severity"], "incidents", r["incidents"]))
    for r in data["declared_to_t0"]:
        rows += [("declared_to_t0", r["playbook"], "", k, r[k]) for k in ("count", "p50", "p90", "max")]
    for r in data["t0_to_report"]:
        rows += [("t0_to_report", r["playbook"], r["step"], k, r[k]) for k in ("count", "p50", "p90", "max")]
    for kind, c in data["clocks"].items():
        rows += [("clocks", "", kind, k, v) for k, v in c.items()]
    for r in data["clocks_by_step"]:
        subject = f"{r['step']}: {r['clock']} ({r['kind']})"
        rows += [("clocks_by_step", r["playbook"], subject, k, r[k])
                 for k in (*CLOCK_RESULTS, "share_on_time", "share_late", "share_missed")]
    for r in data["pages"]:
        rows += [("pages", "", r["role"], k, r[k]) for k in
                 ("pages", "acked", "unanswered", "escalated", "escalations", "ack_count", "ack_p50", "ack_p90",
                  "ack_max")]
    for r in data["skipped_steps"]:
        rows.append(("skipped_steps", r["playbook"], r["step"], "skipped", r["skipped"]))
        rows.append(("skipped_steps", r["playbook"], r["step"], "incidents", " ".join(map(str, r["incidents"]))))
    for r in data["forced_closes"]:
        rows.append(("forced_closes", r["playbook"], str(r["incident"]), "closed_at", r["closed_at"]))
        rows.append(("forced_closes", r["playbook"], str(r["incident"]), "open_legal_steps",
                     " ".join(r["open_legal_steps"])))
    for r in data["preservation_holds"]:
        rows.append(("preservation_holds", r["playbook"], str(r["incident"]), f"{r['step']} started_at",
                     r["started_at"]))
        rows.append(("preservation_holds", r["playbook"], str(r["incident"]), f"{r['step']} ends_at", r["ends_at"]))
    return rows


def render_csv(data: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for row in csv_rows(data):
        writer.writerow([defuse_cell("" if v is None else str(v)) for v in row])
    return out.getvalue()


def seconds(value: float | None) -> str:
    """A duration for people (``4h 05m``); a dash when there is none."""
    return "–" if value is None else format_duration(timedelta(seconds=value))


def short(value: float) -> str:
    """A bucket edge for an axis: ``15m``, ``4h``, ``1d``."""
    value = int(value)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value and value % size == 0:
            return f"{value // size}{unit}"
    return seconds(value)


def when(iso: str | None) -> str:
    """``2026-11-20T08:00:00.000000Z`` for people: ``2026-11-20 08:00 UTC``."""
    return f"{iso[:10]} {iso[11:16]} UTC" if iso else "–"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} %"


# --------------------------------------------------------------------------- charts

BUCKETS = [15 * 60, 30 * 60, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 12 * 3600, 24 * 3600, 48 * 3600, 7 * 86400]


def filing_charts(report: Report) -> list[dict[str, Any]]:
    """Per report step: how many reports were filed in each span after T0, the spans cut at the
    playbook's deadlines too, and whether a span lies before the first deadline."""
    charts = []
    for key in sorted({(f.playbook, f.step) for f in report.filings}):
        values = [f.since_t0 for f in report.filings if (f.playbook, f.step) == key]
        deadlines = sorted({d.after for d in report.deadlines if (d.playbook, d.step) == key})
        edges = sorted(set(BUCKETS) | set(deadlines))
        bars, low = [], 0.0
        for high in [*edges, None]:
            n = sum(1 for v in values if v >= low and (high is None or v < high))
            late = bool(deadlines) and (high is None or high > deadlines[0])
            bars.append({"low": low, "high": high, "count": n, "late": late})
            if high is not None:
                low = high
        last_deadline = deadlines[-1] if deadlines else 0
        while (len(bars) > 1 and bars[-1]["count"] == 0 and bars[-2]["count"] == 0
               and bars[-2]["high"] > last_deadline):
            bars[-1]["low"] = bars.pop(-2)["low"]  # trailing empty spans past every deadline add nothing
        for bar in bars:
            bar["label"] = f"≥ {short(bar['low'])}" if bar["high"] is None else f"< {short(bar['high'])}"
        edges = [bar["high"] for bar in bars if bar["high"] is not None]
        top = max(b["count"] for b in bars) or 1
        marks_of = [d for d in report.deadlines if (d.playbook, d.step) == key and d.after in edges]
        width, left, bottom = 640, 40, 34 + 14 * len(marks_of)
        height = 170 + bottom
        step = (width - left) / len(bars)
        for index, bar in enumerate(bars):
            bar["x"] = round(left + index * step + 2, 1)
            bar["w"] = round(step - 4, 1)
            bar["h"] = round((height - bottom - 10) * bar["count"] / top, 1)
            bar["y"] = round(height - bottom - bar["h"], 1)
            bar["tx"] = round(bar["x"] + bar["w"] / 2, 1)
        marks = []
        for n, d in enumerate(marks_of):
            # the deadline is the upper edge of the bar that ends at it; its name goes below the axis
            index = edges.index(d.after)
            marks.append({"x": round(left + (index + 1) * step, 1), "ly": height - bottom + 32 + 14 * n,
                          "label": f"dashed line at {short(d.after)}: {d.clock} ({d.kind})"})
        charts.append({"playbook": key[0], "step": key[1], "bars": bars, "marks": marks, "width": width,
                       "height": height, "axis_y": height - bottom, "left": left, "filed": len(values)})
    return charts


def ack_chart(report: Report) -> dict[str, Any] | None:
    rows = [p for p in report.pages if p.time_to_ack.count]
    if not rows:
        return None
    top = max(p.time_to_ack.p90 or 0 for p in rows) or 1
    left, width, row_h = 180, 720, 34
    bars = []
    for index, p in enumerate(rows):
        y = 10 + index * row_h
        scale = (width - left - 190) / top  # room on the right for the figures
        bars.append({"label": p.label, "y": y, "p50_w": round((p.time_to_ack.p50 or 0) * scale, 1),
                     "p90_w": round((p.time_to_ack.p90 or 0) * scale, 1), "p50": seconds(p.time_to_ack.p50),
                     "p90": seconds(p.time_to_ack.p90), "ty": y + 12})
    return {"bars": bars, "left": left, "width": width, "height": 20 + len(rows) * row_h}


# --------------------------------------------------------------------------- rendering

TEMPLATES = {"md": "report.md.j2", "html": "report.html.j2"}


def render(report: Report, fmt: str, *, template_dir: Path | None = None) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    data = report_data(report)
    if fmt == "json":
        return render_json(data)
    if fmt == "csv":
        return render_csv(data)
    env = environment("md" if fmt == "md" else "html", template_dir)
    context = {"r": data, "seconds": seconds, "percent": percent, "when": when, "legal": LEGAL, "internal": INTERNAL}
    if fmt == "html":
        context |= {"filing_charts": filing_charts(report), "ack_chart": ack_chart(report)}
    return env.get_template(TEMPLATES[fmt]).render(context)


def filename(report: Report, fmt: str) -> str:
    return f"safeguard-report-{report.period.first}-{report.period.last}.{fmt}"



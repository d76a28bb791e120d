"""Timeline exports and the post-incident review: md, html, json, csv."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bot.timeline import chain
from bot.timeline.export import (
    CSV_HEADER,
    FORMATS,
    defuse_cell,
    filename,
    md_block,
    md_cell,
    media_type,
    parse_csv,
    render,
)
from bot.timeline.review import (
    NO_CONTENT_STATEMENT,
    ActionItem,
    DeadlineView,
    EventView,
    IncidentReview,
    PageView,
    ResponderView,
    StepView,
    add_years,
    preservation_end,
    report_records,
    review_meeting_due,
)

CONTRACT_KEYS = ["seq", "at", "kind", "actor", "text", "data", "prev_hash", "hash"]

DECLARED = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # a Monday
T0 = DECLARED + timedelta(minutes=30)
REPORTED = datetime(2025, 3, 4, 11, 45, tzinfo=UTC)
RESOLVED = datetime(2025, 3, 5, 16, 0, tzinfo=UTC)
GENERATED = datetime(2025, 3, 6, 10, 0, tzinfo=UTC)

SCRIPT_NOTE = "Look <script>alert('x')</script> here"
IMAGE_NOTE = "see ![preview](https://evil.example/a.png) and <img src=x onerror=alert(1)>"
PIPE_NOTE = "two | cells\nand a second line"
FORMULA_NOTES = [
    '=HYPERLINK("https://evil.example","click")',
    "+1 call back",
    "-2+3",
    "@SUM(A1:A2)",
]


def chained(rows: list[tuple[datetime, str, str | None, str, dict]]) -> list[EventView]:
    """EventViews with a valid hash chain, seq from 1."""
    events: list[EventView] = []
    prev = chain.GENESIS
    for seq, (at, kind, actor, text, data) in enumerate(rows, start=1):
        body = {
            "seq": seq,
            "at": chain.format_at(at),
            "kind": kind,
            "actor": actor,
            "text": text,
            "data": data,
        }
        digest = chain.compute_hash(prev, body)
        events.append(EventView(seq, at, kind, actor, text, data, prev, digest))
        prev = digest
    return events


def worked_review(**changes) -> IncidentReview:
    """A csam-report incident: confirmed at 09:30, report filed next day 11:45 (late)."""
    minute = timedelta(minutes=1)
    rows = [
        (
            DECLARED,
            "declared",
            "U0LEAD01",
            "Incident declared (csam-report, sev1)",
            {"playbook": "csam-report", "severity": "sev1", "case_id": "CASE-4411"},
        ),
        (DECLARED + minute, "channel_created", None, "Channel created", {"channel": "C0INC7"}),
        (DECLARED + 2 * minute, "member_invited", None, "Invited U0SPEC01", {"user": "U0SPEC01"}),
        (
            T0,
            "step_done",
            "U0SPEC01",
            "Specialist confirms and classifies the material: done",
            {"step": "confirm", "content_id": "CNT-9", "sha256": "ab" * 32},
        ),
        (T0 + 5 * minute, "note", "U0LEAD01", SCRIPT_NOTE, {}),
        (T0 + 6 * minute, "note", "U0LEAD01", IMAGE_NOTE, {}),
        (T0 + 7 * minute, "note", "U0LEAD01", PIPE_NOTE, {}),
        *[
            (T0 + (8 + i) * minute, "note", "U0LEAD01", text, {})
            for i, text in enumerate(FORMULA_NOTES)
        ],
        (
            T0 + timedelta(hours=4),
            "reminder_sent",
            None,
            "Reminder: file the report",
            {"step": "ncmec-report"},
        ),
        (
            T0 + timedelta(hours=24),
            "page_sent",
            None,
            "Paged legal (level 1)",
            {"role": "legal", "level": 1},
        ),
        (
            T0 + timedelta(hours=24, minutes=15),
            "page_escalated",
            None,
            "Escalated to level 2",
            {"level": 2},
        ),
        (T0 + timedelta(hours=24, minutes=20), "page_acked", "U0GC0001", "Page acknowledged", {}),
        (
            REPORTED,
            "step_done",
            "U0LEAD01",
            "File the CyberTipline report and log its ID: done",
            {"step": "ncmec-report", "report_id": "987654321"},
        ),
        (RESOLVED, "resolved", "U0LEAD01", "Resolved", {}),
    ]
    steps = [
        StepView(
            "confirm",
            "Specialist confirms and classifies the material",
            "child_safety_specialist",
            ["U0SPEC01"],
            "done",
            "U0SPEC01",
            T0,
            None,
            {"category": "A1"},
        ),
        StepView(
            "ncmec-report",
            "File the CyberTipline report and log its ID",
            "incident_lead",
            ["U0LEAD01"],
            "done",
            "U0LEAD01",
            REPORTED,
            None,
            {"report_id": "987654321"},
        ),
        StepView(
            "nca-report",
            "Report to the NCA",
            "legal",
            ["U0LEGAL01"],
            "skipped",
            "U0LEGAL01",
            T0 + timedelta(hours=2),
            "Already reported to NCMEC | no | duplicate\nper s.67",
            {},
        ),
    ]
    deadlines = [
        DeadlineView(
            "ncmec-report",
            "File the CyberTipline report and log its ID",
            "remind owner",
            "law: as soon as reasonably possible (internal target 4h)",
            "confirm",
            T0,
            T0 + timedelta(hours=4),
            REPORTED,
            "fired",
        ),
        DeadlineView(
            "ncmec-report",
            "File the CyberTipline report and log its ID",
            "page legal",
            "law: as soon as reasonably possible (internal target 24h)",
            "confirm",
            T0,
            T0 + timedelta(hours=24),
            REPORTED,
            "fired",
        ),
    ]
    pages = [
        PageView(
            1,
            "legal",
            1,
            "report clock passed 24h",
            T0 + timedelta(hours=24),
            T0 + timedelta(hours=24, minutes=20),
            "U0GC0001",
            True,
        ),
    ]
    values = dict(
        ref="INC-7",
        number=7,
        title="Confirmed CSAM report",
        summary="Hash match confirmed by a specialist",
        playbook_id="csam-report",
        playbook_title="Confirmed CSAM report",
        severity="sev1",
        status="resolved",
        declared_at=DECLARED,
        declared_by="U0LEAD01",
        confirmed_at=T0,
        resolved_at=RESOLVED,
        closed_at=None,
        resolution="Report filed, account actioned, preservation hold placed.\n# not a heading",
        channel_id="C0INC7",
        responders=[
            ResponderView("U0LEAD01", "Ana Lead", ["incident_lead"]),
            ResponderView("U0SPEC01", "Sam Specialist", ["child_safety_specialist"]),
            ResponderView("U0GC0001", "Gail Counsel", ["legal"]),
        ],
        steps=steps,
        deadlines=deadlines,
        pages=pages,
        events=chained(rows),
        action_items=[
            ActionItem("Add a 1h variant of the report clock for a child at risk now", "U0LEAD01"),
            ActionItem("=cmd|' /C calc'!A0", None),
        ],
        generated_at=GENERATED,
    )
    values.update(changes)
    return IncidentReview(**values)


# --------------------------------------------------------------------------- json


def test_json_is_the_contract_oldest_first():
    review = worked_review()
    shuffled = worked_review(events=list(reversed(review.events)))
    text = render(shuffled, "json")
    data = json.loads(text)
    assert isinstance(data, list) and len(data) == len(review.events)
    assert [item["seq"] for item in data] == list(range(1, len(data) + 1))
    for item, event in zip(data, review.events, strict=True):
        assert list(item) == CONTRACT_KEYS
        assert item == event.to_json()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", item["at"])
    assert text == json.dumps([e.to_json() for e in review.events], indent=2, ensure_ascii=False)
    assert chain.verify(data).ok


def test_event_view_round_trips_through_json():
    for event in worked_review().events:
        assert EventView.from_json(json.loads(json.dumps(event.to_json()))) == event


# --------------------------------------------------------------------------- csv


def test_csv_parses_and_round_trips():
    review = worked_review()
    text = render(review, "csv")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == CSV_HEADER == tuple(CONTRACT_KEYS)
    assert len(rows) == len(review.events) + 1
    assert all(len(row) == len(CSV_HEADER) for row in rows)
    first = dict(zip(CSV_HEADER, rows[1], strict=True))
    assert json.loads(first["data"]) == review.events[0].data
    assert " " not in first["data"] and first["data"].startswith("{")
    # the note with a line break and a pipe stays one record
    pipe_row = next(r for r in rows if r[4] == PIPE_NOTE)
    assert pipe_row[0] == "7"
    back = parse_csv(text)
    assert back == [e.to_json() for e in review.events]
    assert chain.verify(back).ok


def test_csv_defuses_formula_injection():
    review = worked_review()
    rows = list(csv.reader(io.StringIO(render(review, "csv"), newline="")))
    texts = [row[4] for row in rows[1:]]
    for note in FORMULA_NOTES:
        assert note not in texts
        assert "'" + note in texts
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), cell
    assert defuse_cell("=1+2") == "'=1+2"
    assert defuse_cell("\t=1") == "'\t=1"
    assert defuse_cell("'quoted") == "''quoted"  # so that parse_csv can undo it exactly
    assert defuse_cell("plain") == "plain"


# --------------------------------------------------------------------------- markdown

SECTIONS = [
    "## Summary",
    "## Impact",
    "## Responders and roles",
    "## Timeline",
    "## Legal clocks",
    "## Pages",
    "## Skipped steps and why",
    "## Contributing factors",
    "## Resolution",
    "## Action items",
    "## Review meeting",
]


def _cells(line: str) -> list[str]:
    """Split a Markdown table row on its unescaped pipes."""
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


def test_markdown_has_every_section_in_order_and_ends_with_the_statement():
    md = render(worked_review(), "md")
    positions = [md.index(f"\n{heading}\n") for heading in SECTIONS]
    assert positions == sorted(positions)
    assert md.startswith("# INC-7: Confirmed CSAM report\n")
    assert md.rstrip().endswith(NO_CONTENT_STATEMENT)
    # summary facts
    for fact in (
        "csam-report",
        "sev1",
        "resolved",
        "2025-03-03 09:00:00 UTC",
        "2025-03-05 16:00:00 UTC",
        "Ana Lead",
        "Gail Counsel",
        "Sam Specialist",
        "child\\_safety\\_specialist",
    ):
        assert fact in md
    # the review never carries step values other than report ids (the classification stays out)
    assert "| A1 |" not in md and " A1 " not in md


def test_markdown_timeline_has_every_event_with_its_source():
    review = worked_review()
    md = render(review, "md")
    timeline = md.split("\n## Timeline\n", 1)[1].split("\n## ", 1)[0]
    assert f"Hash chain verified: {len(review.events)} events" in timeline
    rows = [line for line in timeline.splitlines() if line.startswith("| #")]
    assert len(rows) == len(review.events)
    for row, event in zip(rows, review.events, strict=True):
        cells = _cells(row)
        assert len(cells) == 5, row
        assert cells[0].strip() == f"#{event.seq}"
        assert cells[1].strip() == event.at.strftime("%Y-%m-%d %H:%M:%S UTC")
        assert cells[2].strip() == event.kind.replace("_", "\\_")
    assert "| #1 | 2025-03-03 09:00:00 UTC | declared | Ana Lead |" in md
    assert "| #2 | 2025-03-03 09:01:00 UTC | channel\\_created | system |" in md


def test_markdown_neutralises_untrusted_text():
    md = render(worked_review(), "md")
    assert "![" not in md
    assert "<script" not in md and "<img" not in md
    assert "&lt;script&gt;" in md
    assert "https://evil.example" not in md  # defanged: no link, no preview
    assert "hxxps://evil.example" in md
    # the pipe and the line break of a note stay inside their cell
    assert "two \\| cells and a second line" in md
    for table_line in (line for line in md.splitlines() if line.startswith("|")):
        header_cells = len(_cells(table_line))
        assert header_cells >= 2
    # the skip reason with pipes and a newline is one row of 5 cells
    skipped = next(line for line in md.splitlines() if "Already reported" in line)
    assert len(_cells(skipped)) == 5
    # multi-line resolution: a line starting with # is not a heading
    assert "\n\\# not a heading" in md
    assert "\n# not a heading" not in md
    # action item text that looks like a formula or link is escaped, not a link
    assert "=cmd\\|' /C calc'!A0" in md


def test_md_escaping_helpers():
    assert md_cell("a|b\nc\r\nd") == "a\\|b c d"
    assert md_cell("[x](http://y)") == "\\[x\\](hxxp://y)"
    assert md_cell("![i](https://y/z.png)") == "!\\[i\\](hxxps://y/z.png)"
    assert md_cell("<b>&amp;</b>") == "&lt;b&gt;&amp;amp;&lt;/b&gt;"
    assert md_cell("back\\slash `code`") == "back\\\\slash \\`code\\`"
    assert (
        md_block("# h\n- item\n1. one\n    indented\n\n\n> q")
        == "\\# h\n\\- item\n1\\. one\nindented\n\n&gt; q"
    )


def test_legal_clock_table_shows_due_times_lateness_report_and_preservation():
    md = render(worked_review(), "md")
    legal = md.split("\n## Legal clocks\n", 1)[1].split("\n## ", 1)[0]
    assert "T0 (a person confirmed the case): 2025-03-03 09:30:00 UTC." in legal
    rows = {
        _cells(line)[1].strip(): [c.strip() for c in _cells(line)]
        for line in legal.splitlines()
        if line.startswith("| File the CyberTipline")
    }
    assert set(rows) == {"remind owner", "page legal"}
    remind, page = rows["remind owner"], rows["page legal"]
    # clock, trigger, basis, from, due, met, result, report ids, preservation start, end
    assert remind[3] == "Specialist confirms and classifies the material"
    assert remind[4] == "2025-03-03 13:30:00 UTC"
    assert remind[5] == "2025-03-04 11:45:00 UTC"
    assert remind[6] == "met 22h 15m late"
    assert page[4] == "2025-03-04 09:30:00 UTC"
    assert page[6] == "met 2h 15m late"
    for row in (remind, page):
        assert row[2].startswith("law: as soon as reasonably possible")
        assert row[7] == "987654321"
        assert row[8] == "2025-03-04 11:45:00 UTC"
        assert row[9] == "2026-03-04 11:45:00 UTC"
    assert "Report 987654321" in legal and "1d 2h 15m after T0" in legal


def test_pages_skips_action_items_and_meeting_in_markdown():
    md = render(worked_review(), "md")
    pages = md.split("\n## Pages\n", 1)[1].split("\n## ", 1)[0]
    row = next(line for line in pages.splitlines() if line.startswith("| legal"))
    assert [c.strip() for c in _cells(row)] == [
        "legal",
        "1",
        "report clock passed 24h",
        "2025-03-04 09:30:00 UTC",
        "Gail Counsel",
        "20m 00s",
        "yes",
    ]
    assert "Already reported to NCMEC" in md
    assert "(owner: Ana Lead)" in md and "(owner: unassigned)" in md
    assert "Due by 2025-03-08 16:00:00 UTC (sev1: within 3 days of resolution)." in md


def test_open_clock_past_due_is_shown_overdue():
    review = worked_review()
    open_deadline = DeadlineView(
        "nca-report",
        "Report to the NCA",
        "page legal",
        "",
        "declared",
        DECLARED,
        DECLARED + timedelta(hours=2),
        None,
        "fired",
    )
    md = render(
        worked_review(
            deadlines=[*review.deadlines, open_deadline], status="open", resolved_at=None
        ),
        "md",
    )
    row = next(
        line for line in md.splitlines() if line.startswith("| Report to the NCA | page legal")
    )
    cells = [c.strip() for c in _cells(row)]
    assert cells[2] == "not stated" and cells[3] == "declaration"
    assert cells[6] == "not met: overdue by 2d 23h 00m at 2025-03-06 10:00:00 UTC"
    assert "Not due yet (sev1: within 3 days of resolution): the incident is not resolved." in md


def test_broken_chain_is_flagged_in_the_review():
    review = worked_review()
    events = list(review.events)
    bad = events[3]
    events[3] = EventView(
        bad.seq, bad.at, bad.kind, bad.actor, "edited", bad.data, bad.prev_hash, bad.hash
    )
    md = render(worked_review(events=events), "md")
    assert "Hash chain broken** at event #4" in md
    assert "Hash chain broken at event #4" in render(worked_review(events=events), "html")


# --------------------------------------------------------------------------- html

VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.doctype = False
        self.text: list[str] = []

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}>, open: {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(html: str) -> _Checker:
    checker = _Checker()
    checker.feed(html)
    checker.close()
    return checker


def test_html_is_well_formed_standalone_and_escaped():
    html = render(worked_review(), "html")
    checker = _parse(html)
    assert checker.doctype
    assert checker.errors == []
    assert checker.stack == []
    names = [tag for tag, _ in checker.tags]
    assert names[0] == "html"
    assert "script" not in names and "img" not in names and "iframe" not in names
    assert names.count("style") == 1
    metas = [attrs for tag, attrs in checker.tags if tag == "meta"]
    assert {"name": "referrer", "content": "no-referrer"} in metas
    assert any(m.get("charset") == "utf-8" for m in metas)
    for _tag, attrs in checker.tags:
        for attr in ("src", "href", "action", "srcset"):
            value = attrs.get(attr)
            if value is not None:
                assert value.startswith(("#", "data:")), (attr, value)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    text = "".join(checker.text)
    assert SCRIPT_NOTE in text  # shown faithfully, as text
    assert text.rstrip().endswith(NO_CONTENT_STATEMENT)
    for heading in SECTIONS:
        assert f"<h2>{heading[3:]}</h2>" in html
    assert "met 2h 15m late" in html and "987654321" in html and "2026-03-04 11:45:00 UTC" in html
    for event in worked_review().events:
        assert f'id="e{event.seq}"' in html


# --------------------------------------------------------------------------- helpers and api


def test_formats_media_types_and_filenames():
    review = worked_review()
    assert FORMATS == ("md", "html", "json", "csv")
    assert filename(review, "csv") == "INC-7-timeline.csv"
    assert filename(review, "json") == "INC-7-timeline.json"
    assert filename(review, "md") == "INC-7-review.md"
    assert filename(review, "html") == "INC-7-review.html"
    assert filename(worked_review(ref='INC-7"\r\nX: y'), "md") == "INC-7-review.md"
    assert media_type("csv").startswith("text/csv")
    assert media_type("json") == "application/json"
    assert media_type("html").startswith("text/html")
    assert media_type("md").startswith("text/markdown")
    with pytest.raises(ValueError):
        render(review, "pdf")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        media_type("xml")


def test_an_organisation_template_dir_replaces_the_review(tmp_path: Path):
    (tmp_path / "review.md.j2").write_text(
        "Custom review of {{ review.ref }}: {{ review.headline }} {{ events|length }}\n{{ statement }}\n"
    )
    review = worked_review(title="a | b")
    md = render(review, "md", template_dir=tmp_path)
    assert md.startswith(f"Custom review of INC-7: a \\| b {len(review.events)}\n")
    # templates the folder does not have come from the shipped ones
    assert "<!DOCTYPE html>" in render(review, "html", template_dir=tmp_path)
    assert render(review, "md").startswith("# INC-7:")


def test_report_records_and_preservation():
    records = report_records(worked_review())
    assert [(r.step_id, r.report_id) for r in records] == [("ncmec-report", "987654321")]
    record = records[0]
    assert record.preservation_start == REPORTED
    assert record.preservation_end == datetime(2026, 3, 4, 11, 45, tzinfo=UTC)
    assert record.since_t0 == timedelta(days=1, hours=2, minutes=15)
    assert add_years(datetime(2028, 2, 29, 12, tzinfo=UTC), 1) == datetime(
        2029, 3, 1, 12, tzinfo=UTC
    )
    # before the REPORT Act (7 May 2024) the period was 90 days
    assert preservation_end(datetime(2024, 1, 10, tzinfo=UTC)) == datetime(2024, 4, 9, tzinfo=UTC)
    assert preservation_end(datetime(2024, 5, 7, tzinfo=UTC)) == datetime(2025, 5, 7, tzinfo=UTC)


def test_review_meeting_due():
    friday = datetime(2025, 3, 7, 15, 0, tzinfo=UTC)
    assert review_meeting_due(worked_review(resolved_at=friday)).due_at == friday + timedelta(
        days=3
    )
    sev2 = review_meeting_due(worked_review(severity="sev2", resolved_at=friday))
    assert sev2.required and sev2.due_at == datetime(2025, 3, 14, 15, 0, tzinfo=UTC)
    saturday = datetime(2025, 3, 8, 9, 0, tzinfo=UTC)
    assert review_meeting_due(
        worked_review(severity="sev2", resolved_at=saturday)
    ).due_at == datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    assert not review_meeting_due(worked_review(severity="sev3")).required
    assert review_meeting_due(worked_review(resolved_at=None)).due_at is None


def test_an_empty_incident_renders_in_every_format():
    review = IncidentReview(
        ref="INC-1",
        number=1,
        title="t",
        playbook_id="p",
        playbook_title="P",
        severity="sev3",
        status="open",
        declared_at=DECLARED,
        generated_at=GENERATED,
    )
    assert json.loads(render(review, "json")) == []
    assert render(review, "csv").splitlines() == [",".join(CSV_HEADER)]
    md = render(review, "md")
    for heading in SECTIONS:
        assert f"\n{heading}\n" in md
    assert "A review meeting is not required for sev3." in md
    checker = _parse(render(review, "html"))
    assert checker.errors == [] and checker.stack == []


def test_slack_markup_in_event_text_reads_as_slack_shows_it():
    from bot.timeline.export import slack_plain

    names = {"U0LEAD001": "Ana"}.get
    assert slack_plain("Invited <@U0LEAD001> and <@U0NOBODY1>", names) == "Invited @Ana and @U0NOBODY1"
    assert slack_plain("<@U0NOBODY1|nobody> in <#C0OPS0001|t-and-s-ops>", names) == "@nobody in #t-and-s-ops"
    assert slack_plain("due <!date^1740996000^{date_short_pretty} {time}|2025-03-03 10:00 UTC>") == (
        "due 2025-03-03 10:00 UTC")
    assert slack_plain("<!subteam^S0LEGAL|@legal> <!here>") == "@legal @here"
    # anything else in angle brackets is left for the template to escape
    assert slack_plain("<script>alert(1)</script> <b>x</b> <!-- c -->") == "<script>alert(1)</script> <b>x</b> <!-- c -->"
    review = worked_review()
    html, md = render(review, "html"), render(review, "md")
    assert "&lt;script&gt;" in html and "<script" not in html.lower()
    assert "&lt;script&gt;" in md


def test_the_markdown_review_names_a_step_owner_by_the_roles_label():
    review = worked_review(role_labels={"child_safety_specialist": "Child-safety specialist"})
    text = render(review, "md")
    assert "| Specialist confirms and classifies the material (confirm) | Child-safety specialist |" in text
    assert "| child_safety_specialist |" not in text

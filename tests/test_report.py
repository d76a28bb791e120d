"""The compliance report and the Home tab in the core: a set of incidents with known timings, made through the
core's own functions under freezegun (tests/report_support.py), and every figure checked against
values worked out by hand, in JSON, CSV, Markdown and HTML. Runs on SQLite and PostgreSQL.

The hand computation (incidents 1–4 declared in November 2026; 5 in October):
- declared→T0 of csam-report: 30m, 2h, 10m → sorted 600, 1800, 7200 s; nearest rank: p50 is
  the 2nd (1800), p90 the 3rd (7200), max 7200.
- T0→ncmec-report: 2h (INC-1), 6h (INC-2) → p50 the 1st (7200), p90 the 2nd (21600).
- legal clocks: INC-1 4h and 24h on time, INC-2 4h late and 24h on time, the 330-day review
  open in both, INC-3's two report clocks cancelled by the forced close → 3/1/0/2/2, shares
  75 / 25 / 0 %.
- internal clocks: INC-1 confirm, remove, preservation-hold, hash-share on time (4); INC-2
  confirm late, remove cancelled (skipped), hash-share and preservation-hold missed; INC-3
  confirm on time, remove and hash-share cancelled (closed); INC-4 verify and assess missed →
  5/1/4/0/3, shares 50 / 10 / 40 %.
- pages of legal: 10m and 40m to acknowledge, INC-3's escalated once and withdrawn → 3 pages,
  2 acknowledged, 1 escalated, p50 600, p90 2400.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from datetime import UTC, date, datetime
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner
from freezegun import freeze_time
from sqlalchemy import select

from bot.db.models import Task
from bot.errors import Forbidden, InvalidInput
from bot.home import home_view, render_home
from bot.paging import service as pages
from bot.reports.build import OPERATOR, build_report
from bot.reports.period import Period, period_of
from bot.reports.render import render
from tests.report_support import (
    LEAD,
    LEGAL,
    NOTE,
    NOW,
    SPEC,
    SUMMARY,
    build_core,
    make_incidents,
    make_october,
)
from tests.support import postgres_reachable, postgres_schema

NOVEMBER = Period(date(2026, 11, 1), date(2026, 11, 30))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def core(request, tmp_path_factory):
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("report") / "report.db"
        shutil.copyfile(request.getfixturevalue("_migrated_sqlite"), path)
        urls = iter([f"sqlite:///{path}"])
        context = None
    else:
        if not postgres_reachable():
            pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
        context = postgres_schema()
        urls = iter([context.__enter__()])
    made = build_core(next(urls), migrate=request.param == "postgres")
    make_incidents(made)
    make_october(made)
    yield made
    made.db.dispose()
    if context is not None:
        context.__exit__(None, None, None)


@pytest.fixture(scope="module")
def report(core):
    return build_report(core, OPERATOR, NOVEMBER, now=NOW)


EXPECTED_JSON = {
    "period": {"from": "2026-11-01", "to": "2026-11-30"},
    "playbook": None,
    "generated_at": "2026-11-30T12:00:00.000000Z",
    "incidents": 4,
    "incidents_by_playbook_severity": [
        {"playbook": "csam-report", "severity": "sev1", "incidents": 3},
        {"playbook": "le-emergency-request", "severity": "sev2", "incidents": 1}],
    "declared_to_t0": [{"playbook": "csam-report", "count": 3, "p50": 1800, "p90": 7200, "max": 7200}],
    "t0_to_report": [{"playbook": "csam-report", "step": "ncmec-report", "count": 2, "p50": 7200, "p90": 21600,
                      "max": 21600}],
    "clocks": {
        "legal": {"on_time": 3, "late": 1, "missed": 0, "open": 2, "cancelled": 2,
                  "share_on_time": 75.0, "share_late": 25.0, "share_missed": 0.0},
        "internal": {"on_time": 5, "late": 1, "missed": 4, "open": 0, "cancelled": 3,
                     "share_on_time": 50.0, "share_late": 10.0, "share_missed": 40.0}},
    "pages": [{"role": "legal", "label": "Legal on-call", "pages": 3, "acked": 2, "unanswered": 0, "escalated": 1,
               "escalations": 1, "ack_count": 2, "ack_p50": 600, "ack_p90": 2400, "ack_max": 2400}],
    "skipped_steps": [{"playbook": "csam-report", "step": "remove", "skipped": 1, "incidents": [2]}],
    "forced_closes": [{"incident": 3, "playbook": "csam-report", "closed_at": "2026-11-20T08:00:00.000000Z",
                       "open_legal_steps": ["ncmec-report"]}],
    "preservation_holds": [
        {"incident": 5, "playbook": "csam-report", "step": "ncmec-report",
         "started_at": "2026-10-01T10:00:00.000000Z", "ends_at": "2027-10-01T10:00:00.000000Z"},
        {"incident": 1, "playbook": "csam-report", "step": "ncmec-report",
         "started_at": "2026-11-02T11:30:00.000000Z", "ends_at": "2027-11-02T11:30:00.000000Z"},
        {"incident": 2, "playbook": "csam-report", "step": "ncmec-report",
         "started_at": "2026-11-10T16:00:00.000000Z", "ends_at": "2027-11-10T16:00:00.000000Z"}],
}

# (step, clock, kind): on time, late, missed, open, cancelled
EXPECTED_CLOCKS = [
    ("csam-report", "confirm", "remind owner 1h after declared", "internal", 2, 1, 0, 0, 0),
    ("csam-report", "remove", "remind owner 1h after confirm", "internal", 1, 0, 0, 0, 2),
    ("csam-report", "ncmec-report", "remind owner 4h after confirm", "legal", 1, 1, 0, 0, 1),
    ("csam-report", "ncmec-report", "page legal 1d after confirm", "legal", 2, 0, 0, 0, 1),
    ("csam-report", "preservation-hold", "remind owner 1d after ncmec-report", "internal", 1, 0, 1, 0, 0),
    ("csam-report", "hold-review", "remind legal 330d after ncmec-report", "legal", 0, 0, 0, 2, 0),
    ("csam-report", "hash-share", "remind owner 1d after confirm", "internal", 1, 0, 1, 0, 1),
    ("le-emergency-request", "verify", "remind owner 15m after declared", "internal", 0, 0, 1, 0, 0),
    ("le-emergency-request", "assess", "page legal 30m after declared", "internal", 0, 0, 1, 0, 0),
]


def test_every_figure_in_json(report):
    data = json.loads(render(report, "json"))
    clocks = data.pop("clocks_by_step")
    assert data == EXPECTED_JSON
    assert [(c["playbook"], c["step"], c["clock"], c["kind"], c["on_time"], c["late"], c["missed"], c["open"],
             c["cancelled"]) for c in clocks] == EXPECTED_CLOCKS
    assert clocks[0]["share_on_time"] == 66.7 and clocks[5]["share_on_time"] is None


def test_every_figure_in_csv(report):
    rows = list(csv.reader(io.StringIO(render(report, "csv"))))
    assert rows[0] == ["section", "playbook", "subject", "figure", "value"]
    table = {tuple(r[:4]): r[4] for r in rows[1:]}
    expected = {
        ("period", "", "", "incidents"): "4",
        ("incidents", "csam-report", "sev1", "incidents"): "3",
        ("incidents", "le-emergency-request", "sev2", "incidents"): "1",
        ("declared_to_t0", "csam-report", "", "p50"): "1800", ("declared_to_t0", "csam-report", "", "p90"): "7200",
        ("declared_to_t0", "csam-report", "", "max"): "7200", ("declared_to_t0", "csam-report", "", "count"): "3",
        ("t0_to_report", "csam-report", "ncmec-report", "p50"): "7200",
        ("t0_to_report", "csam-report", "ncmec-report", "p90"): "21600",
        ("clocks", "", "legal", "on_time"): "3", ("clocks", "", "legal", "late"): "1",
        ("clocks", "", "legal", "missed"): "0", ("clocks", "", "legal", "share_on_time"): "75.0",
        ("clocks", "", "internal", "missed"): "4", ("clocks", "", "internal", "share_missed"): "40.0",
        ("clocks_by_step", "csam-report", "ncmec-report: remind owner 4h after confirm (legal)", "late"): "1",
        ("pages", "", "legal", "pages"): "3", ("pages", "", "legal", "escalated"): "1",
        ("pages", "", "legal", "ack_p50"): "600", ("pages", "", "legal", "ack_p90"): "2400",
        ("skipped_steps", "csam-report", "remove", "skipped"): "1",
        ("skipped_steps", "csam-report", "remove", "incidents"): "2",
        ("forced_closes", "csam-report", "3", "open_legal_steps"): "ncmec-report",
        ("preservation_holds", "csam-report", "1", "ncmec-report ends_at"): "2027-11-02T11:30:00.000000Z",
    }
    assert {k: table.get(k) for k in expected} == expected
    assert len([r for r in rows if r[0] == "clocks_by_step" and r[3] == "on_time"]) == len(EXPECTED_CLOCKS)


def test_every_figure_in_markdown(report):
    md = render(report, "md")
    for line in (
        "Incidents declared from 2026-11-01 to 2026-11-30 (UTC): **4**.",
        "| csam-report | sev1 | 3 |",
        "| le-emergency-request | sev2 | 1 |",
        "| csam-report | declaration | T0 | 3 | 30m 00s | 2h 00m | 2h 00m |",
        "| csam-report | T0 | ncmec-report | 2 | 2h 00m | 6h 00m | 6h 00m |",
        "| legal | 3 | 1 | 0 | 2 | 2 | 75.0 % | 25.0 % | 0.0 % |",
        "| internal | 5 | 1 | 4 | 0 | 3 | 50.0 % | 10.0 % | 40.0 % |",
        "| csam-report | ncmec-report | remind owner 4h after confirm | legal | 1 | 1 | 0 | 0 | 1 | 50.0 % |",
        "| csam-report | hold-review | remind legal 330d after ncmec-report | legal | 0 | 0 | 0 | 2 | 0 | – |",
        "| Legal on-call | 3 | 2 | 0 | 1 | 1 | 10m 00s | 40m 00s |",
        "| csam-report | remove | 1 | INC-2 |",
        "- INC-3 (csam-report) closed 2026-11-20 08:00 UTC with legal steps open: ncmec-report",
        "| INC-5 | csam-report | ncmec-report | 2026-10-01 10:00 UTC | 2027-10-01 10:00 UTC |",
        "| INC-2 | csam-report | ncmec-report | 2026-11-10 16:00 UTC | 2027-11-10 16:00 UTC |",
    ):
        assert line in md, line


class Cells(HTMLParser):
    """The text of every table row, by table id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.table = self.row = self.cell = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.table = self.tables.setdefault(dict(attrs).get("id", ""), [])
        elif tag == "tr" and self.table is not None:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.table.append(self.row)
            self.row = None
        elif tag == "table":
            self.table = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def test_every_figure_in_html(report):
    page = render(report, "html")
    cells = Cells()
    cells.feed(page)
    t = cells.tables
    assert t["counts"][1:] == [["csam-report", "sev1", "3"], ["le-emergency-request", "sev2", "1"]]
    assert t["timings"][1:] == [["csam-report", "declaration", "T0", "3", "30m 00s", "2h 00m", "2h 00m"],
                                ["csam-report", "T0", "ncmec-report", "2", "2h 00m", "6h 00m", "6h 00m"]]
    assert t["clock-totals"][1:] == [["legal", "3", "1", "0", "2", "2", "75.0 %", "25.0 %", "0.0 %"],
                                     ["internal", "5", "1", "4", "0", "3", "50.0 %", "10.0 %", "40.0 %"]]
    assert [tuple(r[:9]) for r in t["clocks"][1:]] == [tuple(map(str, c)) for c in EXPECTED_CLOCKS]
    assert t["pages"][1:] == [["Legal on-call", "3", "2", "0", "1", "1", "10m 00s", "40m 00s"]]
    assert t["skips"][1:] == [["csam-report", "remove", "1", "INC-2"]]
    assert [r[0] for r in t["holds"][1:]] == ["INC-5", "INC-1", "INC-2"]
    assert "INC-3 (csam-report) closed 2026-11-20 08:00 UTC with legal steps open: ncmec-report" in page
    # the filing chart: both reports, one before the 4h deadline (green), one after it (red)
    bars = re.findall(r'<rect class="bar (bar-ok|bar-late)" data-count="(\d+)"', page)
    assert sum(int(n) for _, n in bars) == 2
    assert ("bar-ok", "1") in bars and ("bar-late", "1") in bars
    assert page.count('class="deadline"') == 2  # the 4h and the 24h clocks
    assert "<script" not in page and not re.search(r'(src|href)="(?!data:)', page)  # nothing loaded


def test_no_summary_note_or_name_in_any_format(report):
    for fmt in ("md", "html", "csv", "json"):
        body = render(report, fmt)
        for secret in (SUMMARY, NOTE, "duplicate of a private thing", "the platform cannot report", "please look",
                       LEAD, SPEC, "Ana", "Chloe", "Lena", "CASE-1", "111", "222"):
            assert secret not in body, (fmt, secret)


def test_only_leads_and_the_operator_read_reports(core):
    assert build_report(core, LEAD, NOVEMBER, now=NOW).incidents == 4
    with pytest.raises(Forbidden, match="incident leads"):
        build_report(core, SPEC, NOVEMBER, now=NOW)


def test_playbook_filter_and_periods(core):
    only = build_report(core, OPERATOR, NOVEMBER, playbook="le-emergency-request", now=NOW)
    assert only.incidents == 1 and only.holds == [] and only.pages == []
    october = build_report(core, OPERATOR, Period(date(2026, 10, 1), date(2026, 10, 1)), now=NOW)
    assert october.incidents == 1 and [h.incident for h in october.holds] == [5]
    with pytest.raises(InvalidInput, match="no playbook"):
        build_report(core, OPERATOR, NOVEMBER, playbook="nope", now=NOW)
    today = date(2026, 11, 30)
    assert period_of(None, None, today) == Period(date(2026, 11, 1), today)
    assert period_of("2026-10-01", None, today) == Period(date(2026, 10, 1), date(2026, 10, 30))
    with pytest.raises(InvalidInput, match="from: '2026-13-01' is not a date"):
        period_of("2026-13-01", None, today)
    with pytest.raises(InvalidInput, match="after it ends"):
        period_of("2026-11-02", "2026-11-01", today)


def test_the_cli_prints_the_report_and_names_a_missing_database(core, monkeypatch, tmp_path):
    from runtime.cli import main
    from tests.support import DEMO_CONFIG

    monkeypatch.setenv("SAFEGUARD_CONFIG", str(DEMO_CONFIG))
    monkeypatch.setenv("DATABASE_URL", core.settings.database_url)
    runner = CliRunner()
    result = runner.invoke(main, ["report", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "md"])
    assert result.exit_code == 0 and result.output.startswith("# Safeguard report 2026-11-01 to 2026-11-30")
    result = runner.invoke(main, ["report", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "json",
                                  "--playbook", "le-emergency-request"])
    assert json.loads(result.output)["incidents"] == 1
    bad = runner.invoke(main, ["report", "--from", "30/11/2026"])
    assert bad.exit_code == 2 and "is not a date" in bad.output
    missing = tmp_path / "missing.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{missing}")
    result = runner.invoke(main, ["report"])
    assert result.exit_code == 1 and "No database at" in result.output and "Traceback" not in result.output
    assert not missing.exists()


# -- the Home tab's content (bot/home.py), on the same incidents ----------------------------------

def test_a_specialists_home_lists_their_incidents_steps_and_exposure(core):
    with freeze_time("2026-11-30 12:00:00"):
        view = home_view(core, SPEC)
    # INC-3 is closed; INC-4's playbook does not invite specialists; INC-5 waits on no step of theirs
    assert [i.number for i in view.incidents][:2] == [5, 2] and 1 in [i.number for i in view.incidents]
    inc2 = next(i for i in view.incidents if i.number == 2)
    assert inc2.title == SUMMARY and inc2.severity == "sev1"
    # the specialist owns hash-share in INC-2 (active); its clock fell due a day after T0
    assert [(s.id, s.due_at, s.overdue) for s in inc2.steps] == [
        ("hash-share", datetime(2026, 11, 11, 10, tzinfo=UTC), True)]
    assert view.pages == [] and view.exposure is not None and view.exposure.today == "0s"
    blocks = render_home(core, view)
    assert blocks["type"] == "home" and len(blocks["blocks"]) <= 100
    text = json.dumps(blocks)
    assert "Your viewing today (only you see this)" in text and "home_declare" in text and "hash-share" in text and "*overdue* since" in text


def test_a_page_waits_on_the_home_tab_of_those_paged_and_asks_for_a_refresh(core):
    from bot.incidents.declare import declare

    core.home_seen.add(LEGAL)  # LEGAL opened the Home tab (SPEC did not: nothing is asked for them)
    with freeze_time("2026-12-01 12:00:00"):  # after November: the report's figures stay as they are
        number = declare(core, playbook_id="csam-report", summary=SUMMARY, actor=LEAD).number
        pages.page_by_hand(core, number, LEAD, "legal", "look")
        view = home_view(core, LEGAL)
    assert [(p.ref, p.role_label, p.level) for p in view.pages] == [(f"INC-{number}", "Legal on-call", 1)]
    assert view.exposure is None  # Legal is not in a viewing role: no exposure shown
    blocks = json.dumps(render_home(core, view))
    assert '"page_ack"' in blocks and f"INC-{number}" in blocks
    with core.db.read() as session:
        asked = [t.payload["user"] for t in session.scalars(select(Task).where(Task.kind == "publish_home"))]
    assert asked == [LEGAL]  # the page's Home tab refresh is queued (debounced, one per person)
    with freeze_time("2026-12-01 12:05:00"):
        pages.acknowledge(core, LEGAL, incident_id=number)
        assert home_view(core, LEGAL).pages == []

"""The Home tab's content in the core, on the incidents of tests/report_support.py: a person's
open incidents, the steps they own with their next clock, the pages waiting for them, their own
exposure (viewers only), and the Block Kit it renders to (SQLite: no database behaviour here)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from bot.db.models import Task
from bot.home import home_view, render_home
from bot.paging import service as pages
from tests.report_support import LEAD, LEGAL, SPEC, SUMMARY, build_core, make_incidents


@pytest.fixture(scope="module")
def core(tmp_path_factory, _migrated_sqlite):
    path = tmp_path_factory.mktemp("home") / "home.db"
    shutil.copyfile(_migrated_sqlite, path)
    made = build_core(f"sqlite:///{path}")
    make_incidents(made)
    yield made
    made.db.dispose()


def test_a_specialists_home_lists_their_incidents_steps_and_exposure(core):
    with freeze_time("2026-11-30 12:00:00"):
        view = home_view(core, SPEC)
    # INC-3 is closed; INC-4's playbook does not invite specialists
    assert [i.number for i in view.incidents] == [2, 1]
    inc2 = view.incidents[0]
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
    core.home_seen.add(LEGAL)  # LEGAL opened the Home tab (SPEC did not: nothing is asked for them)
    with freeze_time("2026-11-30 12:00:00"):
        pages.page_by_hand(core, 1, LEAD, "legal", "look")
        view = home_view(core, LEGAL)
    assert [(p.ref, p.role_label, p.level) for p in view.pages] == [("INC-1", "Legal on-call", 1)]
    assert view.exposure is None  # Legal is not in a viewing role: no exposure shown
    blocks = json.dumps(render_home(core, view))
    assert '"page_ack"' in blocks and "INC-1" in blocks
    with core.db.read() as session:
        asked = [t.payload["user"] for t in session.scalars(select(Task).where(Task.kind == "publish_home"))]
    assert asked == [LEGAL]  # the page's Home tab refresh is queued (debounced, one per person)
    with freeze_time("2026-11-30 12:05:00"):
        pages.acknowledge(core, LEGAL, incident_id=1)
        assert home_view(core, LEGAL).pages == []

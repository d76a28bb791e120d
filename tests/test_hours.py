"""Responder hours (bot.hours): incident.io's continuity rule, the working / late / night split on
each person's own clock across midnight (and a DST change), one person's overlapping incidents
counted once, per-role totals that never name a person, and the caller's own hours in
`/incident wellbeing`. Core only (a migrated database, freezegun); SQLite — nothing here depends
on the database beyond plain reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import hours, wellbeing
from bot.config import OrgConfig
from bot.db.engine import Database
from bot.db.models import Incident
from bot.render import Renderer
from bot.settings import SHIPPED_TEMPLATES
from bot.timeline.store import append

LA = ZoneInfo("America/Los_Angeles")
SPEC, LEAD, LEGAL = "U0SPEC001", "U0LEAD001", "U0LEGAL01"
T = datetime(2026, 11, 30, 10, 11, tzinfo=UTC)
MIN = timedelta(minutes=1)


def minutes(work) -> float:
    return sum((b - a).total_seconds() for a, b in work) / 60


def test_a_lone_action_counts_ten_minutes_and_actions_within_20_minutes_are_one_stretch():
    assert minutes(hours.spans([T])) == 10
    assert minutes(hours.spans([T, T + 4 * MIN])) == 14  # incident.io's own example: 10:11 and 10:15
    assert minutes(hours.spans([T, T + 20 * MIN])) == 30  # at 20 minutes still continuous
    assert minutes(hours.spans([T, T + 21 * MIN])) == 20  # past it: two lone actions
    assert minutes(hours.spans([T + 5 * MIN, T, T + 2 * MIN])) == 15  # order does not matter
    assert hours.spans([]) == []


def test_hours_across_midnight_split_on_the_persons_own_clock():
    # 22:50 to 00:10 Los Angeles time on 29/30 November (PST, UTC-8), then 07:55 to 08:05.
    start = datetime(2026, 11, 29, 22, 50, tzinfo=LA).astimezone(UTC)
    night_work = [(start, start + 80 * MIN)]
    morning = datetime(2026, 11, 30, 7, 55, tzinfo=LA).astimezone(UTC)
    split = hours.split(night_work + [(morning, morning + 10 * MIN)], LA)
    assert (split.working, split.late, split.night) == (5 * 60, 10 * 60, (70 + 5) * 60)
    # The same instants on a UTC clock: 06:50–08:10 and 15:55–16:05.
    utc = hours.split(night_work + [(morning, morning + 10 * MIN)], ZoneInfo("UTC"))
    assert (utc.working, utc.late, utc.night) == (20 * 60, 0, 70 * 60)
    # 18:30 to 19:30 then 22:45 to 23:15 local: the bands' edges at 19 and 23.
    evening = datetime(2026, 11, 30, 18, 30, tzinfo=LA).astimezone(UTC)
    late = datetime(2026, 11, 30, 22, 45, tzinfo=LA).astimezone(UTC)
    edges = hours.split([(evening, evening + 60 * MIN), (late, late + 30 * MIN)], LA)
    assert (edges.working, edges.late, edges.night) == (30 * 60, 30 * 60 + 15 * 60, 15 * 60)


def test_the_split_is_cut_at_real_instants_over_a_dst_change():
    # 8 March 2026, clocks in Los Angeles go from 02:00 to 03:00: 01:30 PST to 08:30 PDT is 6 hours.
    start = datetime(2026, 3, 8, 1, 30, tzinfo=LA).astimezone(UTC)
    split = hours.split([(start, start + timedelta(hours=6))], LA)
    assert (split.night, split.working) == (5.5 * 3600, 0.5 * 3600)


@pytest.fixture
def core(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'hours.db'}")
    db.upgrade()
    zones = {SPEC: "America/Los_Angeles", LEAD: "UTC", LEGAL: "Europe/Paris"}
    core = SimpleNamespace(
        db=db, config=OrgConfig.model_validate({"roles": {"incident_lead": {"users": [LEAD]}}}),
        render=Renderer(SHIPPED_TEMPLATES), dispatcher=SimpleNamespace(kick=lambda: None),
        gateway=SimpleNamespace(user=lambda u: {"id": u, "tz": zones.get(u)}))
    with db.tx() as session:
        for number in (1, 2):
            session.add(Incident(id=number, playbook_id="csam-report", title="Hash match", severity="sev1",
                                 declared_at=T - timedelta(days=1), declared_by=LEAD))
    yield core
    db.dispose()


def act(core, incident: int, actor: str | None, at: datetime, kind: str = "note") -> None:
    with freeze_time(at), core.db.tx() as session:
        append(session, incident, kind, "something happened", actor=actor)


def test_a_persons_hours_come_from_the_timeline_and_overlapping_incidents_count_once(core):
    # Chloe (Los Angeles) works INC-1 from 23:50 to 00:05 her time, and INC-2 at 23:55 alongside.
    base = datetime(2026, 11, 29, 23, 50, tzinfo=LA).astimezone(UTC)
    act(core, 1, SPEC, base)
    act(core, 1, SPEC, base + 15 * MIN)
    act(core, 2, SPEC, base + 5 * MIN)
    act(core, 1, None, base + 30 * MIN, "reminder")  # the bot: nobody's time
    act(core, 1, "api:case-tool", base + 30 * MIN)  # a tool: nobody's time
    act(core, 1, LEAD, base)
    day = datetime(2026, 11, 29, tzinfo=LA).astimezone(UTC), datetime(2026, 12, 1, tzinfo=LA).astimezone(UTC)
    with core.db.read() as session:
        mine = hours.person_hours(session, SPEC, LA, *day)
        everyone = hours.people_hours(session, *day, zone_of=lambda u: LA)
    assert mine.total == 25 * 60 and mine.night == 25 * 60  # 23:50–00:15, INC-2's 23:55–00:05 inside it
    assert set(everyone) == {SPEC, LEAD}
    with freeze_time(base + 20 * MIN):  # 00:10 on 30 November, her time: today began at midnight
        view = wellbeing.my_wellbeing(core, SPEC)
    assert view.hours_today == {"working": "0m", "late": "0m", "night": "15m", "total": "15m"}
    assert view.hours_week["total"] == "15m"  # her week began on Monday 30 November too
    text = core.render.text("slack/wellbeing.txt.j2", view=view)
    assert "Your time on incidents" in text and "night 15m" in text


def test_role_totals_never_name_a_person():
    events = [(SPEC, T), (SPEC, T + 4 * MIN), (LEAD, T), (LEGAL, T), ("api:x", T), (None, T)]
    roles = {SPEC: ["Child-safety specialist", "Incident lead"], LEAD: ["Incident lead"]}
    rows = hours.role_hours(events, roles, lambda u: ZoneInfo("UTC"))
    by = {r.role: r for r in rows}
    assert list(by) == ["Child-safety specialist", "Incident lead", "Other participants", "All responders"]
    assert by["Incident lead"].people == 2 and by["Incident lead"].hours.total == (14 + 10) * 60
    assert by["Other participants"].people == 1 and by["All responders"].hours.total == (14 + 10 + 10) * 60
    assert by["All responders"].hours.text() == {"working": "34m", "late": "0m", "night": "0m", "total": "34m"}
    assert not any(user in repr(rows) for user in (SPEC, LEAD, LEGAL))


@settings(max_examples=60, deadline=None)
@given(start=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31)),
       length=st.integers(min_value=0, max_value=3 * 24 * 60),
       zone=st.sampled_from(["UTC", "America/Los_Angeles", "Europe/London", "Asia/Kolkata", "Australia/Lord_Howe",
                             "America/Santiago", "Pacific/Chatham"]))
def test_the_bands_add_up_to_the_time_worked_in_any_zone(start, length, zone):
    begin = start.replace(tzinfo=UTC)
    split = hours.split([(begin, begin + timedelta(minutes=length))], ZoneInfo(zone))
    assert split.total == pytest.approx(length * 60) and min(split.working, split.late, split.night) >= 0

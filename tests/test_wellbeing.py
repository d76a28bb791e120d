"""Responder wellbeing in the core, with time moved by freezegun: logging what was viewed, the
daily and weekly sums in the person's own time zone across midnight, the break nudge, the 80 %
and 100 % nudges once each, the lead's notice without figures, retention, and picking who is
assigned. Runs on SQLite and PostgreSQL (`db_url`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from bot import wellbeing
from bot.config import OrgConfig
from bot.db.engine import Database
from bot.db.models import (
    Exposure,
    Incident,
    RoleAssignment,
    Task,
    TimelineEvent,
    WellbeingBreak,
    WellbeingNudge,
)
from bot.errors import InvalidInput
from bot.housekeeping import purge_wellbeing
from bot.render import Renderer
from bot.settings import SHIPPED_TEMPLATES

SPEC, SPEC2, SPEC3, LEAD = "U0SPEC001", "U0SPEC002", "U0SPEC003", "U0LEAD001"
ZONES = {SPEC: "America/Los_Angeles", SPEC2: "Asia/Kolkata", SPEC3: "UTC", LEAD: "America/New_York"}
record = wellbeing.record_viewing.__wrapped__  # the policy is tested in test_policy; here, the ledger


@dataclass
class FakeGateway:
    zones: dict[str, str] = field(default_factory=lambda: dict(ZONES))

    def user(self, user_id: str):
        return {"id": user_id, "tz": self.zones.get(user_id)} if user_id in self.zones else None


@pytest.fixture
def core(db_url):
    db = Database(db_url)
    db.upgrade()
    config = OrgConfig.model_validate({"roles": {
        "incident_lead": {"users": [LEAD]}, "child_safety_specialist": {"users": [SPEC, SPEC2, SPEC3]}}})
    core = SimpleNamespace(db=db, config=config, render=Renderer(SHIPPED_TEMPLATES), gateway=FakeGateway(),
                           dispatcher=SimpleNamespace(kick=lambda: None))
    with db.tx() as session:
        for number in (1, 2):
            session.add(Incident(id=number, playbook_id="csam-report", title="Hash match", severity="sev1",
                                 declared_at=datetime(2026, 1, 1, tzinfo=UTC), declared_by=LEAD))
        session.flush()
        for number in (1, 2):
            session.add(RoleAssignment(incident_id=number, role="incident_lead", user_id=LEAD,
                                       assigned_at=datetime(2026, 1, 1, tzinfo=UTC)))
    yield core
    db.dispose()


def dms(core, user: str) -> list[str]:
    with core.db.read() as session:
        return [t.payload["text"] for t in session.scalars(select(Task).where(Task.kind == "post").order_by(Task.id))
                if t.payload.get("channel") == user]


def figures(core, user: str, now: datetime):
    with core.db.read() as session:
        return wellbeing.figures(core, session, user, ZoneInfo(ZONES[user]), now)


def test_logging_writes_the_custody_fact_and_the_private_ledger_apart(core):
    with freeze_time("2026-11-30 18:00:00"):
        outcome = record(core, 1, SPEC, "25m", items="40", kind="image")
    with core.db.read() as session:
        [event] = session.scalars(select(TimelineEvent).where(TimelineEvent.kind == "content_viewed"))
        [row] = session.scalars(select(Exposure))
    assert event.actor == SPEC and event.data == {"user": SPEC, "items": 40}
    assert "25" not in event.text and "image" not in event.text and "40 items" in event.text
    assert (row.user_id, row.incident_id, row.seconds, row.kind, row.items) == (SPEC, 1, 1500, "image", 40)
    assert row.at == datetime(2026, 11, 30, 18, tzinfo=UTC)
    assert outcome.details["today"] == "25m" and outcome.details["seq"] == event.seq


@pytest.mark.parametrize("args, field_name", [
    (("13h",), "duration"), (("0m",), "duration"), (("1.5h",), "duration"), (("",), "duration"),
    (("1h", "0"), "items"), (("1h", "100001"), "items"), (("1h", "-3"), "items"),
    (("1h", None, "pdf"), "kind"),
])
def test_bad_input_is_refused_and_nothing_is_written(core, args, field_name):
    with pytest.raises(InvalidInput) as refused:
        record(core, 1, SPEC, *args)
    assert field_name in refused.value.fields
    with core.db.read() as session:
        assert session.scalar(select(func.count(Exposure.id))) == 0
        assert session.scalar(select(func.count(TimelineEvent.id))) == 0


def test_day_and_week_are_the_persons_own_across_midnight(core):
    # Chloe is in Los Angeles (UTC-8 in winter): 07:30 UTC on Tuesday 1 Dec is 23:30 Monday 30 Nov there.
    with freeze_time("2026-12-01 07:30:00"):
        record(core, 1, SPEC, "1h")  # 22:30–23:30 local, Monday
    with freeze_time("2026-12-01 08:30:00"):
        record(core, 1, SPEC, "1h")  # 23:30–00:30 local: 30m Monday, 30m Tuesday
    monday_late = datetime(2026, 12, 1, 7, 59, tzinfo=UTC)
    tuesday = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert figures(core, SPEC, monday_late).today == 3600 + 1800  # Monday holds 1h and the first half
    seen = figures(core, SPEC, tuesday)
    assert seen.today == 1800  # only the half after local midnight
    assert seen.week == 7200  # Monday and Tuesday are the same local week
    # The same UTC instants for Dev in Kolkata (UTC+5:30): both fall on Tuesday 1 Dec, 13:00–14:00.
    with freeze_time("2026-12-01 08:30:00"):
        record(core, 1, SPEC2, "1h")
    assert figures(core, SPEC2, tuesday).today == 3600
    # A new local week starts on Monday: Chloe's Sunday 6 Dec viewing is last week from Monday 7 Dec.
    with freeze_time("2026-12-07 06:00:00"):  # Sunday 22:00 in Los Angeles
        record(core, 1, SPEC, "30m")
    assert figures(core, SPEC, datetime(2026, 12, 7, 7, 0, tzinfo=UTC)).week == 7200 + 1800
    assert figures(core, SPEC, datetime(2026, 12, 7, 9, 0, tzinfo=UTC)).week == 0


def test_without_a_time_zone_the_day_is_utcs(core):
    core.gateway.zones.pop(SPEC3)
    assert str(wellbeing.tz_of(core, SPEC3)) == "UTC"
    core.gateway.zones[SPEC3] = "Not/AZone"
    assert str(wellbeing.tz_of(core, SPEC3)) == "UTC"


def test_the_break_nudge_comes_once_per_stretch_and_a_break_resets_it(core):
    with freeze_time("2026-11-30 17:00:00"):
        record(core, 1, SPEC, "40m")
    assert dms(core, SPEC) == []
    with freeze_time("2026-11-30 17:25:00"):
        outcome = record(core, 1, SPEC, "20m")  # 60m in a row
    assert outcome.details["break_due"]
    [nudge] = dms(core, SPEC)
    assert "break" in nudge and "1h 00m in a row" in nudge
    with freeze_time("2026-11-30 17:35:00"):
        record(core, 1, SPEC, "5m")
    assert len(dms(core, SPEC)) == 1  # once for this stretch
    with freeze_time("2026-11-30 17:40:00"):
        wellbeing.take_break(core, SPEC)  # 15m by default
    with freeze_time("2026-11-30 17:45:00"):
        assert figures(core, SPEC, datetime(2026, 11, 30, 17, 45, tzinfo=UTC)).on_break_until is not None
    with freeze_time("2026-11-30 18:56:00"):
        record(core, 1, SPEC, "1h")  # a new stretch since the break ended at 17:55
    assert len(dms(core, SPEC)) == 2


def test_80_and_100_percent_nudges_once_each_and_the_lead_gets_no_figures(core):
    with freeze_time("2026-11-30 16:00:00"):
        wellbeing.take_break(core, SPEC, "1m")  # (keeps the break nudge out of this test's way)
    entries = [("16:30", "3h"), ("17:00", "12m"), ("17:10", "10m"), ("17:30", "20m"), ("17:50", "10m")]
    for at, length in entries[:2]:  # 3h12m = 80 % of 4h
        with freeze_time(f"2026-11-30 {at}:00"):
            record(core, 1, SPEC, length)
    own = [t for t in dms(core, SPEC) if "limit" in t]
    assert len(own) == 1 and "near today's viewing limit" in own[0] and "3h 12m of 4h 00m" in own[0]
    with freeze_time("2026-11-30 17:10:00"):
        record(core, 1, SPEC, "10m")
    assert len([t for t in dms(core, SPEC) if "limit" in t]) == 1  # 80 % said once
    assert dms(core, LEAD) == []
    with freeze_time("2026-11-30 17:30:00"):
        outcome = record(core, 1, SPEC, "20m")  # 3h42m… not yet
    assert not outcome.details["at_limit"]
    with freeze_time("2026-11-30 17:50:00"):
        outcome = record(core, 1, SPEC, "18m")  # 4h00m: reached at its value
    assert outcome.details["at_limit"]
    own = [t for t in dms(core, SPEC) if "limit" in t]
    assert len(own) == 2 and "reached today's viewing limit" in own[1]
    [notice] = dms(core, LEAD)
    assert f"<@{SPEC}>" in notice and "no more viewing work today" in notice and "INC-1" in notice
    assert not any(ch.isdigit() for ch in notice.replace(SPEC, "").replace("INC-1", ""))  # no figures
    with freeze_time("2026-11-30 18:00:00"):
        record(core, 1, SPEC, "5m")
    assert len([t for t in dms(core, SPEC) if "limit" in t]) == 2 and len(dms(core, LEAD)) == 1  # once each
    # The next local day starts afresh (Los Angeles: 08:00 UTC is midnight).
    with freeze_time("2026-12-01 09:00:00"):
        assert figures(core, SPEC, datetime(2026, 12, 1, 9, tzinfo=UTC)).today == 0


def test_reaching_the_limit_at_once_says_it_once(core):
    with freeze_time("2026-11-30 20:00:00"):
        record(core, 1, SPEC3, "4h")
    assert [t for t in dms(core, SPEC3) if "limit" in t and "near" in t] == []
    assert len([t for t in dms(core, SPEC3) if "reached today's viewing limit" in t]) == 1
    assert len(dms(core, LEAD)) == 1


def test_retention_deletes_old_rows_only(core):
    with freeze_time("2026-08-01 12:00:00"):
        record(core, 1, SPEC3, "4h")  # nudges too
        wellbeing.take_break(core, SPEC3)
    with freeze_time("2026-11-29 12:00:00"):
        record(core, 1, SPEC3, "10m")
    with freeze_time("2026-11-30 12:00:00"):
        assert purge_wellbeing(core.db, core.config.wellbeing.retention) >= 3
    with core.db.read() as session:
        assert [r.seconds for r in session.scalars(select(Exposure))] == [600]
        assert session.scalar(select(func.count(WellbeingBreak.id))) == 0
        assert session.scalar(select(func.count(WellbeingNudge.id))) == 0
        # The custody facts stay: the timeline is never trimmed.
        assert session.scalar(select(func.count(TimelineEvent.id)).where(TimelineEvent.kind == "content_viewed")) == 2


def test_pick_spreads_the_load(core):
    now = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)
    tzs = {u: ZoneInfo(ZONES[u]) for u in (SPEC, SPEC2, SPEC3)}
    with freeze_time(now - timedelta(hours=2)):
        record(core, 1, SPEC, "1h")
        record(core, 1, SPEC3, "30m")
    with core.db.read() as session:
        user, why = wellbeing.pick(core, session, [SPEC, SPEC2, SPEC3], tzs, now)
    assert user == SPEC2 and "least viewing this week" in why and not any(c.isdigit() for c in why.split("of")[0])
    with freeze_time(now - timedelta(minutes=5)):
        wellbeing.take_break(core, SPEC2, "30m")
    with core.db.read() as session:
        assert wellbeing.pick(core, session, [SPEC, SPEC2, SPEC3], tzs, now)[0] == SPEC3
    with freeze_time(now - timedelta(minutes=1)):
        record(core, 1, SPEC3, "4h")  # at the limit
    with core.db.read() as session:
        user, why = wellbeing.pick(core, session, [SPEC, SPEC2, SPEC3], tzs, now)
        assert user == SPEC and why.startswith("the only one")
        seen = wellbeing.figures(core, session, SPEC3, tzs[SPEC3], now)
        assert wellbeing.unavailable(seen) == "has reached today's viewing limit"


def test_ties_go_to_the_least_recently_assigned(core):
    now = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)
    tzs = {u: ZoneInfo(ZONES[u]) for u in (SPEC, SPEC2)}
    with core.db.tx() as session:
        session.add(RoleAssignment(incident_id=2, role="child_safety_specialist", user_id=SPEC, assigned_at=now))
        session.add(RoleAssignment(incident_id=1, role="child_safety_specialist", user_id=SPEC2,
                                   assigned_at=now - timedelta(days=1)))
    with core.db.read() as session:
        user, why = wellbeing.pick(core, session, [SPEC, SPEC2], tzs, now)
    assert user == SPEC2 and "assigned least recently" in why


def test_the_stewards_report_hides_groups_under_three(db_url, tmp_path):
    """Through the CLI: team rows only for groups of three or more (no row at all for the pair),
    responder hours by band, breaks, no person unless --people, and an SVG chart in the HTML."""
    import json
    import os
    from xml.etree import ElementTree

    import yaml
    from click.testing import CliRunner

    from bot.timeline.store import append
    from runtime import cli
    from tests.support import DEMO_CONFIG

    team = ["U0VIEW001", "U0VIEW002", "U0VIEW003", "U0VIEW004"]
    pair = ["U0LERESP1", "U0LERESP2"]
    config = tmp_path / "safeguard.yaml"
    org = yaml.safe_load(DEMO_CONFIG.read_text())
    org["roles"]["child_safety_specialist"]["users"] = team
    org["roles"]["le_response"]["users"] = pair
    policy = ["U0POLICY1", "U0POLICY2", "U0POLICY3"]  # three act, one of them viewed
    org["roles"]["policy"]["users"] = policy
    org["wellbeing"] = {"viewers": ["child_safety_specialist", "le_response"], "stewards": ["U0WELL001"]}
    config.write_text(yaml.safe_dump(org))
    db = Database(db_url)
    db.upgrade()
    day = datetime(2026, 11, 10, 18, 0, tzinfo=UTC)
    with db.tx() as session:
        for n, user in enumerate(team):
            session.add(Exposure(user_id=user, seconds=3600 * (n + 1), at=day))  # 1h, 2h, 3h, 4h
        session.add(Exposure(user_id=team[3], seconds=3600, at=day + timedelta(days=1)))
        for user in pair:
            session.add(Exposure(user_id=user, seconds=5 * 3600, at=day))
        session.add(WellbeingBreak(user_id=team[0], started_at=day, ends_at=day + timedelta(minutes=15)))
        session.add(Exposure(user_id=team[0], seconds=3600, at=day - timedelta(days=60)))  # outside the period
        session.add(Exposure(user_id=policy[0], seconds=1800, at=day))
        session.add(Incident(id=1, playbook_id="csam-report", title="Hash match", severity="sev1",
                             declared_at=day, declared_by=team[0]))
    # Three specialists act on the incident at 23:30 UTC (night: the CLI has no Slack, so UTC
    # clocks): 10 minutes each; one of them again at 23:45, one stretch of 25 minutes.
    for user, at in [(team[0], "23:30"), (team[1], "23:30"), (team[2], "23:30"), (team[0], "23:45"),
                     (pair[0], "12:00"), *((user, "12:30") for user in policy)]:
        with freeze_time(f"2026-11-10 {at}:00"), db.tx() as session:
            append(session, 1, "note", "worked", actor=user)
    db.dispose()
    env = {k: None for k in os.environ if k.startswith(("SLACK_", "SAFEGUARD_", "DATABASE_URL"))}
    env.update(DATABASE_URL=db_url, SAFEGUARD_CONFIG=str(config), PD_ROUTING_KEY="test0routing0key0000000000000000",
               SMTP_URL="smtp://127.0.0.1:1")

    def run(*args):  # in-process (a subprocess per format would cost seconds each)
        result = CliRunner().invoke(cli.main, ["wellbeing", "--from", "2026-11-01", "--to", "2026-11-30", *args],
                                    env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    report = json.loads(run("--format", "json"))
    rows = {row["group"]: row for row in report["rows"]}
    assert set(rows) == {"everyone", "Child-safety specialist", "Policy"}  # the pair gets no row at all
    assert "Law-enforcement response" in report["left_out"] and "people" not in report
    assert rows["everyone"]["people"] == 9 and rows["everyone"]["hours"] == 21.5
    # Three in Policy acted, one of them viewed: the group's row, without viewing figures.
    assert rows["Policy"]["viewing_people"] == 1 and rows["Policy"]["hours"] is None
    assert rows["Policy"]["working_hours"] == 0.5
    specialists = rows["Child-safety specialist"]
    assert specialists["people"] == 4 and specialists["viewing_people"] == 4 and specialists["hours"] == 11.0
    assert specialists["people_over_daily"] == 1 and specialists["days_over_daily"] == 1  # the 4h day
    assert specialists["breaks"] == 1
    assert (specialists["night_hours"], specialists["working_hours"]) == (round(45 / 60, 1), 0.0)  # 25 + 10 + 10 min
    assert rows["everyone"]["working_hours"] == 0.7  # the pair's 10 minutes count in everyone's total
    markdown = run()
    assert "| Child-safety specialist | 4 | 4 | 11.0 |" in markdown and "Law-enforcement response |" not in markdown
    assert "| Policy | 3 | 1 | – | – |" in markdown
    assert "Not shown (fewer than 3 people): Law-enforcement response." in markdown
    for user in team + pair + policy:  # never a person
        assert user not in markdown
    html = run("--format", "html")
    assert "<svg" in html and "<script" not in html and "http" not in html.replace('"http://www.w3.org/2000/svg"', "")
    assert html.count("<td>Law-enforcement response") == 0 and "Not shown (fewer than 3 people)" in html
    svg = ElementTree.fromstring(html[html.index("<svg"):html.index("</svg>") + 6])  # well-formed
    bars = [r for r in svg.iter("{http://www.w3.org/2000/svg}rect") if r.find("{http://www.w3.org/2000/svg}title") is not None]
    assert {r.find("{http://www.w3.org/2000/svg}title").text for r in bars} >= {"night: 0.8 h", "viewing: 11.0 h"}
    assert not any(user in html for user in team + pair + policy)
    stewards = run("--people", "--format", "csv")
    assert stewards.splitlines()[0].startswith("group,people,viewing_people,hours")
    assert "Law-enforcement response" not in stewards.split("\n\n")[0]
    assert f"{team[0]},0.0,0.0,0.4,0.4,1.0,0,1" in stewards  # a steward's view: each person's own figures

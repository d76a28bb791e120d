"""A set of incidents with known timings, made through the core under freezegun, for the report
tests and their hand-computed figures (tests/test_report.py, tests/test_report_web.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from freezegun import freeze_time

LEAD, SPEC, LEGAL = "U0LEAD001", "U0SPEC001", "U0LEGAL01"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CONFIRM = {"case_id": "CASE-1", "category": "A1", "human_viewed": "all"}
SUMMARY = "Secret summary words"  # must never reach a report
NOTE = "A private note that names nobody"  # nor this


def build_core(database_url: str, *, migrate: bool = False):
    from bot.settings import Settings
    from runtime.app import build_core as make
    from tests.support import DEMO_CONFIG

    return make(Settings(database_url=database_url, config_path=DEMO_CONFIG), slack=False, migrate=migrate)


def make_incidents(core) -> None:
    """Incidents 1–4 in November 2026, 5 in October (only its preservation hold counts)."""
    from bot.clocks.firing import fire_due
    from bot.incidents import lifecycle, steps
    from bot.incidents.declare import declare
    from bot.paging import service as pages

    def at(when: str):
        return freeze_time(when)

    def done(number, step, who, when, **values):
        with at(when):
            steps.complete(core, number, step, who, values)

    # 1: everything on time.
    with at("2026-11-02 09:00:00"):
        declare(core, playbook_id="csam-report", summary=SUMMARY, actor=LEAD)
    done(1, "confirm", SPEC, "2026-11-02 09:30:00", **CONFIRM)  # T0 after 30m
    done(1, "remove", SPEC, "2026-11-02 10:00:00", account_action="banned", content_count="3")
    done(1, "ncmec-report", LEAD, "2026-11-02 11:30:00", report_id="111")  # 2h after T0
    with at("2026-11-02 12:00:00"):
        pages.page_by_hand(core, 1, LEAD, "legal", "please look")
        lifecycle.add_note(core, 1, LEAD, NOTE)
    with at("2026-11-02 12:10:00"):
        pages.acknowledge(core, LEGAL, incident_id=1)  # 10m
    done(1, "hash-share", SPEC, "2026-11-02 12:00:00", hash_count="3", programmes="NCMEC")
    done(1, "preservation-hold", LEGAL, "2026-11-03 09:00:00", hold_ref="H-1")

    # 2: late confirmation and a late report; a skip; two clocks run out.
    with at("2026-11-10 08:00:00"):
        declare(core, playbook_id="csam-report", summary=SUMMARY, actor=LEAD)
    done(2, "confirm", SPEC, "2026-11-10 10:00:00", **CONFIRM)  # T0 after 2h (1h clock: late)
    with at("2026-11-10 10:30:00"):
        steps.skip(core, 2, "remove", SPEC, "duplicate of a private thing")
    with at("2026-11-10 11:00:00"):
        pages.page_by_hand(core, 2, LEAD, "legal", "please look")
    with at("2026-11-10 11:40:00"):
        pages.acknowledge(core, LEGAL, incident_id=2)  # 40m
    done(2, "ncmec-report", LEAD, "2026-11-10 16:00:00", report_id="222")  # 6h after T0 (4h: late)

    # 3: closed anyway with the report not filed; an escalated page, withdrawn at close.
    with at("2026-11-20 07:00:00"):
        declare(core, playbook_id="csam-report", summary=SUMMARY, actor=LEAD)
    done(3, "confirm", SPEC, "2026-11-20 07:10:00", **CONFIRM)  # T0 after 10m
    with at("2026-11-20 07:20:00"):
        pages.page_by_hand(core, 3, LEAD, "legal", "please look")
    with at("2026-11-20 07:36:00"):
        fire_due(core, datetime(2026, 11, 20, 7, 36, tzinfo=UTC))  # escalates to level 2
    with at("2026-11-20 08:00:00"):
        lifecycle.close(core, 3, LEAD, anyway="the platform cannot report this one")

    # 4: another playbook, sev2, nothing done: its two clocks from the declaration run out.
    with at("2026-11-25 10:00:00"):
        declare(core, playbook_id="le-emergency-request", summary=SUMMARY, actor=LEAD, severity="sev2")


def make_october(core) -> None:
    """5: declared before the period; its report's preservation hold is still running."""
    from bot.incidents import steps
    from bot.incidents.declare import declare

    with freeze_time("2026-10-01 09:00:00"):
        declare(core, playbook_id="csam-report", summary=SUMMARY, actor=LEAD)
    with freeze_time("2026-10-01 09:05:00"):
        steps.complete(core, 5, "confirm", SPEC, CONFIRM)
    with freeze_time("2026-10-01 10:00:00"):
        steps.complete(core, 5, "ncmec-report", LEAD, {"report_id": "555"})

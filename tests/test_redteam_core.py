"""Red team, without Slack (a Core on a migrated SQLite file): what the features of the fifth
merge (announcements, repeat prompts, the Home tab, status updates, the API's core) tell someone
who should not learn it. Cheap on purpose: no bot is served."""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import select

from bot import tokens
from bot.db.models import Task
from bot.incidents.declare import declare
from bot.incidents.repeats import find_repeat, join_repeat
from bot.incidents.updates import post_status_update
from bot.settings import Settings
from runtime.app import build_core
from tests.support import DEMO_CONFIG

LEAD, SPEC, OUTSIDER, GENERAL = "U0LEAD001", "U0SPEC001", "U0OUTSID1", "C0GENERAL"
ANNOUNCE = "C0ANNOUNC"
SUMMARY = "Hash match on upload 8812 see https://cases.example/881 CASE-4410"
HOSTILE = "<!channel> <@U0LEAD001> <https://evil.example|click> *bold* &amp;"


@pytest.fixture(params=["sqlite"])
def db_url(request, tmp_path, _migrated_sqlite):
    """The policy is the core's, whatever the database: a copy of the migrated SQLite template."""
    target = tmp_path / "safeguard.db"
    shutil.copyfile(_migrated_sqlite, target)
    yield f"sqlite:///{target}"


@pytest.fixture
def core(db_url, tmp_path):
    config = tmp_path / "safeguard.yaml"
    config.write_text(DEMO_CONFIG.read_text() + f"\nannouncements:\n  channel: {ANNOUNCE}\n")
    core = build_core(Settings(database_url=db_url, config_path=config), slack=False, migrate=False)
    core.dispatcher.kick = lambda: None
    yield core
    core.db.dispose()


def posts_to(core, channel: str) -> list[str]:
    with core.db.read() as session:
        return [t.payload["text"] for t in session.scalars(select(Task).where(Task.kind == "post").order_by(Task.id))
                if t.payload.get("channel") == channel]


def test_the_announcement_of_a_restricted_incident_names_no_one(core):
    declared = declare(core, playbook_id="csam-report", summary=SUMMARY, actor=LEAD, channel_id=GENERAL)
    post_status_update(core, declared.number, LEAD, "Situation " + HOSTILE, "Filing " + HOSTILE)
    lines = posts_to(core, ANNOUNCE)
    assert len(lines) == 2, lines
    for line in lines:
        assert "8812" not in line and "CASE-4410" not in line and "Situation" not in line and "Filing" not in line
        assert "<!channel>" not in line and "evil" not in line
        # The lead of a restricted incident is not named to the whole announcement channel.
        assert LEAD not in line, line


def test_a_status_update_is_escaped_in_the_incident_channel(core):
    declared = declare(core, playbook_id="le-emergency-request", summary="Police request 55", actor=LEAD,
                       channel_id=GENERAL)
    post_status_update(core, declared.number, LEAD, HOSTILE, HOSTILE)
    with core.db.read() as session:
        texts = [json.dumps(t.payload) for t in session.scalars(select(Task)) if "status update" in json.dumps(t.payload)]
    assert texts and all("<!channel>" not in t and "<https://evil" not in t and "<@U0LEAD001> <" not in t
                         for t in texts), texts


def test_joining_a_restricted_repeat_tells_an_outsider_no_lead(core):
    declared = declare(core, playbook_id="csam-report", summary=SUMMARY, actor=LEAD, channel_id=GENERAL)
    # Someone who may declare (anyone, in the demo) but holds none of its roles.
    repeat = find_repeat(core, "csam-report", "again CASE-4410", OUTSIDER)
    assert repeat is not None and repeat.summary is None and repeat.lead is None
    outcome = join_repeat(core, incident_id=declared.number, actor=OUTSIDER, playbook_id="csam-report",
                          summary="again CASE-4410")
    assert outcome.kind == "repeat_reported"
    assert not outcome.details.get("lead"), outcome.details


def test_the_home_tab_shows_a_restricted_incident_to_a_hand_added_member_as_a_number(core):
    from sqlalchemy import update

    from bot.db.models import Incident
    from bot.home import home_view, render_home
    from bot.incidents.people import joined
    from bot.wellbeing import log_exposure

    csam = declare(core, playbook_id="csam-report", summary=SUMMARY, actor=LEAD, channel_id=GENERAL)
    le = declare(core, playbook_id="le-emergency-request", summary="Police " + HOSTILE, actor=LEAD,
                 channel_id=GENERAL)
    with core.db.tx() as session:
        for number in (csam.number, le.number):
            session.execute(update(Incident).where(Incident.id == number).values(channel_id=f"C0INC000{number}"))
    joined(core, f"C0INC000{csam.number}", OUTSIDER, LEAD)  # added by hand: no role, so not let in
    joined(core, f"C0INC000{le.number}", OUTSIDER, LEAD)
    log_exposure(core, SPEC, SPEC, "40m", kind="image", incident_id=csam.number)
    for user in (OUTSIDER, LEAD):
        shown = json.dumps(render_home(core, home_view(core, user)), ensure_ascii=False)
        assert "8812" not in shown or user == LEAD, shown
        assert f"C0INC000{csam.number}" not in shown or user == LEAD
        assert "<!channel>" not in shown and "<https://evil" not in shown, shown
        assert "40m" not in shown and "40 min" not in shown  # the specialist's viewing is theirs alone
    mine = json.dumps(render_home(core, home_view(core, SPEC)), ensure_ascii=False)
    assert "40" in mine and "only you see this" in mine


def test_a_token_cannot_skip_a_step_that_carries_a_legal_clock(core):
    from bot.errors import Forbidden
    from bot.incidents import steps

    tokens.create(core.db, "case-tool", ["update"])
    n = declare(core, playbook_id="csam-report", summary=SUMMARY, actor=LEAD, channel_id=GENERAL).number
    steps.complete(core, n, "confirm", SPEC, {"case_id": "CASE-1", "category": "A1", "human_viewed": "all"})
    # The CyberTipline report (18 U.S.C. 2258A): skipping it would stop its legal clocks unseen.
    with pytest.raises(Forbidden, match="person"):
        steps.skip(core, n, "ncmec-report", "api:case-tool", "not needed")
    assert steps.skip(core, n, "hash-share", "api:case-tool", "no new hashes").kind
    steps.skip(core, n, "ncmec-report", LEAD, "filed by the partner platform, report 99")  # a person still may


def test_a_guessable_id_does_not_open_a_private_incident_but_a_hash_does(core):
    """Trying CASE-100, CASE-101 … must not let anyone who may declare into a private channel;
    the same hash (the same material) or the same summary still joins."""
    from bot.db.models import Participant

    digest = "a" * 64
    declared = declare(core, playbook_id="imminent-harm", summary=f"Threat in chat CASE-100 {digest}",
                       actor=LEAD, channel_id=GENERAL)

    def member(user: str) -> bool:
        with core.db.read() as session:
            return session.scalars(select(Participant).where(Participant.incident_id == declared.number,
                                                             Participant.user_id == user)).first() is not None

    guessed = join_repeat(core, incident_id=declared.number, actor=OUTSIDER, playbook_id="imminent-harm",
                          summary="something about CASE-100")
    assert guessed.kind == "repeat_reported" and not member(OUTSIDER)
    held = join_repeat(core, incident_id=declared.number, actor=OUTSIDER, playbook_id="imminent-harm",
                       summary=f"same image {digest.upper()}")
    assert held.kind == "repeat_joined" and member(OUTSIDER)

"""Playbooks: the seven shipped ones, the rules, and problems that name file, line and field.
Pure unit tests: no Slack, no database."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.config import load_config
from bot.playbooks import (
    Field,
    Playbook,
    collect_playbooks,
    load_playbooks,
    validate_playbook,
)
from bot.yamlsrc import ConfigError, load_yaml

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "playbooks"
DEMO = ROOT / "bot" / "demo" / "safeguard.yaml"
DATA = Path(__file__).resolve().parent / "data"
BROKEN = DATA / "playbooks-broken"
ROLES = ["incident_lead", "specialist", "legal"]  # those of tests/data/org.yaml

SEVEN = [
    "csam-report", "sextortion-minor", "grooming", "imminent-harm", "trafficking",
    "viral-spread", "le-emergency-request",
]


def marked_line(path: Path) -> int:
    """The line of a fixture marked ``# <-``: where its mistake must be reported."""
    lines = [n for n, text in enumerate(path.read_text().splitlines(), 1) if "# <-" in text]
    assert len(lines) == 1, path
    return lines[0]


@pytest.fixture(scope="module")
def shipped() -> dict[str, Playbook]:
    return load_playbooks(SHIPPED, load_config(DEMO))


def timer(playbook: Playbook, step_id: str, kind: str, target: str):
    matches = [t for t in playbook.step(step_id).timers if t.kind == kind and t.target == target]
    assert len(matches) == 1, (playbook.id, step_id, kind, target)
    return matches[0]


# --- the shipped playbooks -------------------------------------------------------------------


def test_the_seven_playbooks_load_against_the_demo_config(shipped):
    assert sorted(shipped) == sorted(SEVEN)


@pytest.mark.parametrize("playbook_id", SEVEN)
def test_shipped_playbook_conventions(shipped, playbook_id):
    playbook = shipped[playbook_id]
    text = (SHIPPED / f"{playbook_id}.yaml").read_text()
    header = text.split("\nid:")[0]
    assert header.startswith("#") and "Legal basis" in header
    assert "LAW" in header and "INTERNAL" in header  # which durations are law, which targets
    assert "Never describe content" in header
    assert playbook.private is True
    assert playbook.steps[0].after == []  # the first step is T0, the case confirmed
    assert playbook.roles_used() <= set(playbook.roles) | {"legal", "eu_counsel"}
    for step in playbook.steps:
        assert step.owner in playbook.roles, (step.id, "the owner is invited")
        assert step.timers, (step.id, "every step has a time box")
        for item in step.timers:
            assert item.basis, (step.id, "every clock says whether it is law or a target")
    # The only hard legal period is the 1-year preservation, reviewed at day 330.
    for step in playbook.steps:
        for item in step.timers:
            if item.after >= timedelta(days=30):
                assert item.after == timedelta(days=330) and "2258A(h)" in item.basis


def test_csam_report(shipped):
    playbook = shipped["csam-report"]
    assert playbook.severity == "sev1"
    confirm = playbook.step("confirm")
    assert confirm.owner == "child_safety_specialist"
    assert confirm.field("category").options == ["A1", "A2", "B1", "B2"]
    assert confirm.field("human_viewed").options == ["all", "some", "none"]
    report = playbook.step("ncmec-report")
    assert report.after == ["confirm"]
    assert report.field("report_id").pattern == "^[0-9]+$"
    remind = timer(playbook, "ncmec-report", "remind", "owner")
    assert (remind.after, remind.from_) == (timedelta(hours=4), "confirm")
    page = timer(playbook, "ncmec-report", "page", "legal")
    assert (page.after, page.from_) == (timedelta(hours=24), "confirm")
    hold = playbook.step("preservation-hold")
    assert hold.owner == "legal" and hold.after == ["ncmec-report"]
    assert hold.field("hold_ref").type == "text"
    review = timer(playbook, "hold-review", "remind", "legal")
    assert (review.after, review.from_) == (timedelta(days=330), "ncmec-report")
    assert review.basis.startswith("law")
    assert playbook.has_step("hash-share") and playbook.has_step("remove")


def test_sextortion_minor(shipped):
    playbook = shipped["sextortion-minor"]
    triage = playbook.steps[0]
    assert "imminent-harm" in triage.title and "imminent-harm" in triage.help
    page = timer(playbook, "ncmec-report", "page", "legal")
    assert page.after == timedelta(hours=1)
    assert "enticement" in playbook.step("ncmec-report").title
    assert "Take It Down" in playbook.step("take-it-down").title
    assert "payment" in playbook.step("preserve").title
    assert playbook.step("offender-action").after == ["preserve"]


def test_grooming(shipped):
    playbook = shipped["grooming"]
    assert "imminent-harm" in playbook.steps[0].title
    assert playbook.step("linked-accounts").owner == "policy"
    assert not any("payment" in step.title for step in playbook.steps)  # like sextortion, without


def test_imminent_harm(shipped):
    playbook = shipped["imminent-harm"]
    decision = playbook.step("disclosure-decision")
    assert decision.owner == "legal" and "2702(b)(8)" in decision.title
    assert timer(playbook, "disclosure-decision", "remind", "owner").after == timedelta(minutes=15)
    assert timer(playbook, "disclosure-decision", "page", "legal").after == timedelta(minutes=30)
    dsa = timer(playbook, "dsa-notification", "page", "eu_counsel")
    assert (dsa.after, dsa.from_) == (timedelta(hours=2), "jurisdiction")
    record = playbook.step("record-disclosure")
    assert {"disclosed", "basis", "recipient"} <= {f.id for f in record.fields}


def test_trafficking(shipped):
    playbook = shipped["trafficking"]
    assert "1591" in playbook.step("ncmec-report").title
    assert playbook.step("le-liaison").owner == "le_response"
    assert playbook.step("preservation-hold").owner == "legal"
    assert playbook.step("linked-accounts").owner == "policy"


def test_viral_spread(shipped):
    playbook = shipped["viral-spread"]
    assert playbook.severity == "sev1"
    assert "block re-uploads" in playbook.step("hash-sweep").title
    assert "per user" in playbook.step("ncmec-reports").title
    assert playbook.step("holding-lines").owner == "comms"
    assert "status_updates" in (SHIPPED / "viral-spread.yaml").read_text()
    assert Field.accepts(playbook.step("ncmec-reports").field("report_ids"), "123, 456")


def test_le_emergency_request(shipped):
    playbook = shipped["le-emergency-request"]
    assert "calling back a known number" in playbook.step("verify").title
    assert timer(playbook, "assess", "page", "legal").after == timedelta(minutes=30)
    assert playbook.step("assess").owner == "legal"
    assert {"decision", "basis"} <= {f.id for f in playbook.step("record-decision").fields}


# --- helpers ---------------------------------------------------------------------------------


def test_helpers():
    playbook = load_playbooks(DATA / "playbooks-ok", load_config(DATA / "org.yaml"))["minimal"]
    assert playbook.step_ids == ["confirm", "report", "close-out"]
    assert playbook.step("report").owner == "incident_lead"
    with pytest.raises(KeyError):
        playbook.step("nope")
    assert [s.id for s in playbook.steps_after("confirm")] == ["report", "close-out"]
    assert [s.id for s in playbook.ready_steps([])] == ["confirm"]
    assert [s.id for s in playbook.ready_steps(["confirm"])] == ["report"]
    assert [s.id for s in playbook.ready_steps(["confirm", "report"])] == ["close-out"]
    timers = playbook.timers_from("confirm")
    assert [(step.id, index, t.kind) for step, index, t in timers] == [
        ("report", 0, "remind"), ("report", 1, "page"),
    ]
    assert playbook.timers_from("declared") == []
    step, _, remind = timers[0]
    assert remind.target == "owner" and remind.role(step) == "incident_lead"
    assert timers[1][2].role(step) == "legal"
    assert playbook.roles_used() == {"incident_lead", "specialist", "legal"}
    report_id = playbook.step("report").field("report_id")
    assert report_id.accepts("123") and not report_id.accepts("12a") and not report_id.accepts("")
    assert playbook.step("report").field("reviewer").accepts("")
    assert [f.id for f in playbook.step("report").required_fields] == ["report_id"]
    category = playbook.step("confirm").field("category")
    assert category.accepts("A1") and not category.accepts("B9")


def test_playbook_round_trips_through_its_dump(shipped):
    for playbook in shipped.values():
        dumped = playbook.model_dump(by_alias=True)
        assert Playbook.model_validate(dumped) == playbook
    dumped = shipped["csam-report"].model_dump(by_alias=True)
    assert dumped["steps"][2]["timers"][0]["after"] == "4h"
    assert dumped["steps"][2]["timers"][0]["from"] == "confirm"


def test_rules_apply_to_playbooks_built_in_code():
    with pytest.raises(ValidationError, match="unknown step 'b'"):
        Playbook(id="x", title="X", severity="sev1",
                 steps=[{"id": "a", "title": "A", "owner": "legal", "after": ["b"]}])


def test_roles_are_not_checked_without_configured_roles():
    path = BROKEN / "unknown-role.yaml"
    assert validate_playbook(load_yaml(path), None, stem=path.stem).step("review").owner == "legl"
    assert validate_playbook(load_yaml(path), [], stem=path.stem).id == "unknown-role"


# --- one broken fixture per kind of mistake --------------------------------------------------

KINDS = [
    ("unknown-key.yaml", "steps[0].ownr", "unknown key 'ownr'"),
    ("bad-duration.yaml", "steps[0].timers[0].after", "invalid duration '4 hours'"),
    ("unknown-role.yaml", "steps[1].owner", "unknown role 'legl' (known roles: incident_lead, legal, specialist)"),
    ("missing-after.yaml", "steps[1].after[1]", "unknown step 'confrim'"),
    ("missing-from.yaml", "steps[1].timers[0].from", "unknown step 'confrim'"),
    ("cycle.yaml", "steps[0].after[0]", "dependency cycle: first → third → second → first"),
    ("duplicate-step.yaml", "steps[1].id", "duplicate step id 'confirm'"),
    ("duplicate-field.yaml", "steps[0].fields[1].id", "duplicate field id 'report_id'"),
    ("bad-regex.yaml", "steps[0].fields[0].pattern", "invalid regular expression"),
    ("select-without-options.yaml", "steps[0].fields[0].options", "needs a non-empty list of options"),
    ("id-mismatch.yaml", "id", "must equal the file name"),
    ("syntax-error.yaml", "", "YAML syntax error"),
]


def test_every_kind_has_a_fixture():
    assert sorted(name for name, _, _ in KINDS) == sorted(p.name for p in BROKEN.glob("*.yaml"))


@pytest.mark.parametrize(("name", "field", "words"), KINDS)
def test_mistake_is_located(tmp_path, name, field, words):
    folder = tmp_path / "playbooks"
    folder.mkdir()
    shutil.copy(BROKEN / name, folder / name)
    with pytest.raises(ConfigError) as caught:
        load_playbooks(folder, load_config(DATA / "org.yaml"))
    problems = caught.value.problems
    line = marked_line(BROKEN / name)
    matching = [p for p in problems if p.line == line and p.field == field and words in p.message]
    assert matching, "\n".join(map(str, problems))
    assert all(p.file.endswith(name) for p in problems)
    expected = f"{name}:{line}: {field}: " if field else f"{name}:{line}: "
    assert expected in str(caught.value)


def test_every_problem_of_a_broken_folder_is_listed_at_once():
    with pytest.raises(ConfigError) as caught:
        load_playbooks(BROKEN, load_config(DATA / "org.yaml"))
    problems = caught.value.problems
    assert {Path(p.file).name for p in problems} == {name for name, _, _ in KINDS}
    for name, field, words in KINDS:
        line = marked_line(BROKEN / name)
        assert any(Path(p.file).name == name and p.line == line and p.field == field
                   and words in p.message for p in problems), name
    assert len(str(caught.value).splitlines()) == len(problems)


def test_valid_files_are_kept_next_to_broken_ones(tmp_path):
    shutil.copy(DATA / "playbooks-ok" / "minimal.yaml", tmp_path / "minimal.yaml")
    shutil.copy(BROKEN / "cycle.yaml", tmp_path / "cycle.yaml")
    (tmp_path / "README.md").write_text("not a playbook\n")
    playbooks, problems = collect_playbooks(tmp_path, ROLES)
    assert list(playbooks) == ["minimal"]
    assert [Path(p.file).name for p in problems] == ["cycle.yaml"]


def write(tmp_path: Path, body: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


STEP = "id: p\ntitle: P\nseverity: sev1\nsteps:\n  - id: a\n    title: A\n    owner: legal\n"


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ("    timers: [{after: 1h, remind: owner, page: legal}]\n", "steps[0].timers[0]", "exactly one of remind"),
        ("    timers: [{after: 1h}]\n", "steps[0].timers[0]", "exactly one of remind"),
        ("    timers: [{after: 1h, page: owner}]\n", "steps[0].timers[0].page", "only a remind: target"),
        ("    timers: [{after: 1h, from: a, remind: owner}]\n", "steps[0].timers[0].from", "own step"),
        ("    timers: [{after: 0m, remind: owner}]\n", "steps[0].timers[0].after", "invalid duration"),
        ("    after: [a]\n", "steps[0].after[0]", "cannot come after itself"),
        ("    fields: [{id: f, label: F, type: text, options: [x]}]\n", "steps[0].fields[0].options",
         "only select fields have options"),
        ("    fields: [{id: f, label: F, type: user, pattern: x}]\n", "steps[0].fields[0].pattern",
         "only text fields have a pattern"),
        ("    fields: [{id: f, label: F, type: select, options: [x, x]}]\n", "steps[0].fields[0].options",
         "listed twice"),
        ("    fields: [{id: f, label: F, type: date}]\n", "steps[0].fields[0].type", "must be 'select'"),
        ("    fields: [{id: f, label: F, type: select, options: [yes, no]}]\n",
         "steps[0].fields[0].options[0]", "put the text in quotes"),
        ("  - id: declared\n    title: D\n    owner: legal\n", "steps[1].id", "cannot be a step id"),
    ],
)
def test_step_rules(tmp_path, extra, field, words):
    path = write(tmp_path, STEP + extra)
    with pytest.raises(ConfigError) as caught:
        validate_playbook(load_yaml(path), ["legal"], stem="p")
    problems = caught.value.problems
    assert any(p.field == field and words in p.message for p in problems), "\n".join(map(str, problems))
    assert all(p.line is not None and p.line >= 5 for p in problems)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ("id: P\n", "id", "not a playbook id"),
        ("severity: sev4\n", "severity", "must be 'sev1', 'sev2' or 'sev3'"),
        ("roles: [legal, legal]\n", "roles[1]", "listed twice"),
        ("roles: [owner]\n", "roles[0]", "only a remind: target"),
        ("steps: []\n", "steps", "must not be empty"),
        ("private: sometimes\n", "private", "true or false"),
    ],
)
def test_playbook_rules(tmp_path, body, field, words):
    base = {"id": "id: p\n", "title": "title: P\n", "severity": "severity: sev1\n",
            "steps": "steps:\n  - {id: a, title: A, owner: legal}\n"}
    key = body.split(":")[0]
    base[key] = body
    path = write(tmp_path, "".join(base.values()))
    with pytest.raises(ConfigError) as caught:
        validate_playbook(load_yaml(path), ["legal"], stem="p")
    problems = caught.value.problems
    assert any(p.field == field and words in p.message for p in problems), "\n".join(map(str, problems))


@pytest.mark.parametrize(
    ("body", "words"),
    [("", "the file is empty"), ("- a\n- b\n", "must be a mapping")],
)
def test_not_a_playbook(tmp_path, body, words):
    path = write(tmp_path, body)
    with pytest.raises(ConfigError, match=words):
        validate_playbook(load_yaml(path), None, stem="p")


def test_folder_problems(tmp_path):
    with pytest.raises(ConfigError, match="folder not found"):
        load_playbooks(tmp_path / "nope")
    with pytest.raises(ConfigError, match="no playbook files"):
        load_playbooks(tmp_path)


def test_duplicate_id_across_yaml_and_yml(tmp_path):
    shutil.copy(DATA / "playbooks-ok" / "minimal.yaml", tmp_path / "minimal.yaml")
    shutil.copy(DATA / "playbooks-ok" / "minimal.yaml", tmp_path / "minimal.yml")
    with pytest.raises(ConfigError, match=re.escape("another file already defines playbook 'minimal'")):
        load_playbooks(tmp_path)

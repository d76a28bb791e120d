"""`safeguard check`'s logic (bot.check): config problems plus playbook problems checked
against that config. Pure unit tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from bot.check import check

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "playbooks"
DEMO = ROOT / "bot" / "demo" / "safeguard.yaml"
DATA = Path(__file__).resolve().parent / "data"


def test_shipped_playbooks_pass_against_the_demo_config():
    assert check(DEMO, SHIPPED) == []


def test_example_config_passes():
    assert check(ROOT / "safeguard.example.yaml", SHIPPED) == []


def test_defaults_no_config_and_the_shipped_playbooks():
    assert check(None, None) == []


def test_playbooks_are_checked_against_the_config_roles(tmp_path):
    config = tmp_path / "safeguard.yaml"
    config.write_text("roles:\n  incident_lead: {users: [U0LEAD001]}\n  legal: {users: [U0LEGAL01]}\n")
    problems = check(config, SHIPPED)
    assert problems
    assert all(p.file.endswith(".yaml") and p.line is not None for p in problems)
    assert any(p.file.endswith("csam-report.yaml") and p.field == "roles[2]"
               and "unknown role 'child_safety_specialist'" in p.message for p in problems)


def test_config_and_playbook_problems_together(tmp_path):
    config = tmp_path / "safeguard.yaml"
    # A bad duration, and no `comms` role: both reported, the playbooks still checked against
    # the roles the broken config names.
    shutil.copy(DEMO, config)
    text = config.read_text()
    text = text.replace("      - {notify: [slack], ack_within: 15m}\n  deputy:",
                        "      - {notify: [slack], ack_within: 15 min}\n  deputy:")
    text = text.replace("  comms:\n    label: Comms\n", "  press:\n    label: Comms\n")
    config.write_text(text)
    problems = check(config, SHIPPED)
    config_problems = [p for p in problems if p.file.endswith("safeguard.yaml")]
    assert [p.field for p in config_problems] == ["roles.incident_lead.escalation[0].ack_within"]
    others = [p for p in problems if not p.file.endswith("safeguard.yaml")]
    assert others and all("unknown role 'comms'" in p.message for p in others)
    assert {Path(p.file).name for p in others} == {"viral-spread.yaml"}
    assert problems.index(config_problems[0]) == 0  # config first


def test_config_syntax_error_still_checks_the_playbooks(tmp_path):
    config = tmp_path / "safeguard.yaml"
    config.write_text("roles: [\n")
    problems = check(config, DATA / "playbooks-broken")
    assert "YAML syntax error" in problems[0].message
    assert len({p.file for p in problems}) > 5


def test_broken_folder_lists_every_file(tmp_path):
    problems = check(DATA / "org.yaml", DATA / "playbooks-broken")
    files = {Path(p.file).name for p in problems}
    assert files == {p.name for p in (DATA / "playbooks-broken").glob("*.yaml")}
    for problem in problems:
        assert str(problem).startswith(problem.file)


def test_missing_things_are_problems(tmp_path):
    problems = check(tmp_path / "nope.yaml", tmp_path / "no-playbooks")
    assert [p.message for p in problems] == ["file not found", "playbook folder not found"]

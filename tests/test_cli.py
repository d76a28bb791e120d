"""The `safeguard` command as a person runs it: exit codes and messages, no stack traces."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import DEMO_CONFIG, REPO

SAFEGUARD = [sys.executable, "-m", "runtime.cli"]
BROKEN = REPO / "tests" / "data" / "playbooks-broken"


def run(args, env=None, cwd=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SAFEGUARD_", "DATABASE_URL"))}
    full_env.update(env or {})
    return subprocess.run(SAFEGUARD + args, capture_output=True, text=True, env=full_env, cwd=cwd or REPO,
                          timeout=60)


def test_check_passes_on_the_shipped_playbooks():
    result = run(["check", "--config", str(DEMO_CONFIG)])
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_check_lists_every_error_with_file_line_and_field():
    result = run(["check", "--config", str(DEMO_CONFIG), "--playbooks", str(BROKEN)])
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    files = {path.name for path in BROKEN.glob("*.yaml")}
    for name in files:  # every broken file is named, with a line number
        assert any(f"{name}:" in line and line.split(f"{name}:")[1].split(":")[0].isdigit() for line in lines), name
    assert lines[-1].endswith("problem(s) found.")


def test_serve_refuses_to_start_on_an_invalid_playbook(tmp_path):
    env = {"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s", "SAFEGUARD_CONFIG": str(DEMO_CONFIG),
           "SAFEGUARD_PLAYBOOKS": str(BROKEN), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "PORT": "0"}
    result = run(["serve"], env=env)
    assert result.returncode == 1
    assert "Invalid configuration" in result.stderr and "cycle.yaml:" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_without_token_says_what_is_missing(tmp_path):
    result = run(["serve"], env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "SLACK_SIGNING_SECRET": "s",
                                 "SAFEGUARD_CONFIG": str(DEMO_CONFIG)})
    assert result.returncode == 1 and "SLACK_BOT_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_without_a_pager_secret_names_the_config_field(tmp_path):
    env = {"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s", "SAFEGUARD_CONFIG": str(DEMO_CONFIG),
           "DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "PORT": "0", "PD_ROUTING_KEY": "", "SMTP_URL": ""}
    result = run(["serve"], env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{DEMO_CONFIG}: pagers.pagerduty.routing_key_env" in result.stderr
    assert "PD_ROUTING_KEY is empty" in result.stderr
    assert not (tmp_path / "x.db").exists()  # it stopped before touching the database


@pytest.mark.parametrize("incident", ["INC-x", "seven"])
def test_timeline_names_a_bad_incident_argument(tmp_path, incident):
    result = run(["timeline", incident], env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
                                              "SAFEGUARD_CONFIG": str(DEMO_CONFIG)})
    assert result.returncode == 2 and "INCIDENT" in result.stderr


def test_db_upgrade_creates_the_schema(db_url):
    from sqlalchemy import create_engine, inspect

    from bot.db.engine import normalise_url

    result = run(["db", "upgrade"], env={"DATABASE_URL": db_url})
    assert result.returncode == 0, result.stderr
    engine = create_engine(normalise_url(db_url))
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"incidents", "timers", "pages", "tasks", "timeline_events", "alembic_version"} <= tables
    again = run(["db", "upgrade"], env={"DATABASE_URL": db_url})
    assert again.returncode == 0

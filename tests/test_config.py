"""The organisation config, durations and located problems (bot.config, bot.durations,
bot.yamlsrc). Pure unit tests: no Slack, no database."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from bot.config import OrgConfig, RoleConfig, load_config
from bot.durations import Duration, format_duration, parse_duration
from bot.yamlsrc import ConfigError, Problem, format_loc, parse_yaml

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "bot" / "demo" / "safeguard.yaml"
EXAMPLE = ROOT / "safeguard.example.yaml"
BROKEN = Path(__file__).resolve().parent / "data" / "config-broken"


def marked_line(path: Path) -> int:
    """The line of a fixture marked ``# <-``: where its mistake must be reported."""
    lines = [n for n, text in enumerate(path.read_text().splitlines(), 1) if "# <-" in text]
    assert len(lines) == 1, path
    return lines[0]


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("4h", timedelta(hours=4)),
        ("330d", timedelta(days=330)),
        ("90m", timedelta(minutes=90)),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "4", "h", "0s", "-4h", "4 h", "4hours", "1h30m", "1.5h", "4H", "4w", "04h", 4, None]
)
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_parse_duration_overflow_is_a_value_error():
    with pytest.raises(ValueError, match="too long"):
        parse_duration("9" * 20 + "d")


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(hours=4), "4h"),
        (timedelta(hours=24), "1d"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=45), "45s"),
        (timedelta(days=330), "330d"),
        (timedelta(0), "0s"),
        (timedelta(minutes=-15), "-15m"),
    ],
)
def test_format_duration(delta, text):
    assert format_duration(delta) == text


@pytest.mark.parametrize("text", ["1s", "59s", "61s", "15m", "4h", "25h", "330d"])
def test_durations_round_trip(text):
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


def test_duration_field_type():
    class Model(BaseModel):
        after: Duration

    model = Model.model_validate({"after": "4h"})
    assert model.after == timedelta(hours=4)
    assert Model(after=timedelta(minutes=5)).after == timedelta(minutes=5)
    assert model.model_dump() == {"after": "4h"}
    assert model.model_dump_json() == '{"after":"4h"}'
    for bad in ("4 hours", 15, timedelta(0)):
        with pytest.raises(ValidationError):
            Model.model_validate({"after": bad})


# --- problems ------------------------------------------------------------------------------


def test_problem_str():
    problem = Problem("playbooks/x.yaml", 12, "steps[2].owner", "unknown role 'legl'")
    assert str(problem) == "playbooks/x.yaml:12: steps[2].owner: unknown role 'legl'"
    assert str(Problem("x.yaml", None, "", "file not found")) == "x.yaml: file not found"
    error = ConfigError([problem, Problem("y.yaml", 3, "id", "bad")])
    assert str(error).splitlines() == [str(problem), "y.yaml:3: id: bad"]


def test_format_loc():
    assert format_loc(("steps", 2, "timers", 0, "from")) == "steps[2].timers[0].from"
    assert format_loc(()) == ""


def test_lines_of_keys_and_items():
    source = parse_yaml("a:\n  b: [x, y]\nsteps:\n  - id: one\n  - id: two\n    owner: z\n", "f.yaml")
    assert source.line(("a", "b")) == 2
    assert source.line(("steps", 1)) == 5
    assert source.line(("steps", 1, "owner")) == 6
    assert source.line(("steps", 1, "missing")) == 5  # falls back to the closest known place


# --- the demo config -------------------------------------------------------------------------


def test_demo_config():
    config = load_config(DEMO)
    assert config.role_names == sorted([
        "incident_lead", "deputy", "child_safety_specialist", "legal", "eu_counsel",
        "le_response", "policy", "comms",
    ])
    lead = config.roles["incident_lead"]
    assert lead.users == ["U0LEAD001", "U0DEPU001"]
    assert lead.primary == "U0LEAD001"
    assert lead.usergroup == "S0LEADS"
    assert config.roles["child_safety_specialist"].usergroup == "S0CHILDSF"
    legal = config.roles["legal"]
    assert legal.usergroup == "S0LEGAL"
    assert [level.notify for level in legal.escalation] == [["slack", "email"], ["slack", "pagerduty", "email"]]
    assert [level.ack_within for level in legal.escalation] == [timedelta(minutes=15)] * 2
    assert legal.level_users(legal.escalation[0]) == ["U0LEGAL01"]
    assert legal.level_users(legal.escalation[1]) == ["U0GC00001"]
    for name, role in config.roles.items():
        if name != "legal":
            assert [level.notify for level in role.escalation] == [["slack"]], name
    assert config.email_of("U0LEGAL01") == "lena@example.org"
    assert config.email_of("U0GC00001") == "gabe@example.org"
    assert config.name_of("U0COMMS01") == "Cole"
    assert len(config.people) == 10
    assert config.leads == ["U0LEAD001", "U0DEPU001"]
    assert config.is_lead("U0DEPU001") and not config.is_lead("U0SPEC001")
    assert config.pagers.pagerduty.routing_key_env == "PD_ROUTING_KEY"
    assert config.pagers.pagerduty.events_url == "https://events.pagerduty.com/v2/enqueue"
    assert config.pagers.pagerduty.timeout == timedelta(seconds=10)
    assert config.pagers.email.smtp_url_env == "SMTP_URL"
    assert config.pagers.email.from_ == "safeguard@example.org"
    assert config.pagers.webhook is None
    assert config.pagers.configured() == ["pagerduty", "email"]
    assert config.status_updates["sev1"] == timedelta(minutes=30)
    assert config.archive_on_close is True
    assert config.delivery.max_attempts == 5
    assert config.delivery.first_retry == timedelta(seconds=2)


def test_example_config_is_the_demo_config():
    assert load_config(EXAMPLE) == load_config(DEMO)


def test_config_round_trips_through_its_dump():
    config = load_config(DEMO)
    dumped = config.model_dump(by_alias=True)
    assert dumped["pagers"]["email"]["from"] == "safeguard@example.org"
    assert dumped["roles"]["legal"]["escalation"][0]["ack_within"] == "15m"
    assert OrgConfig.model_validate(dumped) == config


def test_no_config_is_the_empty_config():
    config = load_config(None)
    assert config.roles == {} and config.people == {} and config.leads == []
    assert config.pagers.configured() == []
    assert config.status_updates == {"sev1": timedelta(minutes=30)}
    assert config.archive_on_close is True
    assert (config.delivery.max_attempts, config.delivery.first_retry) == (5, timedelta(seconds=2))


def test_empty_file_is_the_empty_config(tmp_path):
    path = tmp_path / "safeguard.yaml"
    path.write_text("# nothing configured yet\n")
    assert load_config(path) == OrgConfig()


def test_missing_file_is_an_error(tmp_path):
    (problem,) = problems_of(tmp_path / "nope.yaml")
    assert problem.file.endswith("nope.yaml")
    assert "not found" in problem.message


def test_defaults_of_a_role():
    role = OrgConfig.model_validate({"roles": {"eu_counsel": {"users": ["U0EUCOUN1"]}}}).roles["eu_counsel"]
    assert role.label == "Eu counsel"
    assert role.escalation == []
    (level,) = role.levels
    assert level.notify == ["slack"] and role.level_users(level) == ["U0EUCOUN1"]
    assert RoleConfig().primary is None


def test_cross_checks_apply_to_models_built_in_code():
    with pytest.raises(ValidationError, match="pagers.email is not configured"):
        OrgConfig(roles={"legal": {"users": ["U0LEGAL01"],
                                   "escalation": [{"notify": ["email"], "ack_within": "5m"}]}})


# --- one broken fixture per kind of mistake --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "field", "words"),
    [
        ("unknown-key.yaml", "roles.legal.usergrup", "unknown key 'usergrup'"),
        ("bad-duration.yaml", "roles.legal.escalation[0].ack_within", "invalid duration '15 minutes'"),
        ("bad-user-id.yaml", "roles.legal.users[1]", "not a Slack user id"),
        ("missing-pager.yaml", "roles.legal.escalation[0].notify[1]", "pagers.pagerduty is not configured"),
        ("missing-email.yaml", "roles.legal.escalation[1].users[0]", "U0GC00001 has no email"),
        ("duplicate-key.yaml", "roles.legal", "duplicate key 'legal'"),
        ("syntax-error.yaml", "", "YAML syntax error"),
    ],
)
def test_config_mistake_is_located(name, field, words):
    path = BROKEN / name
    problems = problems_of(path)
    line = marked_line(path)
    matching = [p for p in problems if p.line == line and p.field == field and words in p.message]
    assert matching, "\n".join(map(str, problems))
    assert all(p.file.endswith(f"config-broken/{name}") for p in problems)
    assert f"{name}:{line}: " in str(matching[0])


def test_unknown_key_suggests_the_right_one():
    (problem,) = problems_of(BROKEN / "unknown-key.yaml")
    assert "did you mean 'usergroup'?" in problem.message
    assert "allowed keys: escalation, label, usergroup, users" in problem.message


def test_every_problem_of_a_config_is_reported_at_once():
    problems = problems_of(BROKEN / "several.yaml")
    assert [(p.line, p.field) for p in problems] == [
        (7, "roles.legal.escalation[0].notify[1]"),
        (11, "roles.comms.escalation[0].ack_within"),
        (12, "status_updates.sev9"),
        (13, "delivery.max_attempts"),
    ]


@pytest.mark.parametrize(
    ("yaml_text", "field", "words"),
    [
        ("roles: {Legal: {}}", "roles.Legal", "not a role name"),
        ("roles: {owner: {}}", "roles.owner", "cannot name a role"),
        ("roles: {legal: {usergroup: X1}}", "roles.legal.usergroup", "not a Slack user group id"),
        ("roles: {legal: {users: [U0A, U0A]}}", "roles.legal.users", "listed twice"),
        ("roles: {legal: {escalation: [{notify: [slack], ack_within: 5m}]}}",
         "roles.legal.escalation[0]", "pages nobody"),
        ("roles: {legal: {users: [U0A], escalation: [{notify: [], ack_within: 5m}]}}",
         "roles.legal.escalation[0].notify", "must not be empty"),
        ("people: {U0A: {email: nope}}", "people.U0A.email", "not an e-mail address"),
        ("leads: [ana]", "leads[0]", "not a Slack user id"),
        ("pagers: {webhook: {url: ftp://x, secret_env: S}}", "pagers.webhook.url", "not an http(s) URL"),
        ("pagers: {pagerduty: {routing_key_env: 'not a name'}}", "pagers.pagerduty.routing_key_env",
         "not an environment variable name"),
        ("pagers: {email: {smtp_url_env: SMTP_URL}}", "pagers.email.from", "required"),
        ("status_updates: {sev1: 0m}", "status_updates.sev1", "invalid duration"),
        ("archive_on_close: maybe", "archive_on_close", "true or false"),
        ("- roles", "", "must be a mapping"),
    ],
)
def test_config_rules(tmp_path, yaml_text, field, words):
    path = tmp_path / "safeguard.yaml"
    path.write_text(yaml_text + "\n")
    problems = problems_of(path)
    assert any(p.field == field and words in p.message and p.line == 1 for p in problems), (
        "\n".join(map(str, problems))
    )


def test_webhook_level_needs_the_webhook_pager_and_accepts_it(tmp_path):
    path = tmp_path / "safeguard.yaml"
    path.write_text(
        "roles:\n"
        "  legal:\n"
        "    users: [U0LEGAL01]\n"
        "    escalation: [{notify: [webhook], ack_within: 5m}]\n"
        "pagers:\n"
        "  webhook: {url: 'http://127.0.0.1:9/hook', secret_env: HOOK_SECRET, timeout: 3s}\n"
    )
    config = load_config(path)
    assert config.pagers.webhook.timeout == timedelta(seconds=3)

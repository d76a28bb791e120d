"""Building the paging backends from the ``pagers`` config (dicts or attribute objects)."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from types import SimpleNamespace

import pytest

from bot.paging.base import Backend, DeliveryError, PagerConfigError
from bot.paging.email import EmailBackend
from bot.paging.pagerduty import DEFAULT_EVENTS_URL, PagerDutyBackend
from bot.paging.registry import build_backends
from bot.paging.webhook import WebhookBackend

KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
ENV = {"PD_LEGAL_KEY": KEY, "SMTP_URL": "smtp://u:pw@mail.example.org:587?starttls=1", "HOOK": "s3"}


def full_dict():
    return {
        "pagerduty": {
            "events_url": "http://127.0.0.1:9/v2/enqueue",
            "routing_key_env": "PD_LEGAL_KEY",
            "timeout": 3,
        },
        "email": {
            "smtp_url_env": "SMTP_URL",
            "from": "safeguard@example.org",
            "timeout": timedelta(seconds=4),
        },
        "webhook": {"url": "https://hooks.example.org/p", "secret_env": "HOOK"},
        "slack": {},  # someone else's
    }


def test_from_dicts():
    backends = build_backends(full_dict(), ENV)
    assert set(backends) == {"pagerduty", "email", "webhook"}
    pd, mail, hook = backends["pagerduty"], backends["email"], backends["webhook"]
    assert isinstance(pd, PagerDutyBackend) and pd.timeout == 3.0
    assert pd.events_url == "http://127.0.0.1:9/v2/enqueue"
    assert isinstance(mail, EmailBackend) and mail.timeout == 4.0
    assert (
        mail.target.starttls
        and mail.target.port == 587
        and mail.from_addr == "safeguard@example.org"
    )
    assert isinstance(hook, WebhookBackend) and hook.timeout == 10.0
    assert all(isinstance(b, Backend) for b in backends.values())


def test_from_attribute_objects_with_from_underscore():
    pagers = SimpleNamespace(
        pagerduty=SimpleNamespace(
            events_url=None, routing_key_env="PD_LEGAL_KEY", timeout=timedelta(seconds=2)
        ),
        email=SimpleNamespace(
            smtp_url_env="SMTP_URL", from_="Safeguard <safeguard@example.org>", timeout=None
        ),
        webhook=None,
    )
    backends = build_backends(pagers, ENV)
    assert set(backends) == {"pagerduty", "email"}
    assert backends["pagerduty"].events_url == DEFAULT_EVENTS_URL
    assert backends["pagerduty"].timeout == 2.0
    assert backends["email"].from_addr == "Safeguard <safeguard@example.org>"


def test_from_pydantic_like_models():
    pydantic = pytest.importorskip("pydantic")

    class Email(pydantic.BaseModel):
        smtp_url_env: str
        from_: str = pydantic.Field(alias="from")
        timeout: timedelta = timedelta(seconds=10)

    class Pagers(pydantic.BaseModel):
        email: Email | None = None

    pagers = Pagers.model_validate({"email": {"smtp_url_env": "SMTP_URL", "from": "a@example.org"}})
    assert build_backends(pagers, ENV)["email"].from_addr == "a@example.org"


def test_empty_config():
    assert build_backends(None, ENV) == {}
    assert build_backends({}, ENV) == {}


@pytest.mark.parametrize(
    ("name", "section", "env", "needle"),
    [
        ("pagerduty", {"routing_key_env": "PD_MISSING"}, {}, "PD_MISSING"),
        ("pagerduty", {"routing_key_env": "PD_LEGAL_KEY"}, {"PD_LEGAL_KEY": " "}, "PD_LEGAL_KEY"),
        ("pagerduty", {}, ENV, "routing_key_env"),
        ("pagerduty", {"routing_key_env": "PD_LEGAL_KEY"}, {"PD_LEGAL_KEY": "short"}, "32"),
        ("pagerduty", {"routing_key_env": "PD_LEGAL_KEY", "timeout": -1}, ENV, "timeout"),
        ("pagerduty", {"routing_key_env": "PD_LEGAL_KEY", "timeout": "soon"}, ENV, "timeout"),
        ("email", {"smtp_url_env": "NO_SMTP", "from": "a@example.org"}, ENV, "NO_SMTP"),
        ("email", {"smtp_url_env": "SMTP_URL"}, ENV, "pagers.email.from"),
        (
            "email",
            {"smtp_url_env": "SMTP_URL", "from": "a@example.org"},
            {"SMTP_URL": "imap://x"},
            "pagers.email",
        ),
        ("webhook", {"url": "https://x/y", "secret_env": "NO_HOOK"}, ENV, "NO_HOOK"),
        ("webhook", {"secret_env": "HOOK"}, ENV, "pagers.webhook.url"),
    ],
)
def test_config_errors_name_the_problem(name, section, env, needle):
    with pytest.raises(PagerConfigError) as err:
        build_backends({name: section}, env)
    assert needle in str(err.value)
    assert isinstance(err.value, ValueError) and isinstance(err.value, DeliveryError)
    assert err.value.transient is False


def test_secrets_not_in_errors():
    with pytest.raises(PagerConfigError) as err:
        build_backends(
            {"email": {"smtp_url_env": "SMTP_URL", "from": "a@example.org"}},
            {"SMTP_URL": "smtp://user:hunter2@h?tls=1"},
        )
    assert "hunter2" not in str(err.value)


def test_paging_modules_import_no_slack_handlers_or_sandbox():
    code = (
        "import sys\n"
        "import bot.paging, bot.paging.base, bot.paging.render, bot.paging.pagerduty\n"
        "import bot.paging.email, bot.paging.webhook, bot.paging.retry, bot.paging.registry\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('slack_sdk', 'slack_bolt', 'handlers', 'sandbox')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sandbox_standin_does_not_import_bot():
    code = (
        "import sys\n"
        "import sandbox.pagerduty\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('bot', 'handlers')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

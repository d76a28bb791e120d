"""Signed expiring links to the HTML timeline page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from freezegun import freeze_time

from bot.timeline.links import (
    DEFAULT_LIFETIME,
    LinkError,
    check_link,
    default_expiry,
    sign_link,
)

SECRET = b"k" * 32
NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def _reason(secret, number, token, now) -> str:
    with pytest.raises(LinkError) as caught:
        check_link(secret, number, token, now)
    return caught.value.reason


def test_a_valid_link_is_accepted_until_it_expires():
    token = sign_link(SECRET, 7, default_expiry(NOW))
    assert quote(token, safe="") == token  # goes into a query string as it is
    check_link(SECRET, 7, token, NOW)
    check_link(SECRET, 7, token, NOW + timedelta(minutes=59, seconds=59))
    assert _reason(SECRET, 7, token, NOW + timedelta(hours=1)) == "expired"
    assert _reason(SECRET, 7, token, NOW + timedelta(days=3)) == "expired"


def test_default_lifetime_is_one_hour():
    assert timedelta(hours=1) == DEFAULT_LIFETIME
    assert default_expiry(NOW) == NOW + timedelta(hours=1)
    with freeze_time("2025-03-03 09:00:00"):
        now = datetime.now(UTC)
        token = sign_link(SECRET, 3, default_expiry(now))
        check_link(SECRET, 3, token, datetime.now(UTC))


def test_expired_link():
    token = sign_link(SECRET, 7, NOW - timedelta(seconds=1))
    error = pytest.raises(LinkError, check_link, SECRET, 7, token, NOW).value
    assert error.reason == "expired"
    assert isinstance(error, ValueError)
    assert "expired" in str(error)


def test_forged_links():
    token = sign_link(SECRET, 7, default_expiry(NOW))
    version, number, expires, signature = token.split(".")
    # a different signature
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert _reason(SECRET, 7, ".".join([version, number, expires, flipped]), NOW) == "forged"
    # a later expiry under the old signature
    longer = str(int(expires) + 86400)
    assert _reason(SECRET, 7, ".".join([version, number, longer, signature]), NOW) == "forged"
    # signed with another secret
    assert _reason(b"other secret", 7, token, NOW) == "forged"
    # another incident's number under this incident's signature
    assert _reason(SECRET, 8, ".".join([version, "8", expires, signature]), NOW) == "forged"


def test_a_link_for_another_incident():
    token = sign_link(SECRET, 8, default_expiry(NOW))
    assert _reason(SECRET, 7, token, NOW) == "wrong incident"


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "garbage",
        "v1.7.123",
        "v2.7.1741000000." + "A" * 43,
        "v1.07.1741000000." + "A" * 43,
        "v1.-7.1741000000." + "A" * 43,
        "v1.7.1741000000." + "A" * 42,
        "v1.7.1741000000." + "A" * 43 + "\n",
        "v1.7.1741000000." + "A" * 43 + ".extra",
        "v1.\u0667.1741000000." + "A" * 43,
        "v1.7.1741000000." + "+" * 43,
        "v1.7." + "9" * 500 + "." + "A" * 43,
        12345,
    ],
)
def test_malformed_links(token):
    assert _reason(SECRET, 7, token, NOW) == "malformed"


def test_signing_arguments_are_checked():
    with pytest.raises(ValueError):
        sign_link(b"", 7, NOW)
    with pytest.raises(ValueError):
        sign_link(SECRET, 0, NOW)
    with pytest.raises(TypeError):
        sign_link(SECRET, True, NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        check_link(b"", 7, "x", NOW)


def test_naive_datetimes_are_utc():
    token = sign_link(SECRET, 7, datetime(2025, 3, 3, 10, 0))
    check_link(SECRET, 7, token, datetime(2025, 3, 3, 9, 59))
    assert _reason(SECRET, 7, token, datetime(2025, 3, 3, 10, 0, tzinfo=UTC)) == "expired"


def test_the_link_key_falls_back_from_link_secret_to_signing_secret_to_app_token():
    from bot.settings import Settings
    from bot.timeline.service import link_secret

    assert link_secret(Settings(link_secret="l", slack_signing_secret="s", slack_app_token="xapp-a")) == b"l"
    assert link_secret(Settings(slack_signing_secret="s", slack_app_token="xapp-a")) == b"s"
    assert link_secret(Settings(slack_app_token="xapp-a")) == b"xapp-a"  # Socket Mode: no signing secret
    assert link_secret(Settings()) == b""


def test_a_personal_link_names_its_holder_and_cannot_be_passed_on_by_editing_it():
    token = sign_link(SECRET, 7, default_expiry(NOW), "U0LEGAL01")
    assert token.startswith("v2.7.") and ".U0LEGAL01." in token
    assert check_link(SECRET, 7, token, NOW) == "U0LEGAL01"
    assert check_link(SECRET, 7, sign_link(SECRET, 7, default_expiry(NOW)), NOW) is None  # v1: no holder
    edited = token.replace("U0LEGAL01", "U0OUTSID1")
    assert pytest.raises(LinkError, check_link, SECRET, 7, edited, NOW).value.reason == "forged"
    with pytest.raises(ValueError):
        sign_link(SECRET, 7, NOW, "not-a-user")

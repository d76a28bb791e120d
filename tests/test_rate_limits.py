"""Slack's rate limits: the sandbox answers 429 + Retry-After as Slack does (per tier per
workspace, chat.postMessage per channel), and the bot paces itself so it almost never gets one."""

from __future__ import annotations

import httpx
import pytest

from sandbox.clock import ManualClock
from sandbox.ratelimits import TIERS, RateLimits
from sandbox.server import Sandbox

OPS = "C0OPS0001"


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def limited(clock):
    with Sandbox(port=0, clock=clock, rate_limits=True) as sb:
        yield sb


def call(sb: Sandbox, method: str, **args) -> httpx.Response:
    return httpx.post(sb.api_url + method, data=args, headers={"Authorization": f"Bearer {sb.bot_token}"})


def refused_exactly_as_slack(response: httpx.Response, retry_after: int) -> None:
    assert response.status_code == 429
    assert response.headers["Retry-After"] == str(retry_after)
    assert response.json() == {"ok": False, "error": "ratelimited"}


@pytest.mark.parametrize(("method", "args", "per_minute", "retry_after"), [
    ("conversations.list", {}, 20, 3),                    # Tier 2: one call every 3 s after the burst
    ("conversations.info", {"channel": OPS}, 50, 2),      # Tier 3: every 1.2 s
    ("users.info", {"user": "U0LEAD001"}, 100, 1),        # Tier 4: every 0.6 s
])
def test_each_tier_allows_its_minute_then_answers_429(limited, clock, method, args, per_minute, retry_after):
    for _ in range(per_minute):
        assert call(limited, method, **args).json()["ok"]
    refused_exactly_as_slack(call(limited, method, **args), retry_after)
    assert limited.calls[-1].http_status == 429
    assert call(limited, "auth.test").json()["ok"]  # other methods have their own allowance
    clock.advance(retry_after)
    assert call(limited, method, **args).json()["ok"]  # waiting what Slack said is enough


def test_tier_1_allows_one_call_a_minute(clock, monkeypatch):
    monkeypatch.setitem(TIERS, "team.accessLogs", 1)
    limits = RateLimits(clock.now)
    assert limits.check("team.accessLogs") is None
    assert limits.check("team.accessLogs") == 60
    clock.advance(59)
    assert limits.check("team.accessLogs") == 1
    clock.advance(1)
    assert limits.check("team.accessLogs") is None


def test_post_message_is_paced_per_channel_with_short_bursts(limited, clock):
    ws = limited.state
    other = ws.add_channel("other", members=[ws.bot_user_id]).id
    for n in range(3):  # a short burst passes
        assert call(limited, "chat.postMessage", channel=OPS, text=f"burst {n}").json()["ok"]
    refused = call(limited, "chat.postMessage", channel=OPS, text="one too many")
    refused_exactly_as_slack(refused, 1)
    assert not any(m.text == "one too many" for m in ws.messages(OPS))  # Slack did nothing
    assert call(limited, "chat.postMessage", channel=other, text="another channel").json()["ok"]
    clock.advance(1)
    assert call(limited, "chat.postMessage", channel=OPS, text="a second later").json()["ok"]
    refused_exactly_as_slack(call(limited, "chat.postMessage", channel=OPS, text="again"), 1)
    assert limited.limits.refused == {"chat.postMessage": 2}


def test_limits_can_be_turned_off_and_the_env_decides_the_default(clock, monkeypatch):
    with Sandbox(port=0, clock=clock, rate_limits=False) as sb:
        assert all(call(sb, "conversations.list").json()["ok"] for _ in range(30))
    monkeypatch.setenv("SANDBOX_RATE_LIMITS", "on")
    assert Sandbox(clock=clock).limits.enabled
    monkeypatch.setenv("SANDBOX_RATE_LIMITS", "off")
    assert not Sandbox(clock=clock).limits.enabled
    monkeypatch.delenv("SANDBOX_RATE_LIMITS")
    assert Sandbox(clock=clock).limits.enabled  # as Slack: on unless told otherwise

"""Slack's Web API rate limits, as the sandbox enforces them.

Slack meters each method per workspace by tier (Tier 1: 1+ a minute, Tier 2: 20+, Tier 3: 50+,
Tier 4: 100+, bursts tolerated) and `chat.postMessage` per channel (about one message a second,
short bursts tolerated). Beyond that it answers HTTP 429 with `Retry-After: <seconds>` and
`{"ok": false, "error": "ratelimited"}`, and does nothing. Here each limit is a token bucket
holding a minute's worth of calls (a tier) or `POST_BURST` messages (a channel), refilled
evenly, on the workspace clock: a test on a ManualClock ends a limit by moving the clock.

On by default, as in Slack. `Sandbox(rate_limits=False)`, or `SANDBOX_RATE_LIMITS=off` in the
environment when the sandbox is built without the argument, turns it off (the test suite's
fixtures do, except the tests that exercise the limits); benchmarks and the demo turn it on
explicitly.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable

PER_MINUTE = {1: 1, 2: 20, 3: 50, 4: 100}
POST_PER_SECOND = 1.0
POST_BURST = 3  # "short bursts": a few messages at once into one channel pass

TIERS: dict[str, int] = {
    "auth.test": 4,  # "special" in Slack's reference: generous
    "bookmarks.add": 2, "bookmarks.list": 3, "bookmarks.remove": 2,
    "chat.delete": 3, "chat.getPermalink": 4, "chat.postEphemeral": 4, "chat.update": 3,
    "conversations.archive": 2, "conversations.create": 2, "conversations.history": 3,
    "conversations.info": 3, "conversations.invite": 3, "conversations.join": 3, "conversations.list": 2,
    "conversations.members": 4, "conversations.open": 3, "conversations.rename": 2,
    "conversations.replies": 3, "conversations.setPurpose": 2, "conversations.setTopic": 2,
    "conversations.unarchive": 2,
    "files.completeUploadExternal": 4, "files.getUploadURLExternal": 4, "files.info": 4,
    "pins.add": 2, "pins.list": 2, "pins.remove": 2,
    "usergroups.list": 2, "usergroups.users.list": 2,
    "users.info": 4, "users.list": 2, "users.lookupByEmail": 3,
    "views.open": 4, "views.publish": 4, "views.push": 4, "views.update": 4,
}
PER_CHANNEL = {"chat.postMessage"}  # metered per channel, not by tier


def enabled_by_env(default: bool = True) -> bool:
    value = os.environ.get("SANDBOX_RATE_LIMITS", "").strip().lower()
    if value in ("0", "off", "false", "no"):
        return False
    if value in ("1", "on", "true", "yes"):
        return True
    return default


class Bucket:
    def __init__(self, capacity: float, per_second: float, now: float) -> None:
        self.capacity, self.per_second = capacity, per_second
        self.tokens, self.at = capacity, now

    def take(self, now: float) -> float:
        """Take one call; 0 when allowed, else the seconds until one is allowed (nothing taken)."""
        if now > self.at:
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.per_second)
        self.at = max(self.at, now)
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.per_second


class RateLimits:
    """The limits of one workspace. Thread-safe. `check` answers None or a Retry-After."""

    def __init__(self, now: Callable[[], float], enabled: bool = True) -> None:
        self.now = now
        self.enabled = enabled
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self.refused: dict[str, int] = {}  # method -> 429s answered

    def tier(self, method: str) -> int | None:
        return TIERS.get(method)

    def check(self, method: str, channel: str | None = None) -> int | None:
        """Count one call of `method`; None when Slack would take it, else the whole seconds
        to put in `Retry-After` (at least 1)."""
        if not self.enabled:
            return None
        if method in PER_CHANNEL:
            key, capacity, rate = (method, channel or ""), POST_BURST, POST_PER_SECOND
        else:
            tier = TIERS.get(method)
            if tier is None:
                return None
            key, capacity, rate = (method, ""), PER_MINUTE[tier], PER_MINUTE[tier] / 60
        now = self.now()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = Bucket(capacity, rate, now)
            wait = bucket.take(now)
            if wait <= 0:
                return None
            self.refused[method] = self.refused.get(method, 0) + 1
        return max(1, math.ceil(round(wait, 3)))  # (float noise must not add a second)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
            self.refused.clear()

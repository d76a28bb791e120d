"""The bot paces its own Slack calls, so that under load it almost never gets a 429.

One `Pacer` per bot process, shared by every thread (listeners, outbox workers): a token bucket
per Web API method sized to the method's tier (SLACK.md), and per channel for chat.postMessage
(about one a second). A caller reserves its slot and sleeps until it comes, unless that is
longer than its thread's patience: then `RateLimited(retry_after)` is raised without calling
Slack, and the outbox puts the task back until then (the worker is free for a page meanwhile).

When Slack answers 429 anyway (another replica, another app on the token), its `Retry-After`
pauses the whole method in this process (for chat.postMessage: that channel), for every thread,
not only the call that got it: `PausingRateLimitHandler` is the slack_sdk retry handler that
records the pause and, within the caller's patience, waits it out and tries again.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.errors import RateLimited

PER_MINUTE = {1: 1, 2: 20, 3: 50, 4: 100}
# Tiers of the methods the bot calls (Slack's reference; SLACK.md). Not listed: not paced.
TIERS: dict[str, int] = {
    "bookmarks.add": 2, "chat.delete": 3, "chat.getPermalink": 4, "chat.postEphemeral": 4, "chat.update": 3,
    "conversations.archive": 2, "conversations.create": 2, "conversations.history": 3, "conversations.info": 3,
    "conversations.invite": 3, "conversations.list": 2, "conversations.members": 4, "conversations.open": 3,
    "conversations.replies": 3, "conversations.setPurpose": 2, "conversations.setTopic": 2,
    "files.completeUploadExternal": 4, "files.getUploadURLExternal": 4, "pins.add": 2,
    "usergroups.users.list": 2, "users.info": 4, "users.list": 2, "users.lookupByEmail": 3,
    "views.open": 4, "views.publish": 4, "views.push": 4, "views.update": 4,
}
PER_CHANNEL = {"chat.postMessage": (2, 1.0)}  # (burst, per second) in one channel
SHARE = 0.95  # stay a little under Slack's figures: its clock is not ours
MAX_BUCKETS = 20_000


class _Bucket:
    """Tokens may go below zero: each reservation queues behind those already made."""

    def __init__(self, capacity: float, per_second: float, now: float) -> None:
        self.capacity, self.per_second = capacity, per_second
        self.tokens, self.at = capacity, now
        self.paused_until = 0.0
        self.next_deferred = 0.0  # the slot the next caller sent away is told to come back for

    def refill(self, now: float) -> None:
        if now > self.at:
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.per_second)
            self.at = now

    def wait(self, now: float) -> float:
        self.refill(now)
        wait = 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.per_second
        return max(wait, self.paused_until - now)


class Pacer:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 patience: float = 5.0, share: float = SHARE, pace: bool = True) -> None:
        self.clock, self.sleep = clock, sleep
        self.pace = pace  # False: only Slack's 429s pause a method (a Slack stand-in without limits)
        self.default_patience = patience
        self.share = share
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._local = threading.local()
        self.waited = 0.0       # seconds callers slept for their slot (all threads)
        self.deferred = 0       # calls handed back as RateLimited instead of waiting
        self.received_429 = 0   # 429s Slack answered despite the pacing

    # -- patience: how long the calling thread may wait for its slot ---------------------------
    @property
    def patience(self) -> float:
        return getattr(self._local, "patience", self.default_patience)

    def set_patience(self, seconds: float) -> None:
        """For this thread (the outbox workers: short, a task comes back later instead)."""
        self._local.patience = seconds

    # -- buckets ---------------------------------------------------------------------------
    def _bucket(self, method: str, channel: str | None, now: float) -> _Bucket | None:
        if method in PER_CHANNEL:
            key = (method, channel or "")
            burst, rate = PER_CHANNEL[method]
        elif method in TIERS:
            key = (method, "")
            burst, rate = PER_MINUTE[TIERS[method]], PER_MINUTE[TIERS[method]] / 60
        else:
            return None
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._forget_idle(now)
            bucket = self._buckets[key] = _Bucket(max(burst - 1, 1), rate * self.share, now)
        return bucket

    def _forget_idle(self, now: float) -> None:
        for key, bucket in list(self._buckets.items()):
            bucket.refill(now)
            if bucket.tokens >= bucket.capacity and bucket.paused_until <= now:
                del self._buckets[key]

    def acquire(self, method: str, channel: str | None = None, patience: float | None = None) -> None:
        """Take a slot for one call, sleeping until it comes; RateLimited when that is longer than
        the thread's patience (nothing is taken then)."""
        patience = self.patience if patience is None else patience
        with self._lock:
            now = self.clock()
            bucket = self._bucket(method, channel, now)
            if bucket is None:
                return
            wait = bucket.wait(now) if self.pace else max(0.0, bucket.paused_until - now)
            if wait > patience:
                # Come back for a later slot, each caller sent away for its own: the tasks
                # waiting for one channel return one by one, not all at once every second.
                slot = max(now + wait, bucket.next_deferred)
                bucket.next_deferred = slot + 1 / bucket.per_second
                self.deferred += 1
                raise RateLimited(method, slot - now)
            if self.pace:
                bucket.tokens -= 1
            self.waited += wait
        if wait > 0:
            self.sleep(wait)

    def pause(self, method: str, channel: str | None, seconds: float) -> None:
        """Slack said 429: nobody in this process calls `method` (in `channel` for a per-channel
        method) for `seconds`, and after that the calls start again one by one."""
        with self._lock:
            self.received_429 += 1
            now = self.clock()
            bucket = self._bucket(method, channel, now)
            if bucket is None:  # an unpaced method: pace it from now on at Tier 3
                bucket = self._buckets[(method, "")] = _Bucket(1, PER_MINUTE[3] / 60, now)
            bucket.paused_until = max(bucket.paused_until, now + seconds)
            bucket.tokens = min(bucket.tokens, 0.0)
            bucket.at = max(bucket.at, now + seconds)

    def paused_for(self, method: str, channel: str | None = None) -> float:
        with self._lock:
            now = self.clock()
            bucket = self._bucket(method, channel, now)
            return 0.0 if bucket is None else max(0.0, bucket.paused_until - now)


def channel_of(kwargs: dict[str, Any]) -> str | None:
    for part in ("json", "data", "params"):
        body = kwargs.get(part)
        if isinstance(body, dict) and body.get("channel"):
            return str(body["channel"])
    return None


def _request_target(request: HttpRequest) -> tuple[str, str | None]:
    method = urlparse(request.url).path.rsplit("/", 1)[-1]
    channel = None
    if request.body_params and request.body_params.get("channel"):
        channel = str(request.body_params["channel"])
    elif request.data:
        try:
            body = json.loads(request.data)
            channel = body.get("channel") if isinstance(body, dict) else None
        except ValueError:
            channel = (parse_qs(request.data.decode(errors="replace")).get("channel") or [None])[0]
    return method, channel


def retry_after(headers: dict[str, Any] | None) -> float:
    """Seconds in a 429's Retry-After header (1 when it has none)."""
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            try:
                return float(value[0] if isinstance(value, list) else value)
            except (TypeError, ValueError):
                break
    return 1.0


class PausingRateLimitHandler(RateLimitErrorRetryHandler):
    """A 429 pauses the method for the whole process; the call that got it is tried again once
    the pause is over if the caller's patience allows, else it fails (RateLimited) at once."""

    def __init__(self, pacer: Pacer, max_retry_count: int = 5) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.pacer = pacer

    def _can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                   error: Exception | None = None) -> bool:
        if response is None or response.status_code != 429:
            return False
        method, channel = _request_target(request)
        seconds = retry_after(response.headers)
        self.pacer.pause(method, channel, seconds)
        return seconds <= self.pacer.patience

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest,
                                 response: HttpResponse | None = None, error: Exception | None = None) -> None:
        state.next_attempt_requested = True
        method, channel = _request_target(request)
        self.pacer.acquire(method, channel, patience=float("inf"))  # the pause, then a slot
        state.increment_current_attempt()


class PacedWebClient(WebClient):
    """A WebClient whose every call (files_upload_v2's steps too) first takes its slot."""

    pacer: Pacer | None = None

    def api_call(self, api_method: str, **kwargs: Any):  # type: ignore[override]
        if self.pacer is not None:
            self.pacer.acquire(api_method, channel_of(kwargs))
        return super().api_call(api_method, **kwargs)

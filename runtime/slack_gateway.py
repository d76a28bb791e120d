"""The one door to the Slack Web API.

Everything the bot sends to Slack goes through here, so the rules live in one place: link and
media unfurling off on every message, rate limits and 5xx retried by slack_sdk's retry
handlers, and Slack errors turned into `SlackError(code)` so the domain never sees Slack types.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.jitter import Jitter

from bot.errors import RateLimited, SlackError

from .slack_limits import fit_message
from .slack_pacing import PacedWebClient, Pacer, PausingRateLimitHandler, retry_after

log = logging.getLogger(__name__)


class ScaledJitter(Jitter):
    """Up to one backoff factor of random jitter (slack_sdk's default adds up to a whole second)."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def recalculate(self, duration: float) -> float:
        return duration + random.random() * self.scale


def make_client(token: str, base_url: str, *, timeout: int = 15, backoff: float = 0.5,
                pacer: Pacer | None = None) -> WebClient:
    """The bot's client: paced by `pacer` (one per process: see slack_pacing.py)."""
    client = PacedWebClient(token=token, base_url=base_url, timeout=timeout)
    client.pacer = pacer = pacer or Pacer()
    interval = BackoffRetryIntervalCalculator(backoff_factor=backoff, jitter=ScaledJitter(backoff * 2))
    client.retry_handlers = [
        ConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=interval),
        PausingRateLimitHandler(pacer),  # Retry-After pauses the method for every thread
        ServerErrorRetryHandler(max_retry_count=3, interval_calculator=interval),
    ]
    return client


def _raise_rate_limited(exc: SlackApiError, method: str) -> None:
    """A 429 that was not waited out (longer than the caller's patience): the method is paused
    (PausingRateLimitHandler did it); the caller comes back when Slack said."""
    if exc.response.status_code == 429:
        raise RateLimited(method, retry_after(exc.response.headers)) from None


class SlackGateway:
    def __init__(self, client: WebClient) -> None:
        self.client = client
        self._once: WebClient | None = None
        self._users: dict[str, dict[str, Any]] = {}
        self._users_lock = threading.Lock()
        self._bot_user_id: str | None = None
        self.pacer: Pacer = getattr(client, "pacer", None) or Pacer()
        self._team_id: str | None = None
        # Metrics: called after every Web API call with (method, seconds, Slack's error code or None).
        self.observe: Callable[[str, float, str | None], None] = lambda method, seconds, error: None

    @contextmanager
    def _timed(self, method: str) -> Iterator[None]:
        started, error = time.perf_counter(), None
        try:
            yield
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            raise
        except Exception as exc:  # no answer at all (connection, timeout)
            error = type(exc).__name__
            raise
        finally:
            try:
                self.observe(method, time.perf_counter() - started, error)
            except Exception:  # metrics never break a call
                log.debug("metrics hook failed", exc_info=True)

    def _call(self, method: str, *, once: bool = False, **kwargs: Any) -> dict[str, Any]:
        """`once`: no automatic retry after a 5xx or a broken connection, where Slack may have
        acted already; the caller checks what exists before it tries again (a 429 is retried:
        Slack did nothing)."""
        client = self._once_client() if once else self.client
        try:
            with self._timed(method):
                response = client.api_call(method, **kwargs)
        except SlackApiError as exc:
            _raise_rate_limited(exc, method)
            raise SlackError(exc.response.get("error", "unknown_error"), method) from None
        return response.data  # type: ignore[return-value]

    def _once_client(self) -> WebClient:
        if self._once is None:
            once = PacedWebClient(token=self.client.token, base_url=self.client.base_url, timeout=self.client.timeout)
            once.pacer = self.pacer
            once.retry_handlers = [h for h in self.client.retry_handlers
                                   if isinstance(h, RateLimitErrorRetryHandler)]
            self._once = once
        return self._once

    # -- identity ----------------------------------------------------------------------
    def bot_user_id(self) -> str:
        if self._bot_user_id is None:
            answer = self._call("auth.test")
            self._team_id = answer.get("team_id") or None
            self._bot_user_id = answer["user_id"]
        return self._bot_user_id

    def channel_url(self, channel: str) -> str:
        """A link that opens `channel` in Slack (the app, or the browser), for link buttons."""
        team = f"&team={self._team_id}" if self._team_id else ""
        return f"https://slack.com/app_redirect?channel={channel}{team}"

    @property
    def ready(self) -> bool:
        """Whether the bot knows who it is in Slack (auth.test answered once)."""
        return self._bot_user_id is not None

    @property
    def known_bot_user_id(self) -> str | None:
        return self._bot_user_id

    def learn_identity(self, stop: threading.Event, *, first_wait: float = 0.5, max_wait: float = 30.0) -> None:
        """Ask auth.test until Slack answers (an outage at start-up must not turn requests away):
        waits double from `first_wait` up to `max_wait` between tries."""
        wait = first_wait
        while not stop.is_set():
            try:
                self.bot_user_id()
                log.info("Slack answered auth.test: the bot is ready")
                return
            except Exception as err:  # an outage (5xx, 429, no connection): try again
                log.warning("Slack is not answering auth.test (%s); trying again in %.1f s",
                            getattr(err, "code", type(err).__name__), wait)
            stop.wait(wait)
            wait = min(wait * 2, max_wait)

    # -- channels ----------------------------------------------------------------------
    def create_channel(self, name: str, *, private: bool) -> dict[str, Any]:
        return self._call("conversations.create", data={"name": name, "is_private": private})["channel"]

    def find_channel(self, name: str) -> dict[str, Any] | None:
        """A channel the bot can see by exact name (used to adopt one created before a crash)."""
        cursor = None
        while True:
            params: dict[str, Any] = {"types": "public_channel,private_channel", "limit": 200,
                                      "exclude_archived": False}
            if cursor:
                params["cursor"] = cursor
            data = self._call("conversations.list", params=params)
            for channel in data.get("channels", []):
                if channel.get("name") == name:
                    return channel
            cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None

    def channel_info(self, channel: str) -> dict[str, Any]:
        return self._call("conversations.info", params={"channel": channel})["channel"]

    def members(self, channel: str) -> list[str]:
        members: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"channel": channel, "limit": 200}
            if cursor:
                params["cursor"] = cursor
            data = self._call("conversations.members", params=params)
            members += data.get("members", [])
            cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return members

    def invite(self, channel: str, users: list[str]) -> None:
        """Invite users; someone already in the channel is not an error."""
        if not users:
            return
        try:
            self._call("conversations.invite", data={"channel": channel, "users": ",".join(users)})
        except SlackError as err:
            if err.code != "already_in_channel":
                raise
            if len(users) > 1:  # one of them was in already: invite the rest one by one
                for user in users:
                    self.invite(channel, [user])

    def set_topic(self, channel: str, topic: str) -> None:
        self._call("conversations.setTopic", data={"channel": channel, "topic": topic[:250]})

    def set_purpose(self, channel: str, purpose: str) -> None:
        self._call("conversations.setPurpose", data={"channel": channel, "purpose": purpose[:250]})

    def archive(self, channel: str) -> None:
        try:
            self._call("conversations.archive", data={"channel": channel})
        except SlackError as err:
            if err.code != "already_archived":
                raise

    def open_dm(self, user: str) -> str:
        return self._call("conversations.open", data={"users": user})["channel"]["id"]

    def history(self, channel: str, *, limit: int = 100) -> list[dict[str, Any]]:
        return self._call(
            "conversations.history",
            params={"channel": channel, "limit": limit, "include_all_metadata": True},
        ).get("messages", [])

    def find_posted(self, channel: str, event_type: str, payload: dict[str, Any], *, limit: int = 100) -> str | None:
        """The ts of a message the bot posted in `channel` (a user id means their DM) carrying
        this metadata: how a retry after a crash or a lost answer learns it was delivered."""
        if channel.startswith(("U", "W")):
            channel = self.open_dm(channel)
        bot = self.bot_user_id()
        for message in self.history(channel, limit=limit):
            meta = message.get("metadata") or {}
            if (message.get("user") == bot and meta.get("event_type") == event_type
                    and all((meta.get("event_payload") or {}).get(k) == v for k, v in payload.items())):
                return message.get("ts")
        return None

    def posted_file(self, channel: str, filename: str, since: float, text_has: str) -> bool:
        """Whether the bot posted a file `filename`, with `text_has` in its message, after `since`."""
        bot = self.bot_user_id()
        for message in self.history(channel, limit=50):
            if float(message.get("ts", 0)) < since:
                break
            if (message.get("user") == bot and text_has in (message.get("text") or "")
                    and any(f.get("name") == filename for f in message.get("files") or [])):
                return True
        return False

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """One message by its ts: from the channel's history, or (a thread reply, which the
        history does not hold) from conversations.replies."""
        params = {"channel": channel, "latest": ts, "inclusive": True, "limit": 1}
        for method, query in (("conversations.history", params), ("conversations.replies", {**params, "ts": ts})):
            try:
                messages = self._call(method, params=query).get("messages", [])
            except SlackError as err:
                if err.code in ("thread_not_found", "message_not_found", "channel_not_found", "invalid_ts_latest"):
                    continue  # there is no such message
                raise
            for message in messages:
                if message.get("ts") == ts:
                    return message
        return None

    # -- messages ----------------------------------------------------------------------
    def post(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
        once: bool = False,
    ) -> str:
        text, blocks = fit_message(text, blocks)
        body: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False, "unfurl_media": False}
        if blocks is not None:
            body["blocks"] = blocks
        if thread_ts:
            body["thread_ts"] = thread_ts
        if metadata:
            body["metadata"] = metadata
        return self._call("chat.postMessage", once=once, json=body)["ts"]

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        text, blocks = fit_message(text, blocks)
        body: dict[str, Any] = {"channel": channel, "ts": ts, "text": text}
        if blocks is not None:
            body["blocks"] = blocks
        self._call("chat.update", json=body)

    def post_ephemeral(self, channel: str, user: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        text, blocks = fit_message(text, blocks)
        body: dict[str, Any] = {"channel": channel, "user": user, "text": text}
        if blocks is not None:
            body["blocks"] = blocks
        self._call("chat.postEphemeral", json=body)

    def tell(self, channel: str | None, user: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        """An ephemeral message to `user` in `channel`, or a DM when there is no channel or the
        bot cannot post there (archived, gone). Raises SlackError when the DM fails too."""
        if channel:
            try:
                self.post_ephemeral(channel, user, text, blocks)
                return
            except SlackError:
                pass
        self.post(user, text, blocks)

    def respond(self, response_url: str, text: str, blocks: list[dict[str, Any]] | None = None, *,
                replace_original: bool = True) -> None:
        """Post to a command's or a click's response_url (ephemeral; by default replacing the
        message it answered). Raises SlackError when Slack refuses it (expired, used up)."""
        from slack_sdk.webhook import WebhookClient

        text, blocks = fit_message(text, blocks)
        try:
            answer = WebhookClient(response_url, timeout=self.client.timeout).send(
                text=text, blocks=blocks, response_type="ephemeral", replace_original=replace_original)
        except Exception as err:  # noqa: BLE001 (no connection: the caller falls back)
            raise SlackError(type(err).__name__, "response_url") from None
        if answer.status_code != 200:
            raise SlackError(str(answer.body or answer.status_code)[:40], "response_url")

    def bookmarks(self, channel: str) -> list[dict[str, Any]]:
        return self._call("bookmarks.list", data={"channel_id": channel}).get("bookmarks", [])

    def add_bookmark(self, channel: str, title: str, link: str, emoji: str | None = None) -> None:
        data = {"channel_id": channel, "title": title, "type": "link", "link": link}
        if emoji:
            data["emoji"] = emoji
        self._call("bookmarks.add", data=data)

    def pin(self, channel: str, ts: str) -> None:
        try:
            self._call("pins.add", data={"channel": channel, "timestamp": ts})
        except SlackError as err:
            if err.code != "already_pinned":
                raise

    def permalink(self, channel: str, ts: str) -> str | None:
        try:
            return self._call("chat.getPermalink", params={"channel": channel, "message_ts": ts}).get("permalink")
        except SlackError:
            return None

    def upload(self, channel: str, filename: str, content: str, title: str, comment: str | None = None) -> None:
        try:
            # Not retried blindly after a 5xx (the file may be posted already): the task's
            # retry looks for it first (see `posted_file`).
            with self._timed("files.upload"):
                self._once_client().files_upload_v2(
                    channel=channel, filename=filename, content=content, title=title, initial_comment=comment
                )
        except SlackApiError as exc:
            _raise_rate_limited(exc, "files.upload")
            raise SlackError(exc.response.get("error", "unknown_error"), "files.upload") from None

    # -- views -------------------------------------------------------------------------
    def open_view(self, trigger_id: str, view: dict[str, Any]) -> dict[str, Any]:
        return self._call("views.open", json={"trigger_id": trigger_id, "view": json.dumps(view)})["view"]

    def update_view(self, view_id: str, view: dict[str, Any]) -> None:
        self._call("views.update", json={"view_id": view_id, "view": json.dumps(view)})

    def publish_home(self, user_id: str, view: dict[str, Any]) -> None:
        self._call("views.publish", json={"user_id": user_id, "view": json.dumps(view)})

    # -- people ------------------------------------------------------------------------
    def person(self, user_id: str) -> dict[str, Any] | None:
        """The user as Slack has them now (None: no such user). Other Slack errors are raised."""
        try:
            info = self._call("users.info", params={"user": user_id})["user"]
        except SlackError as err:
            if err.code == "user_not_found":
                return None
            raise
        with self._users_lock:
            self._users[user_id] = info
        return info

    def user(self, user_id: str) -> dict[str, Any] | None:
        with self._users_lock:
            if user_id in self._users:
                return self._users[user_id]
        try:
            info = self._call("users.info", params={"user": user_id})["user"]
        except SlackError:
            return None
        with self._users_lock:
            self._users[user_id] = info
        return info

    def usergroup_members(self, usergroup: str) -> list[str]:
        return self._call("usergroups.users.list", params={"usergroup": usergroup}).get("users", [])

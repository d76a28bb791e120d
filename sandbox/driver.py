"""Send Slack-signed requests to the bot, as Slack does, and show what Slack would show."""

from __future__ import annotations

import itertools
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from . import payloads
from .api.views import MAX_STACK, apply_view, new_view
from .blockkit import BlockError, check_view, find_element, iter_elements, plain
from .models import Channel, Message, View
from .responses import ResponseError, show
from .socket_mode import NotConnected

if TYPE_CHECKING:
    from .server import Sandbox
    from .workspace import Workspace

ACK_DEADLINE = 3.0  # Slack gives up on an answer after 3 seconds


@dataclass
class Result:
    """What happened to one request sent to the bot."""

    status: int | None
    body: Any = None  # parsed JSON, text, or None when empty
    elapsed: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    payload: Any = None  # what was sent (form dict or JSON payload)
    text: str = ""
    timed_out: bool = False  # no answer within Slack's 3 s: Slack shows an error and drops it
    error: str | None = None  # transport error, or what Slack would show the user
    message: Message | None = None  # the message Slack showed because of the answer
    view: View | None = None  # the view after a submission (None when it closed)
    errors: dict[str, str] | None = None  # response_action=errors of a view submission
    delivered: bool = True  # False when Slack would not have sent anything

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and not self.timed_out

    def json(self) -> Any:
        return self.body


class Driver:
    """Plays Slack's side towards the bot at `bot_url` (`http://host:port/slack/events`)."""

    def __init__(
        self,
        bot_url: str | None,
        signing_secret: str,
        sandbox: Sandbox,
        *,
        timeout: float = 10.0,
        ack_deadline: float = ACK_DEADLINE,
    ) -> None:
        self.bot_url = bot_url
        self.signing_secret = signing_secret
        self.sandbox = sandbox
        self.timeout = timeout
        self.ack_deadline = ack_deadline
        self.verifier = SignatureVerifier(signing_secret)
        self.socket_mode = False  # True: requests go over Socket Mode instead of to bot_url
        self._event_numbers = itertools.count(1)

    @property
    def ws(self) -> Workspace:
        return self.sandbox.state

    # ------------------------------------------------------------------ transport

    def sign(self, body: bytes | str, timestamp: int | str) -> str:
        raw = body.decode("utf-8") if isinstance(body, bytes) else body
        return self.verifier.generate_signature(timestamp=str(timestamp), body=raw) or ""

    def send(
        self,
        body: bytes,
        content_type: str,
        *,
        payload: Any = None,
        timestamp: int | str | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Result:
        """POST `body` to the bot, signed (or with the given bad timestamp/signature)."""
        if not self.bot_url:
            raise RuntimeError("the sandbox has no bot URL: call set_bot_url() first")
        ts = str(int(time.time()) if timestamp is None else timestamp)
        sent_headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature if signature is not None else self.sign(body, ts),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            **(headers or {}),
        }
        started = time.monotonic()
        try:
            response = httpx.post(
                self.bot_url, content=body, headers=sent_headers, timeout=timeout or self.timeout
            )
        except httpx.TimeoutException:
            return Result(None, payload=payload, elapsed=time.monotonic() - started, timed_out=True,
                          error="operation_timeout")
        except httpx.HTTPError as exc:
            return Result(None, payload=payload, elapsed=time.monotonic() - started,
                          error=f"connection_failed: {exc}")
        elapsed = time.monotonic() - started
        text = response.text
        parsed: Any = None
        if text.strip():
            try:
                parsed = response.json()
            except ValueError:
                parsed = text
        return Result(
            response.status_code,
            body=parsed,
            elapsed=elapsed,
            headers=dict(response.headers),
            payload=payload,
            text=text,
            timed_out=elapsed > self.ack_deadline,
            error="operation_timeout" if elapsed > self.ack_deadline else None,
        )

    def send_form(self, form: dict[str, str], **kw: Any) -> Result:
        if self.socket_mode:
            return self.send_envelope("slash_commands", form, **kw)
        return self.send(urlencode(form).encode(), "application/x-www-form-urlencoded", payload=form, **kw)

    def send_interaction(self, payload: dict[str, Any], **kw: Any) -> Result:
        if self.socket_mode:
            return self.send_envelope("interactive", payload, **kw)
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.send(body, "application/x-www-form-urlencoded", payload=payload, **kw)

    def send_json(self, payload: dict[str, Any], **kw: Any) -> Result:
        if self.socket_mode:
            return self.send_envelope("events_api", payload, **kw)
        return self.send(json.dumps(payload).encode(), "application/json", payload=payload, **kw)

    @property
    def reachable(self) -> bool:
        """Whether requests can reach the bot: a bot URL, or an open Socket Mode connection."""
        return self.sandbox.socket_mode.connected > 0 if self.socket_mode else bool(self.bot_url)

    def send_envelope(self, kind: str, payload: dict[str, Any], *, headers: dict[str, str] | None = None,
                      timeout: float | None = None, **_unsigned: Any) -> Result:
        """Send a request over the app's Socket Mode connection (nothing is signed there)."""
        headers = headers or {}
        accepts = kind == "slash_commands" or payload.get("type") in ("view_submission", "block_suggestion")
        try:
            acked, ack, elapsed = self.sandbox.socket_mode.request(
                kind, payload, accepts_response_payload=accepts, timeout=timeout or self.timeout,
                retry_attempt=int(headers.get("X-Slack-Retry-Num", 0)),
                retry_reason=headers.get("X-Slack-Retry-Reason", ""),
            )
        except NotConnected as exc:
            return Result(None, payload=payload, error=f"connection_failed: {exc}")
        late = not acked or elapsed > self.ack_deadline
        return Result(200 if acked else None, body=ack, elapsed=elapsed, payload=payload,
                      text=json.dumps(ack) if ack else "", timed_out=late,
                      error="operation_timeout" if late else None)

    # ------------------------------------------------------------------ lookups

    def _channel(self, key: str) -> Channel:
        ch = self.ws.channel(key)
        if ch is None and key in self.ws.users:
            ch = self.ws.dm_channel(key, create=True)
        if ch is None:
            raise ValueError(f"no channel {key!r}")
        return ch

    def _user(self, key: str) -> str:
        user = self.ws.user(key)
        if user is None:
            raise ValueError(f"no user {key!r}")
        return user.id

    def _member_channel(self, user: str, channel: str) -> Channel:
        ch = self._channel(channel)
        if user not in ch.members:
            raise ValueError(f"{user} is not in {ch.name} ({ch.id}): Slack would not let them act there")
        return ch

    def _message(self, user: str, ch: Channel, ts: str) -> Message:
        message = ch.find(ts) or ch.find_ephemeral(ts, user)
        if message is None:
            raise ValueError(f"no message {ts} in {ch.id} that {user} can see")
        return message

    def _open_view(self, user: str, view_id: str) -> View:
        view = self.ws.views.get(view_id)
        if view is None or view.closed or view.id not in self.ws.view_stacks.get(user, []):
            raise ValueError(f"{user} has no open view {view_id}")
        return view

    def _element(self, blocks: list[dict] | None, action_id: str, value: Any, block_id: str | None):
        found = find_element(blocks, action_id, None if value is None else str(value), block_id)
        if found is None:
            have = ", ".join(payloads.describe_element(e) for _, e in iter_elements(blocks))
            raise ValueError(f"no element {action_id!r} (have: {have or 'none'})")
        return found

    # ------------------------------------------------------------------ slash commands

    def command(
        self,
        user: str,
        text: str = "",
        channel: str = "C0OPS0001",
        command: str = "/incident",
        *,
        timestamp: int | str | None = None,
        signature: str | None = None,
    ) -> Result:
        """Run `command text` as `user` in `channel`; the answer is shown like Slack shows it."""
        ws = self.ws
        user = self._user(user)
        with ws.lock:
            ch = self._member_channel(user, channel)
            response_url = ws.mint_response_url(
                self.sandbox.base_url, channel=ch.id, user=user, kind="command"
            )
            form = payloads.command_form(
                ws,
                user=user,
                channel=ch,
                command=command,
                text=ws.resolve_mentions(text, with_name=True),  # `@cole` typed, as Slack's client sends it
                response_url=response_url,
                trigger_id=ws.mint_trigger(user),
            )
        result = self.send_form(form, timestamp=timestamp, signature=signature)
        if not result.ok:
            if result.status is not None and not result.timed_out:
                result.error = result.error or "http_service_error"
            return result
        body = result.body
        if body is None:
            return result
        answer = body if isinstance(body, dict) else {"text": str(body)}
        if not (answer.get("text") or answer.get("blocks") or answer.get("attachments")):
            return result
        try:
            result.message = show(ws, channel=ch.id, user=user, body=answer, source="command_response")
        except ResponseError as exc:
            result.error = exc.code
            return result
        if result.message is not None:
            rid = response_url.rsplit("/", 1)[-1]
            with ws.lock:
                url = ws.response_urls[rid]
                url.message_ts = result.message.ts
                url.message_ephemeral = result.message.is_ephemeral
        return result

    # ------------------------------------------------------------------ interactions

    def click(
        self,
        user: str,
        channel: str,
        message_ts: str,
        action_id: str,
        value: Any = None,
        block_id: str | None = None,
        *,
        timestamp: int | str | None = None,
        signature: str | None = None,
    ) -> Result:
        """Click a button (or choose `value` in a select) of a message; sends `block_actions`."""
        ws = self.ws
        user = self._user(user)
        with ws.lock:
            ch = self._member_channel(user, channel)
            message = self._message(user, ch, message_ts)
            block, element = self._element(message.blocks, action_id, value, block_id)
            payload = payloads.block_actions_for_message(
                ws,
                user=user,
                channel=ch,
                message=message,
                block=block,
                element=element,
                value=value if element.get("type") != "button" else None,
                trigger_id=ws.mint_trigger(user),
                response_url=ws.mint_response_url(
                    self.sandbox.base_url,
                    channel=ch.id,
                    user=user,
                    kind="block_actions",
                    message_ts=message.ts,
                    message_ephemeral=message.is_ephemeral,
                ),
            )
        return self.send_interaction(payload, timestamp=timestamp, signature=signature)

    def click_view(
        self,
        user: str,
        view_id: str,
        action_id: str,
        value: Any = None,
        block_id: str | None = None,
        *,
        timestamp: int | str | None = None,
        signature: str | None = None,
    ) -> Result:
        """Click a button (or choose in a select) inside an open modal."""
        ws = self.ws
        user = self._user(user)
        with ws.lock:
            view = self._open_view(user, view_id)
            block, element = self._element(view.blocks, action_id, value, block_id)
            kind = element.get("type")
            if kind != "button" and value is not None:
                state = payloads.element_state(element, value)
                if state is not None:
                    view.state.setdefault("values", {}).setdefault(block.get("block_id"), {})[
                        element.get("action_id")
                    ] = state
            payload = payloads.block_actions_for_view(
                ws,
                user=user,
                view=view,
                block=block,
                element=element,
                value=value if kind != "button" else None,
                trigger_id=ws.mint_trigger(user),
            )
        result = self.send_interaction(payload, timestamp=timestamp, signature=signature)
        result.view = view
        return result

    def _required_missing(self, view: View, values: dict[str, dict[str, Any]]) -> dict[str, str]:
        missing = {}
        for block in view.blocks:
            if block.get("type") != "input" or block.get("optional"):
                continue
            element = block.get("element") or {}
            state = values.get(block.get("block_id"), {}).get(element.get("action_id"))
            if state is None or all(
                v in (None, "", []) for k, v in state.items() if k != "type"
            ):
                missing[block.get("block_id")] = "Please complete this required field."
        return missing

    def submit_view(
        self,
        user: str,
        view_id: str,
        values: dict[str, dict[str, Any]] | None = None,
        *,
        enforce_required: bool = True,
        timestamp: int | str | None = None,
        signature: str | None = None,
    ) -> Result:
        """Submit an open modal with `values` = {block_id: {action_id: raw}}.

        Raw values: text for inputs, the option value for selects, a user id (or list of ids)
        for user selects, a list of option values for checkboxes / multi selects. Like the
        Slack client, refuses (without a request) when a required input is empty.
        """
        ws = self.ws
        user = self._user(user)
        values = values or {}
        with ws.lock:
            view = self._open_view(user, view_id)
            known = {(b.get("block_id"), e.get("action_id")) for b, e in iter_elements(view.blocks)}
            for block_id, actions in values.items():
                for action_id in actions:
                    if (block_id, action_id) not in known:
                        raise ValueError(f"view {view_id} has no element {block_id}/{action_id}")
            current = view.state.get("values", {})
            merged_raw = {b: dict(a) for b, a in values.items()}
            state = payloads.state_values(view.blocks, merged_raw)
            for block_id, actions in current.items():  # keep what earlier interactions chose
                for action_id, old in actions.items():
                    if values.get(block_id, {}).get(action_id) is None and block_id in state:
                        state[block_id][action_id] = old
            if enforce_required:
                missing = self._required_missing(view, state)
                if missing:
                    return Result(None, errors=missing, view=view, delivered=False,
                                  error="required fields are empty")
            view.state = {"values": state}
            payload = payloads.view_submission(ws, user=user, view=view, trigger_id=ws.mint_trigger(user))
        result = self.send_interaction(payload, timestamp=timestamp, signature=signature)
        result.view = view
        if not result.ok:
            result.error = result.error or "We had some trouble connecting. Try again?"
            return result
        body = result.body if isinstance(result.body, dict) else {}
        action = body.get("response_action")
        with ws.lock:
            if action == "errors":
                result.errors = dict(body.get("errors") or {})
            elif action in ("update", "push"):
                new_view = body.get("view")
                try:
                    check_view(new_view, ("modal",))  # response_action views are modals
                except BlockError as exc:
                    result.error = f"{exc.code}: {exc}"
                    return result
                result.view = self._replace_or_push(user, view, new_view, push=action == "push")
            elif action == "clear":
                ws.close_view(user, clear=True)
                result.view = None
            else:
                ws.close_view(user, view.id)
                result.view = None
        return result

    def _replace_or_push(self, user: str, view: View, raw: dict[str, Any], *, push: bool) -> View:
        ws = self.ws
        if not push:
            view.state = {"values": {}}
            apply_view(ws, view, raw)
            return view
        stack = ws.view_stacks.setdefault(user, [])
        if len(stack) >= MAX_STACK:
            return view
        new = new_view(ws, user, raw, view)
        stack.append(new.id)
        return new

    def close_view(
        self,
        user: str,
        view_id: str,
        *,
        timestamp: int | str | None = None,
        signature: str | None = None,
    ) -> Result:
        """The user closes (cancels) a modal; sends `view_closed` if the view asked for it."""
        ws = self.ws
        user = self._user(user)
        with ws.lock:
            view = self._open_view(user, view_id)
            clear = view.clear_on_close
            payload = payloads.view_closed(ws, user=user, view=view, is_cleared=clear)
            ws.close_view(user, view.id, clear=clear)
        if not view.notify_on_close:
            return Result(None, payload=payload, delivered=False)
        return self.send_interaction(payload, timestamp=timestamp, signature=signature)

    def shortcut(
        self,
        user: str,
        channel: str,
        message_ts: str,
        callback_id: str,
        *,
        timestamp: int | str | None = None,
        signature: str | None = None,
    ) -> Result:
        """Run a message shortcut on a message; sends `message_action`."""
        ws = self.ws
        user = self._user(user)
        with ws.lock:
            ch = self._member_channel(user, channel)
            message = ch.find(message_ts)
            if message is None:
                raise ValueError(f"no message {message_ts} in {ch.id}")
            payload = payloads.message_action(
                ws,
                user=user,
                channel=ch,
                message=message,
                callback_id=callback_id,
                trigger_id=ws.mint_trigger(user),
                response_url=ws.mint_response_url(
                    self.sandbox.base_url, channel=ch.id, user=user, kind="message_action"
                ),
            )
        return self.send_interaction(payload, timestamp=timestamp, signature=signature)

    # ------------------------------------------------------------------ events

    def event(
        self,
        event: dict[str, Any],
        retry_num: int | None = None,
        *,
        retry_reason: str = "http_timeout",
        event_id: str | None = None,
        timestamp: int | str | None = None,
        signature: str | None = None,
        timeout: float | None = None,
    ) -> Result:
        """Send any Events API event wrapped as an `event_callback` (reuse `event_id` to resend)."""
        ws = self.ws
        event_id = event_id or f"Ev0{next(self._event_numbers):06d}{secrets.token_hex(3).upper()}"
        payload = payloads.event_callback(ws, event, event_id=event_id, event_time=int(ws.now()))
        headers = {}
        if retry_num:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        return self.send_json(payload, timestamp=timestamp, signature=signature, headers=headers,
                              timeout=timeout)

    def url_verification(
        self, challenge: str, *, timestamp: int | str | None = None, signature: str | None = None
    ) -> Result:
        return self.send_json(
            payloads.url_verification(challenge), timestamp=timestamp, signature=signature
        )

    def react(
        self,
        user: str,
        channel: str,
        ts: str,
        reaction: str,
        *,
        timestamp: int | str | None = None,
        signature: str | None = None,
    ) -> Result:
        """`user` adds `:reaction:` to a message; the bot hears `reaction_added` if it is in the channel."""
        ws = self.ws
        user = self._user(user)
        reaction = reaction.strip(":")
        with ws.lock:
            ch = self._member_channel(user, channel)
            message = ch.find(ts)
            if message is None:
                raise ValueError(f"no message {ts} in {ch.id}")
            entry = next((r for r in message.reactions if r["name"] == reaction), None)
            if entry is None:
                entry = {"name": reaction, "users": [], "count": 0}
                message.reactions.append(entry)
            if user not in entry["users"]:
                entry["users"].append(user)
                entry["count"] = len(entry["users"])
            event = {
                "type": "reaction_added",
                "user": user,
                "reaction": reaction,
                "item": {"type": "message", "channel": ch.id, "ts": ts},
                "item_user": message.user,
                "event_ts": ws.next_ts(),
            }
            bot_member = ws.bot_user_id in ch.members
        if not bot_member:
            return Result(None, payload=event, delivered=False)
        return self.event(event, timestamp=timestamp, signature=signature)

    def open_home(self, user: str, *, timestamp: int | str | None = None, signature: str | None = None) -> Result:
        """`user` opens the app's Home tab: Slack sends `app_home_opened` (with the view it shows,
        once the app has published one), on every opening."""
        ws = self.ws
        user = self._user(user)
        with ws.lock:
            dm = ws.dm_channel(user, create=True)
            event: dict[str, Any] = {"type": "app_home_opened", "user": user, "channel": dm.id, "tab": "home",
                                     "event_ts": ws.next_ts()}
            current = ws.views.get(ws.home_views.get(user, ""))
            if current is not None:
                event["view"] = current.to_api()
        return self.event(event, timestamp=timestamp, signature=signature)

    def home(self, user: str):
        """The Home tab view the app last published for `user` (None before the first)."""
        ws = self.ws
        with ws.lock:
            return ws.views.get(ws.home_views.get(self._user(user), ""))

    def click_home(self, user: str, action_id: str, value: Any = None, block_id: str | None = None, *,
                   timestamp: int | str | None = None, signature: str | None = None) -> Result:
        """Click a button on the app's Home tab of `user` (`block_actions` with a `view` container)."""
        ws = self.ws
        user = self._user(user)
        with ws.lock:
            view = ws.views.get(ws.home_views.get(user, ""))
            if view is None:
                raise ValueError(f"the app has published no Home tab for {user}")
            block, element = self._element(view.blocks, action_id, value, block_id)
            payload = payloads.block_actions_for_view(ws, user=user, view=view, block=block, element=element,
                                                      value=None, trigger_id=ws.mint_trigger(user))
        result = self.send_interaction(payload, timestamp=timestamp, signature=signature)
        result.view = view
        return result

    def join(
        self,
        user: str,
        channel: str,
        *,
        inviter: str | None = None,
        timestamp: int | str | None = None,
        signature: str | None = None,
    ) -> Result:
        """`user` joins (or a human `inviter` adds them to) a channel; the bot hears
        `member_joined_channel` if it is in the channel."""
        ws = self.ws
        user = self._user(user)
        with ws.lock:
            ch = self._channel(channel)
            if ch.is_im or user in ch.members:
                raise ValueError(f"{user} cannot join {ch.id}")
            if ch.is_private and (inviter is None or inviter not in ch.members):
                raise ValueError(f"{ch.name} is private: an inviter who is a member is needed")
            ch.members.append(user)
            note = Message(
                channel=ch.id, ts=ws.next_ts(), user=user, text=f"<@{user}> has joined the channel",
                subtype="channel_join", source="system", args={"inviter": inviter} if inviter else {},
            )
            ws.add_message(note)
            event = {
                "type": "member_joined_channel",
                "user": user,
                "channel": ch.id,
                "channel_type": "G" if ch.is_private else "C",
                "team": ws.team_id,
                "event_ts": note.ts,
            }
            if inviter:
                event["inviter"] = inviter
            bot_member = ws.bot_user_id in ch.members
        if not bot_member:
            return Result(None, payload=event, delivered=False)
        return self.event(event, timestamp=timestamp, signature=signature)

    def leave(
        self,
        user: str,
        channel: str,
        *,
        timestamp: int | str | None = None,
        signature: str | None = None,
    ) -> Result:
        """`user` leaves (or is removed from) a channel; the bot hears `member_left_channel`
        if it is in the channel."""
        ws = self.ws
        user = self._user(user)
        with ws.lock:
            ch = self._channel(channel)
            if ch.is_im or user not in ch.members:
                raise ValueError(f"{user} is not in {ch.id}")
            ch.members.remove(user)
            note = Message(channel=ch.id, ts=ws.next_ts(), user=user, text=f"<@{user}> has left the channel",
                           subtype="channel_leave", source="system")
            ws.add_message(note)
            event = {"type": "member_left_channel", "user": user, "channel": ch.id,
                     "channel_type": "G" if ch.is_private else "C", "team": ws.team_id, "event_ts": note.ts}
            bot_member = ws.bot_user_id in ch.members
        if not bot_member:
            return Result(None, payload=event, delivered=False)
        return self.event(event, timestamp=timestamp, signature=signature)

    def post_as(
        self,
        user: str,
        channel: str,
        text: str,
        files: list[dict[str, Any]] | None = None,
        *,
        thread_ts: str | None = None,
        send_event: bool = False,
        timestamp: int | str | None = None,
        signature: str | None = None,
    ) -> Result:
        """A human message. `files` ({name, mimetype}) are metadata only: no bytes are stored.

        Sends a `message` event when `send_event` (the app does not subscribe to them by
        default) and an `app_mention` when the text mentions the bot; only if the bot is in
        the channel.
        """
        ws = self.ws
        user = self._user(user)
        text = ws.resolve_mentions(text, with_name=False)  # a typed `@cole`, as Slack's client sends it
        with ws.lock:
            ch = self._member_channel(user, channel)
            if ch.is_archived:
                raise ValueError(f"{ch.name} is archived")
            file_objs = [
                {
                    "id": ws.new_id("F"),
                    "name": f.get("name", "file"),
                    "title": f.get("title", f.get("name", "file")),
                    "mimetype": f.get("mimetype", "application/octet-stream"),
                    "user": user,
                    "size": int(f.get("size", 0)),
                }
                for f in files or []
            ]
            message = Message(
                channel=ch.id,
                ts=ws.next_ts(),
                user=user,
                text=text,
                team=ws.team_id,
                files=file_objs or None,
                subtype="file_share" if file_objs else None,
                thread_ts=thread_ts,
                source="human",
                args={"text": text, "files": files or []},
            )
            ws.add_message(message)
            base = {
                "channel": ch.id,
                "user": user,
                "text": text,
                "ts": message.ts,
                "team": ws.team_id,
                "event_ts": message.ts,
                "channel_type": ch.kind,
            }
            if thread_ts:
                base["thread_ts"] = thread_ts
            if file_objs:
                base["files"] = file_objs
                base["subtype"] = "file_share"
            bot_member = ws.bot_user_id in ch.members
        results = []
        if bot_member and send_event:
            results.append(self.event({"type": "message", **base}, timestamp=timestamp, signature=signature))
        if bot_member and re.search(rf"<@{re.escape(ws.bot_user_id)}(\|[^>]*)?>", text):
            mention = {k: v for k, v in base.items() if k != "channel_type"}
            results.append(self.event({"type": "app_mention", **mention}, timestamp=timestamp,
                                      signature=signature))
        result = results[0] if results else Result(None, delivered=False)
        result.message = message
        return result


def describe(result: Result) -> str:
    """One line for logs and the page."""
    if result.timed_out:
        return f"timed out after {result.elapsed:.2f}s"
    if result.status is None:
        return result.error or "not sent"
    return f"HTTP {result.status} in {result.elapsed * 1000:.0f} ms: {plain(result.text)[:200]}"

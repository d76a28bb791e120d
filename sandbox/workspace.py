"""The state of one sandbox Slack workspace, and the seeded demo workspace."""

from __future__ import annotations

import itertools
import re
import secrets
import threading
from typing import Any

from .clock import SystemClock
from .models import (
    Bookmark,
    Call,
    Channel,
    Delivery,
    File,
    Message,
    ResponseUrl,
    Trigger,
    User,
    Usergroup,
    View,
)

# `@name` at the start or after a space or punctuation (not inside `ana@example.org`).
_TYPED_MENTION = re.compile(r"(^|[\s(\[{,;:])@([A-Za-z0-9](?:[\w.\-]{0,78}\w)?)")


class Workspace:
    """Users, channels, messages, views and files of one team, plus what happened to them.

    Everything is guarded by `lock` (re-entrant); API handlers run while holding it.
    The inspection helpers return the live records (tests only read them).
    """

    def __init__(
        self,
        *,
        team_id: str = "T0SANDBOX",
        team_domain: str = "safeguard-sandbox",
        team_name: str = "Safeguard Sandbox",
        app_id: str = "A0SAFEGRD",
        bot_user_id: str = "U0BOT0001",
        bot_id: str = "B0BOT0001",
        bot_name: str = "safeguard",
        bot_real_name: str = "Safeguard",
        clock: Any = None,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock or SystemClock()
        self.team_id = team_id
        self.team_domain = team_domain
        self.team_name = team_name
        self.app_id = app_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.users: dict[str, User] = {}
        self.usergroups: dict[str, Usergroup] = {}
        self.channels: dict[str, Channel] = {}
        self.views: dict[str, View] = {}
        self.view_stacks: dict[str, list[str]] = {}
        self.home_views: dict[str, str] = {}  # user id -> the view id of their Home tab
        self.files: dict[str, File] = {}
        self.triggers: dict[str, Trigger] = {}
        self.response_urls: dict[str, ResponseUrl] = {}
        self.calls: list[Call] = []
        self.deliveries: list[Delivery] = []
        self._last_us = 0
        self._counter = itertools.count(1)
        self.add_user(User(bot_user_id, bot_name, bot_real_name, is_bot=True, bot_id=bot_id))

    # ----------------------------------------------------------------- ids, time

    def now(self) -> float:
        return self.clock.now()

    def next_ts(self) -> str:
        """A message ts like `1732460000.000100`, strictly increasing in this workspace."""
        with self.lock:
            us = int(self.now() * 1_000_000)
            if us <= self._last_us:
                us = self._last_us + 1
            self._last_us = us
            return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def new_id(self, prefix: str) -> str:
        """A fresh Slack-looking id (`C0…`, `D0…`, `V0…`, `F0…`, `Bk0…`)."""
        return f"{prefix}0{next(self._counter):07X}"

    # ----------------------------------------------------------------- seeding

    def add_user(self, user: User) -> User:
        with self.lock:
            if user.email is None and not user.is_bot:
                user.email = f"{user.name}@example.org"
            if not user.display_name:
                user.display_name = user.name
            self.users[user.id] = user
            return user

    def add_usergroup(self, group_id: str, handle: str, users: list[str], name: str = "") -> Usergroup:
        with self.lock:
            group = Usergroup(group_id, handle, name or handle, list(users))
            self.usergroups[group_id] = group
            return group

    def add_channel(
        self,
        name: str,
        *,
        channel_id: str | None = None,
        is_private: bool = False,
        members: list[str] | tuple[str, ...] = (),
        creator: str | None = None,
        is_general: bool = False,
    ) -> Channel:
        """Create a channel directly (seeding/tests; no name checks, no API call recorded)."""
        with self.lock:
            channel = Channel(
                id=channel_id or self.new_id("C"),
                name=name,
                is_private=is_private,
                created=int(self.now()),
                creator=creator or (members[0] if members else self.bot_user_id),
                members=list(dict.fromkeys(members)),
                is_general=is_general,
            )
            self.channels[channel.id] = channel
            return channel

    def join(self, channel: str, user: str) -> None:
        with self.lock:
            ch = self._need_channel(channel)
            if user not in ch.members:
                ch.members.append(user)

    def remove_member(self, channel: str, user: str) -> None:
        """Take someone (or the bot) out of a channel, as a human admin would."""
        with self.lock:
            ch = self._need_channel(channel)
            if user in ch.members:
                ch.members.remove(user)

    # ----------------------------------------------------------------- lookups

    def channel(self, key: str) -> Channel | None:
        """A channel by id, name or `#name`."""
        with self.lock:
            if key in self.channels:
                return self.channels[key]
            name = key.lstrip("#")
            for ch in self.channels.values():
                if ch.name == name and not ch.is_im:
                    return ch
            return None

    def channel_by_id(self, channel_id: str) -> Channel | None:
        return self.channels.get(channel_id)

    def channel_by_name(self, name: str) -> Channel | None:
        with self.lock:
            for ch in self.channels.values():
                if ch.name == name and not ch.is_im:
                    return ch
            return None

    def _need_channel(self, key: str) -> Channel:
        ch = self.channel(key)
        if ch is None:
            raise KeyError(f"no channel {key!r}")
        return ch

    def user(self, key: str) -> User | None:
        """A user by id or name."""
        with self.lock:
            if key in self.users:
                return self.users[key]
            for u in self.users.values():
                if u.name == key.lstrip("@"):
                    return u
            return None

    def resolve_mentions(self, text: str, *, with_name: bool) -> str:
        """What Slack's client does with a typed `@cole`: a known user's name or display name
        (any case) becomes a mention. A command whose manifest says `should_escape: true` (ours)
        gets it as `<@U…|cole>` (`with_name`), a message as `<@U…>`. An address such as
        `ana@example.org`, or an unknown name, stays text."""

        def mention(match: re.Match[str]) -> str:
            word = match.group(2)
            with self.lock:
                found = next((u for u in self.users.values() if not u.deleted and word.lower() in
                              {u.name.lower(), (u.display_name or "").lower()} - {""}), None)
            if found is None:
                return match.group(0)
            return f"{match.group(1)}<@{found.id}|{found.name}>" if with_name else f"{match.group(1)}<@{found.id}>"

        return _TYPED_MENTION.sub(mention, text)

    def user_name(self, user_id: str) -> str:
        u = self.users.get(user_id)
        return u.name if u else user_id

    def messages(
        self, channel: str, include_replies: bool = True, system: bool = False
    ) -> list[Message]:
        """Messages everyone in the channel sees, oldest first.

        Slack's own notices (`channel_join`, `channel_topic`, … subtypes) are left out unless
        `system`; conversations.history always includes them, as Slack does.
        """
        with self.lock:
            ch = self._need_channel(channel)
            return [
                m
                for m in ch.messages
                if (include_replies or not m.thread_ts or m.thread_ts == m.ts)
                and (system or m.source != "system")
            ]

    def message(self, channel: str, ts: str) -> Message | None:
        with self.lock:
            ch = self._need_channel(channel)
            return ch.find(ts) or ch.find_ephemeral(ts)

    def last_message(self, channel: str) -> Message | None:
        msgs = self.messages(channel)
        return msgs[-1] if msgs else None

    def ephemeral(self, channel: str, user: str | None = None) -> list[Message]:
        """Ephemeral messages in a channel (only those shown to `user` when given)."""
        with self.lock:
            ch = self._need_channel(channel)
            return [m for m in ch.ephemeral if user is None or m.ephemeral_to == user]

    def ephemeral_for(self, user: str) -> list[Message]:
        """Every ephemeral message shown to `user`, oldest first."""
        with self.lock:
            found = [m for ch in self.channels.values() for m in ch.ephemeral if m.ephemeral_to == user]
            return sorted(found, key=lambda m: float(m.ts))

    def pins(self, channel: str) -> list[str]:
        with self.lock:
            return list(self._need_channel(channel).pins)

    def pinned_messages(self, channel: str) -> list[Message]:
        with self.lock:
            ch = self._need_channel(channel)
            return [m for ts in ch.pins if (m := ch.find(ts))]

    def bookmarks(self, channel: str) -> list[Bookmark]:
        with self.lock:
            return list(self._need_channel(channel).bookmarks)

    def members(self, channel: str) -> list[str]:
        with self.lock:
            return list(self._need_channel(channel).members)

    def dm_channel(self, user: str, create: bool = False) -> Channel | None:
        """The bot's DM with `user`."""
        with self.lock:
            for ch in self.channels.values():
                if ch.is_im and ch.user == user:
                    return ch
            if not create:
                return None
            ch = Channel(
                id=self.new_id("D"),
                name=user,
                is_private=True,
                created=int(self.now()),
                creator=self.bot_user_id,
                members=[self.bot_user_id, user],
                is_im=True,
                user=user,
            )
            self.channels[ch.id] = ch
            return ch

    def dms(self, user: str) -> list[Message]:
        """Messages of the bot's DM with `user`, oldest first."""
        with self.lock:
            ch = self.dm_channel(user)
            return list(ch.messages) if ch else []

    def open_views(self, user: str) -> list[View]:
        """The modal stack `user` has open, bottom first."""
        with self.lock:
            return [self.views[v] for v in self.view_stacks.get(user, [])]

    def view(self, view_id: str) -> View | None:
        return self.views.get(view_id)

    def file(self, file_id: str) -> File | None:
        return self.files.get(file_id)

    def calls_of(self, method: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method]

    def channels_of(self, user: str) -> list[Channel]:
        with self.lock:
            return [c for c in self.channels.values() if user in c.members]

    # ----------------------------------------------------------------- minting

    def mint_trigger(self, user: str) -> str:
        with self.lock:
            trigger_id = f"{int(self.now())}.{next(self._counter)}.{secrets.token_hex(16)}"
            self.triggers[trigger_id] = Trigger(trigger_id, user, self.now())
            return trigger_id

    def mint_response_url(
        self,
        base_url: str,
        *,
        channel: str,
        user: str,
        kind: str,
        message_ts: str | None = None,
        message_ephemeral: bool = False,
    ) -> str:
        with self.lock:
            rid = secrets.token_urlsafe(18)
            self.response_urls[rid] = ResponseUrl(
                rid, channel, user, self.now(), kind, message_ts, message_ephemeral
            )
            return f"{base_url}_sandbox/response/{rid}"

    # ----------------------------------------------------------------- mutation helpers

    def add_message(self, message: Message) -> Message:
        """Append a message to its channel (or the user's ephemeral list)."""
        with self.lock:
            ch = self._need_channel(message.channel)
            if message.is_ephemeral:
                ch.ephemeral.append(message)
                return message
            ch.messages.append(message)
            if message.thread_ts and message.thread_ts != message.ts:
                parent = ch.find(message.thread_ts)
                if parent is not None:
                    parent.replies.append(message.ts)
            return message

    def bot_message(self, channel: str, **fields: Any) -> Message:
        """A new message from the bot (not yet stored)."""
        return Message(
            channel=channel,
            ts=self.next_ts(),
            user=self.bot_user_id,
            bot_id=self.bot_id,
            app_id=self.app_id,
            team=self.team_id,
            **fields,
        )

    def close_view(self, user: str, view_id: str | None = None, clear: bool = False) -> None:
        """Close the top modal of `user` (or all of them)."""
        with self.lock:
            stack = self.view_stacks.get(user, [])
            if not stack:
                return
            if clear:
                closing = list(stack)
                stack.clear()
            else:
                idx = stack.index(view_id) if view_id in stack else len(stack) - 1
                closing = stack[idx:]
                del stack[idx:]
            for vid in closing:
                self.views[vid].closed = True

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {
                "team_id": self.team_id,
                "channels": len(self.channels),
                "messages": sum(len(c.messages) for c in self.channels.values()),
                "calls": len(self.calls),
            }


DEMO_USERS = [
    ("U0LEAD001", "ana", "Ana Lead", "America/New_York"),
    ("U0DEPU001", "ben", "Ben Deputy", "Europe/London"),
    ("U0SPEC001", "chloe", "Chloe Specialist", "America/Los_Angeles"),
    ("U0SPEC002", "dev", "Dev Specialist", "Asia/Kolkata"),
    ("U0LEGAL01", "lena", "Lena Legal", "America/New_York"),
    ("U0GC00001", "gabe", "Gabe Counsel", "America/New_York"),
    ("U0EUCOUN1", "eva", "Eva EU Counsel", "Europe/Berlin"),
    ("U0LERESP1", "leo", "Leo LE Response", "America/Chicago"),
    ("U0POLICY1", "pia", "Pia Policy", "Europe/Dublin"),
    ("U0COMMS01", "cole", "Cole Comms", "America/Los_Angeles"),
    ("U0OUTSID1", "oscar", "Oscar Outsider", "UTC"),
]


def demo_workspace(clock: Any = None) -> Workspace:
    """The seeded workspace `safeguard demo` and the tests use."""
    ws = Workspace(clock=clock)
    for uid, name, real_name, tz in DEMO_USERS:
        ws.add_user(User(uid, name, real_name, tz=tz, is_admin=uid == "U0LEAD001"))
    ws.add_usergroup("S0LEGAL", "legal", ["U0LEGAL01", "U0GC00001"], "Legal")
    ws.add_usergroup("S0CHILDSF", "child-safety", ["U0SPEC001", "U0SPEC002"], "Child Safety")
    ws.add_usergroup("S0LEADS", "incident-leads", ["U0LEAD001", "U0DEPU001"], "Incident Leads")
    humans = [u[0] for u in DEMO_USERS]
    ops = ws.add_channel(
        "t-and-s-ops",
        channel_id="C0OPS0001",
        members=[u for u in humans if u != "U0OUTSID1"] + [ws.bot_user_id],
        creator="U0LEAD001",
    )
    ops.topic = {"value": "Trust & Safety operations", "creator": "U0LEAD001", "last_set": ops.created}
    ws.add_channel(
        "general",
        channel_id="C0GENERAL",
        members=humans + [ws.bot_user_id],
        creator="U0LEAD001",
        is_general=True,
    )
    return ws

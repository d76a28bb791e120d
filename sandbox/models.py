"""The records the sandbox workspace keeps, and their Slack API shapes."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

# Slack shows long zone names; zoneinfo only knows abbreviations.
TZ_LABELS = {
    "EST": "Eastern Standard Time",
    "EDT": "Eastern Daylight Time",
    "CST": "Central Standard Time",
    "CDT": "Central Daylight Time",
    "MST": "Mountain Standard Time",
    "MDT": "Mountain Daylight Time",
    "PST": "Pacific Standard Time",
    "PDT": "Pacific Daylight Time",
    "GMT": "Greenwich Mean Time",
    "BST": "British Summer Time",
    "IST": "India Standard Time",
    "CET": "Central European Time",
    "CEST": "Central European Summer Time",
    "UTC": "Coordinated Universal Time",
}
DUBLIN_SUMMER = "Irish Standard Time"  # Europe/Dublin's summer "IST" is not India's


def tz_info(tz: str, at: float) -> tuple[str, int]:
    """(tz_label, tz_offset in seconds) of zone `tz` at epoch `at`."""
    moment = datetime.fromtimestamp(at, ZoneInfo(tz))
    offset = int(moment.utcoffset().total_seconds()) if moment.utcoffset() else 0
    abbrev = moment.tzname() or tz
    if tz == "Europe/Dublin" and abbrev == "IST":
        return DUBLIN_SUMMER, offset
    return TZ_LABELS.get(abbrev, abbrev), offset


@dataclass
class User:
    id: str
    name: str
    real_name: str
    tz: str = "UTC"
    email: str | None = None
    display_name: str = ""
    is_bot: bool = False
    bot_id: str | None = None
    is_admin: bool = False
    deleted: bool = False

    def to_api(self, team_id: str, now: float) -> dict[str, Any]:
        label, offset = tz_info(self.tz, now)
        profile: dict[str, Any] = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.display_name,
            "display_name_normalized": self.display_name,
            "first_name": self.real_name.split(" ")[0],
            "last_name": " ".join(self.real_name.split(" ")[1:]),
            "title": "",
            "phone": "",
            "status_text": "",
            "status_emoji": "",
            "image_24": "",
            "image_48": "",
            "team": team_id,
        }
        if self.email and not self.is_bot:
            profile["email"] = self.email
        if self.is_bot:
            profile["bot_id"] = self.bot_id
            profile["always_active"] = True
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": self.deleted,
            "color": "9f69e7",
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": label,
            "tz_offset": offset,
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1700000000,
        }


@dataclass
class Usergroup:
    id: str
    handle: str
    name: str
    users: list[str] = field(default_factory=list)

    def to_api(self, team_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "team_id": team_id,
            "is_usergroup": True,
            "name": self.name,
            "handle": self.handle,
            "description": "",
            "user_count": len(self.users),
            "users": list(self.users),
        }


@dataclass
class Message:
    channel: str
    ts: str
    user: str | None
    text: str = ""
    blocks: list[dict] | None = None
    attachments: list[dict] | None = None
    thread_ts: str | None = None
    metadata: dict | None = None
    files: list[dict] | None = None
    bot_id: str | None = None
    app_id: str | None = None
    team: str | None = None
    subtype: str | None = None
    unfurl_links: bool | None = None
    unfurl_media: bool | None = None
    args: dict[str, Any] = field(default_factory=dict)  # every argument of the call that made it
    ephemeral_to: str | None = None  # the only user who sees it
    edited: dict | None = None
    reactions: list[dict] = field(default_factory=list)
    source: str = "api"  # api | command_response | response_url | human | system
    replies: list[str] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)  # arguments of each chat.update

    @property
    def is_ephemeral(self) -> bool:
        return self.ephemeral_to is not None

    def to_api(self, include_metadata: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text}
        if self.user:
            out["user"] = self.user
        if self.bot_id:
            out["bot_id"] = self.bot_id
        if self.app_id:
            out["app_id"] = self.app_id
        if self.team:
            out["team"] = self.team
        if self.subtype:
            out["subtype"] = self.subtype
        if self.blocks is not None:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments is not None:
            out["attachments"] = copy.deepcopy(self.attachments)
        if self.files:
            out["files"] = copy.deepcopy(self.files)
            out["upload"] = True
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.replies:
            out["reply_count"] = len(self.replies)
            out["latest_reply"] = self.replies[-1]
        if self.edited:
            out["edited"] = dict(self.edited)
        if self.reactions:
            out["reactions"] = copy.deepcopy(self.reactions)
        if include_metadata and self.metadata:
            out["metadata"] = copy.deepcopy(self.metadata)
        return out


@dataclass
class Bookmark:
    id: str
    channel_id: str
    title: str
    link: str
    type: str
    emoji: str | None
    created: int
    user: str
    app_id: str

    def to_api(self, team_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel_id": self.channel_id,
            "title": self.title,
            "link": self.link,
            "emoji": self.emoji,
            "icon_url": None,
            "type": self.type,
            "entity_id": None,
            "date_created": self.created,
            "date_updated": 0,
            "rank": "U",
            "last_updated_by_user_id": self.user,
            "last_updated_by_team_id": team_id,
            "shortcut_id": None,
            "app_id": self.app_id,
        }


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool
    created: int
    creator: str
    members: list[str] = field(default_factory=list)
    is_im: bool = False
    is_mpim: bool = False
    is_general: bool = False
    is_archived: bool = False
    user: str | None = None  # the other party of a DM
    topic: dict = field(default_factory=lambda: {"value": "", "creator": "", "last_set": 0})
    purpose: dict = field(default_factory=lambda: {"value": "", "creator": "", "last_set": 0})
    previous_names: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    ephemeral: list[Message] = field(default_factory=list)
    pins: list[str] = field(default_factory=list)
    bookmarks: list[Bookmark] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """The `channel_type` of events: channel, group, im, mpim."""
        if self.is_im:
            return "im"
        if self.is_mpim:
            return "mpim"
        return "group" if self.is_private else "channel"

    def to_api(self, viewer: str, num_members: bool = False) -> dict[str, Any]:
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_archived": False,
                "is_im": True,
                "is_org_shared": False,
                "context_team_id": None,
                "updated": self.created * 1000,
                "user": self.user,
                "is_user_deleted": False,
                "priority": 0,
                "is_open": True,
            }
        out = {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_mpim,
            "is_group": False,
            "is_im": False,
            "is_mpim": self.is_mpim,
            "is_private": self.is_private,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_general": self.is_general,
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": None,
            "updated": self.created * 1000,
            "parent_conversation": None,
            "creator": self.creator,
            "is_ext_shared": False,
            "shared_team_ids": [],
            "pending_connected_team_ids": [],
            "is_member": viewer in self.members,
            "last_read": "0000000000.000000",
            "topic": dict(self.topic),
            "purpose": dict(self.purpose),
            "previous_names": list(self.previous_names),
            "priority": 0,
        }
        if num_members:
            out["num_members"] = len(self.members)
        return out

    def find(self, ts: str) -> Message | None:
        for message in self.messages:
            if message.ts == ts:
                return message
        return None

    def find_ephemeral(self, ts: str, user: str | None = None) -> Message | None:
        for message in self.ephemeral:
            if message.ts == ts and (user is None or message.ephemeral_to == user):
                return message
        return None


@dataclass
class View:
    id: str
    user: str
    team_id: str
    app_id: str
    bot_id: str
    type: str
    blocks: list[dict]
    title: dict | None = None
    submit: dict | None = None
    close: dict | None = None
    callback_id: str = ""
    private_metadata: str = ""
    external_id: str = ""
    hash: str = ""
    state: dict = field(default_factory=lambda: {"values": {}})
    previous_view_id: str | None = None
    root_view_id: str | None = None
    notify_on_close: bool = False
    clear_on_close: bool = False
    closed: bool = False

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "team_id": self.team_id,
            "type": self.type,
            "blocks": copy.deepcopy(self.blocks),
            "private_metadata": self.private_metadata,
            "callback_id": self.callback_id,
            "state": copy.deepcopy(self.state),
            "hash": self.hash,
            "title": copy.deepcopy(self.title),
            "clear_on_close": self.clear_on_close,
            "notify_on_close": self.notify_on_close,
            "close": copy.deepcopy(self.close),
            "submit": copy.deepcopy(self.submit),
            "previous_view_id": self.previous_view_id,
            "root_view_id": self.root_view_id,
            "app_id": self.app_id,
            "external_id": self.external_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }


@dataclass
class File:
    id: str
    name: str
    length: int
    user: str
    created: int
    title: str = ""
    alt_txt: str | None = None
    snippet_type: str | None = None
    mimetype: str = "application/octet-stream"
    data: bytes | None = None  # None until the bytes were uploaded
    channels: list[str] = field(default_factory=list)
    completed: bool = False

    @property
    def filetype(self) -> str:
        return self.name.rsplit(".", 1)[-1].lower() if "." in self.name else "binary"

    def to_api(self, base_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.name,
            "title": self.title or self.name,
            "mimetype": self.mimetype,
            "filetype": self.filetype,
            "pretty_type": self.filetype.upper(),
            "user": self.user,
            "mode": "hosted",
            "editable": False,
            "is_external": False,
            "is_public": False,
            "size": len(self.data) if self.data is not None else self.length,
            "url_private": f"{base_url}_sandbox/files/{self.id}",
            "url_private_download": f"{base_url}_sandbox/files/{self.id}?download=1",
            "permalink": f"{base_url}_sandbox/files/{self.id}",
            "channels": [c for c in self.channels if c.startswith("C")],
            "groups": [],
            "ims": [c for c in self.channels if c.startswith("D")],
            "alt_txt": self.alt_txt,
        }


@dataclass
class Trigger:
    id: str
    user: str
    created: float
    used: bool = False


@dataclass
class ResponseUrl:
    id: str
    channel: str
    user: str
    created: float
    kind: str  # command | block_actions | message_action | view_submission
    message_ts: str | None = None  # the message an action came from
    message_ephemeral: bool = False
    uses: int = 0


@dataclass
class Call:
    """One Web API call the sandbox answered."""

    method: str
    args: dict[str, Any]
    ok: bool
    error: str | None
    http_status: int
    at: float
    response: dict[str, Any] | None = None


@dataclass
class Delivery:
    """One request the sandbox sent to the bot on its own (events)."""

    kind: str
    body: dict[str, Any]
    attempts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return any(200 <= (a.get("status") or 0) < 300 for a in self.attempts)

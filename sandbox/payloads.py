"""The payloads Slack sends to an app, built from the sandbox's state (shapes per SLACK.md)."""

from __future__ import annotations

import copy
from typing import Any

from .blockkit import find_option, iter_elements, plain
from .models import Channel, Message, View
from .workspace import Workspace

VERIFICATION_TOKEN = "sandbox-verification-token"

SELECT_ONE = {"static_select", "external_select", "overflow", "radio_buttons"}
SELECT_MANY = {"multi_static_select", "multi_external_select", "checkboxes"}
TEXT_INPUTS = {
    "plain_text_input", "number_input", "email_text_input", "url_text_input",
}


def user_ref(ws: Workspace, user_id: str) -> dict[str, Any]:
    user = ws.users.get(user_id)
    name = user.name if user else user_id
    return {"id": user_id, "username": name, "name": name, "team_id": ws.team_id}


def team_ref(ws: Workspace) -> dict[str, Any]:
    return {"id": ws.team_id, "domain": ws.team_domain}


def channel_name(ch: Channel) -> str:
    if ch.is_im:
        return "directmessage"
    if ch.is_mpim:
        return "mpdm"
    return ch.name


def command_form(
    ws: Workspace,
    *,
    user: str,
    channel: Channel,
    command: str,
    text: str,
    response_url: str,
    trigger_id: str,
) -> dict[str, str]:
    """The form fields of a slash command request (non-Enterprise workspace: no enterprise_*)."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": ws.team_id,
        "team_domain": ws.team_domain,
        "channel_id": channel.id,
        "channel_name": channel_name(channel),
        "user_id": user,
        "user_name": ws.user_name(user),
        "command": command,
        "text": text,
        "api_app_id": ws.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def _option_out(option: dict | None) -> dict | None:
    if option is None:
        return None
    out = {"text": copy.deepcopy(option.get("text")), "value": option.get("value")}
    if isinstance(out["text"], dict) and out["text"].get("type") == "plain_text":
        out["text"].setdefault("emoji", True)
    return out


def element_state(element: dict, raw: Any = None, *, use_initial: bool = True) -> dict[str, Any] | None:
    """The `state.values[block][action]` entry of an element: `raw` chosen, or its initial value."""
    kind = element.get("type", "")
    state: dict[str, Any] = {"type": kind}
    if kind in TEXT_INPUTS or kind == "rich_text_input":
        value = raw if raw is not None else (element.get("initial_value") if use_initial else None)
        state["value"] = None if value is None else str(value)
    elif kind in SELECT_ONE:
        if raw is not None:
            option = find_option(element, str(raw))
            if option is None:
                raise ValueError(f"{raw!r} is not an option of {element.get('action_id')}")
            state["selected_option"] = _option_out(option)
        else:
            state["selected_option"] = _option_out(element.get("initial_option")) if use_initial else None
    elif kind in SELECT_MANY:
        if raw is not None:
            options = []
            for value in raw if isinstance(raw, list | tuple) else [raw]:
                option = find_option(element, str(value))
                if option is None:
                    raise ValueError(f"{value!r} is not an option of {element.get('action_id')}")
                options.append(_option_out(option))
            state["selected_options"] = options
        else:
            initial = element.get("initial_options") if use_initial else None
            state["selected_options"] = [_option_out(o) for o in initial or []]
    elif kind == "users_select":
        state["selected_user"] = raw if raw is not None else (element.get("initial_user") if use_initial else None)
    elif kind == "multi_users_select":
        chosen = raw if raw is not None else (element.get("initial_users") if use_initial else None)
        state["selected_users"] = list(chosen or []) if not isinstance(chosen, str) else [chosen]
    elif kind in ("conversations_select", "channels_select"):
        key = "selected_conversation" if kind == "conversations_select" else "selected_channel"
        initial = element.get("initial_conversation") or element.get("initial_channel")
        state[key] = raw if raw is not None else (initial if use_initial else None)
    elif kind in ("multi_conversations_select", "multi_channels_select"):
        key = "selected_conversations" if kind.startswith("multi_conv") else "selected_channels"
        state[key] = list(raw) if raw is not None else []
    elif kind == "datepicker":
        state["selected_date"] = raw if raw is not None else element.get("initial_date")
    elif kind == "timepicker":
        state["selected_time"] = raw if raw is not None else element.get("initial_time")
    elif kind == "datetimepicker":
        state["selected_date_time"] = raw if raw is not None else element.get("initial_date_time")
    else:
        return None  # buttons and other stateless elements
    return state


def state_values(blocks: list[dict] | None, chosen: dict[str, dict[str, Any]] | None = None) -> dict:
    """`state.values` for every stateful element in `blocks`, with `chosen` raw values applied."""
    chosen = chosen or {}
    values: dict[str, dict[str, Any]] = {}
    for block, element in iter_elements(blocks):
        block_id = block.get("block_id", "")
        action_id = element.get("action_id", "")
        raw = chosen.get(block_id, {}).get(action_id)
        state = element_state(element, raw)
        if state is not None:
            values.setdefault(block_id, {})[action_id] = state
    return values


def action_for(block: dict, element: dict, value: Any, action_ts: str) -> dict[str, Any]:
    """`actions[0]` of a block_actions payload for a click on (or choice in) `element`."""
    kind = element.get("type", "")
    action: dict[str, Any] = {
        "action_id": element.get("action_id"),
        "block_id": block.get("block_id"),
        "type": kind,
        "action_ts": action_ts,
    }
    if kind in ("button", "workflow_button"):
        text = copy.deepcopy(element.get("text"))
        if isinstance(text, dict):
            text.setdefault("emoji", True)
        action["text"] = text
        if "value" in element:
            action["value"] = element["value"]
        if "style" in element:
            action["style"] = element["style"]
        return action
    state = element_state(element, value, use_initial=False) or {}
    state.pop("type", None)
    action.update(state)
    if kind in ("static_select", "users_select", "conversations_select", "channels_select"):
        action["placeholder"] = copy.deepcopy(element.get("placeholder"))
    return action


def block_actions_for_message(
    ws: Workspace,
    *,
    user: str,
    channel: Channel,
    message: Message,
    block: dict,
    element: dict,
    value: Any,
    trigger_id: str,
    response_url: str,
) -> dict[str, Any]:
    action_ts = ws.next_ts()
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": user_ref(ws, user),
        "api_app_id": ws.app_id,
        "token": VERIFICATION_TOKEN,
        "container": {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": channel.id,
            "is_ephemeral": message.is_ephemeral,
        },
        "trigger_id": trigger_id,
        "team": team_ref(ws),
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel.id, "name": channel_name(channel)},
        "state": {"values": state_values(message.blocks)},
        "response_url": response_url,
        "actions": [action_for(block, element, value, action_ts)],
    }
    if not message.is_ephemeral:  # Slack leaves `message` out for ephemeral messages
        payload["message"] = message.to_api()
    return payload


def block_actions_for_view(
    ws: Workspace, *, user: str, view: View, block: dict, element: dict, value: Any, trigger_id: str
) -> dict[str, Any]:
    action_ts = ws.next_ts()
    return {
        "type": "block_actions",
        "user": user_ref(ws, user),
        "api_app_id": ws.app_id,
        "token": VERIFICATION_TOKEN,
        "container": {"type": "view", "view_id": view.id},
        "trigger_id": trigger_id,
        "team": team_ref(ws),
        "enterprise": None,
        "is_enterprise_install": False,
        "view": view.to_api(),
        "actions": [action_for(block, element, value, action_ts)],
    }


def view_submission(ws: Workspace, *, user: str, view: View, trigger_id: str) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": team_ref(ws),
        "user": user_ref(ws, user),
        "api_app_id": ws.app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": view.to_api(),
        "response_urls": [],
        "enterprise": None,
        "is_enterprise_install": False,
    }


def view_closed(ws: Workspace, *, user: str, view: View, is_cleared: bool) -> dict[str, Any]:
    return {
        "type": "view_closed",
        "team": team_ref(ws),
        "user": user_ref(ws, user),
        "api_app_id": ws.app_id,
        "token": VERIFICATION_TOKEN,
        "view": view.to_api(),
        "is_cleared": is_cleared,
        "enterprise": None,
        "is_enterprise_install": False,
    }


def message_action(
    ws: Workspace,
    *,
    user: str,
    channel: Channel,
    message: Message,
    callback_id: str,
    trigger_id: str,
    response_url: str,
) -> dict[str, Any]:
    return {
        "type": "message_action",
        "token": VERIFICATION_TOKEN,
        "action_ts": ws.next_ts(),
        "team": team_ref(ws),
        "user": user_ref(ws, user),
        "channel": {"id": channel.id, "name": channel_name(channel)},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id,
        "response_url": response_url,
        "message_ts": message.ts,
        "message": message.to_api(),
    }


def event_callback(ws: Workspace, event: dict[str, Any], *, event_id: str, event_time: int) -> dict[str, Any]:
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": ws.team_id,
        "context_team_id": ws.team_id,
        "context_enterprise_id": None,
        "api_app_id": ws.app_id,
        "event": copy.deepcopy(event),
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ws.team_id,
                "user_id": ws.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-sandbox-{event_id}",
    }


def url_verification(challenge: str) -> dict[str, Any]:
    return {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}


def describe_element(element: dict) -> str:
    return f"{element.get('type')}:{element.get('action_id')}({plain(element.get('text'))})"

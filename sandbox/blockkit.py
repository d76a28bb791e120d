"""Block Kit checks (the limits Slack enforces) and element lookup."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

BLOCK_TYPES = {
    "actions", "context", "divider", "file", "header", "image", "input", "rich_text",
    "section", "video", "markdown", "call",
}
INTERACTIVE_TYPES = {
    "button", "checkboxes", "datepicker", "datetimepicker", "timepicker", "overflow",
    "radio_buttons", "static_select", "external_select", "users_select",
    "conversations_select", "channels_select", "multi_static_select",
    "multi_external_select", "multi_users_select", "multi_conversations_select",
    "multi_channels_select", "plain_text_input", "number_input", "email_text_input",
    "url_text_input", "rich_text_input", "workflow_button",
}
# Figures from Slack's reference (chat.postMessage, Block Kit blocks/elements, views.*).
MAX_TEXT = 40_000  # chat.postMessage `text`: longer is msg_too_long
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100  # modals and Home tabs
# msg_blocks_too_long has no documented figure (bolt-js#2509 saw it near 13,000 characters of
# markdown text); this stand-in only catches the grossly oversized.
MAX_MESSAGE_BLOCKS_JSON = 100_000
MAX_VIEW_JSON = 250_000  # views.*: view_too_large, "greater than 250kb"


class BlockError(Exception):
    """A Block Kit problem: `code` is the Slack error, `messages` its response_metadata."""

    def __init__(self, code: str, messages: list[str]) -> None:
        super().__init__(f"{code}: {'; '.join(messages)}")
        self.code = code
        self.messages = messages


def _text_len(obj: Any) -> int:
    if isinstance(obj, dict):
        return len(str(obj.get("text", "")))
    return 0


def _check_text(obj: Any, path: str, limit: int, errors: list[str], plain_only: bool = False) -> None:
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        errors.append(f"[ERROR] must be a text object [json-pointer:{path}]")
        return
    if plain_only and obj.get("type") != "plain_text":
        errors.append(f"[ERROR] must be plain_text [json-pointer:{path}/type]")
    if not isinstance(obj.get("text"), str):
        errors.append(f"[ERROR] missing required field: text [json-pointer:{path}]")
        return
    if _text_len(obj) > limit:
        errors.append(f"[ERROR] must be less than {limit + 1} characters [json-pointer:{path}/text]")


def _check_element(element: Any, path: str, errors: list[str]) -> None:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        errors.append(f"[ERROR] must be an element object [json-pointer:{path}]")
        return
    kind = element["type"]
    if len(str(element.get("action_id", ""))) > 255:
        errors.append(f"[ERROR] must be less than 256 characters [json-pointer:{path}/action_id]")
    if kind == "button":
        _check_text(element.get("text"), f"{path}/text", 75, errors, plain_only=True)
        if len(str(element.get("value", ""))) > 2000:
            errors.append(f"[ERROR] must be less than 2001 characters [json-pointer:{path}/value]")
        if element.get("style") not in (None, "primary", "danger"):
            errors.append(f"[ERROR] must be one of primary, danger [json-pointer:{path}/style]")
    elif kind in ("static_select", "multi_static_select", "overflow", "radio_buttons", "checkboxes"):
        options = element.get("options")
        groups = element.get("option_groups")
        if not options and not groups:
            errors.append(f"[ERROR] must provide options or option_groups [json-pointer:{path}]")
        limit = 5 if kind == "overflow" else 10 if kind in ("radio_buttons", "checkboxes") else 100
        if options and len(options) > limit:
            errors.append(f"[ERROR] must be at most {limit} items [json-pointer:{path}/options]")
        for i, option in enumerate(options or []):
            opath = f"{path}/options/{i}"
            if not isinstance(option, dict) or "value" not in option:
                errors.append(f"[ERROR] must be an option object [json-pointer:{opath}]")
                continue
            if len(str(option["value"])) > 150:
                errors.append(f"[ERROR] must be less than 151 characters [json-pointer:{opath}/value]")
            _check_text(option.get("text"), f"{opath}/text", 75, errors)  # option text ≤ 75
            if option.get("description") is not None:
                _check_text(option["description"], f"{opath}/description", 75, errors)
    elif kind not in INTERACTIVE_TYPES and kind not in ("image", "mrkdwn", "plain_text"):
        errors.append(f"[ERROR] unsupported type: {kind} [json-pointer:{path}/type]")


def check_blocks(blocks: Any, path: str, limit: int) -> list[str]:
    """Problems with a list of blocks, as Slack words them (empty when valid)."""
    errors: list[str] = []
    if not isinstance(blocks, list):
        return [f"[ERROR] must be an array [json-pointer:{path}]"]
    if len(blocks) > limit:
        errors.append(f"[ERROR] no more than {limit} items allowed [json-pointer:{path}]")
    seen_ids: set[str] = set()
    for i, block in enumerate(blocks):
        bpath = f"{path}/{i}"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            errors.append(f"[ERROR] unsupported block type [json-pointer:{bpath}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or len(block_id) > 255:
                errors.append(f"[ERROR] must be less than 256 characters [json-pointer:{bpath}/block_id]")
            elif block_id in seen_ids:
                errors.append(f"[ERROR] duplicate block_id {block_id} [json-pointer:{bpath}/block_id]")
            seen_ids.add(str(block_id))
        kind = block["type"]
        if kind == "section":
            if "text" not in block and "fields" not in block:
                errors.append(f"[ERROR] must provide either text or fields [json-pointer:{bpath}]")
            if "text" in block:
                _check_text(block["text"], f"{bpath}/text", 3000, errors)
            for j, item in enumerate(block.get("fields") or []):  # Slack: 2,000 per field
                _check_text(item, f"{bpath}/fields/{j}", 2000, errors)
            if len(block.get("fields") or []) > 10:
                errors.append(f"[ERROR] no more than 10 items allowed [json-pointer:{bpath}/fields]")
            if "accessory" in block:
                _check_element(block["accessory"], f"{bpath}/accessory", errors)
        elif kind == "header":
            _check_text(block.get("text"), f"{bpath}/text", 150, errors, plain_only=True)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements or len(elements) > 10:
                errors.append(f"[ERROR] must have 1 to 10 elements [json-pointer:{bpath}/elements]")
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements or len(elements) > 25:
                errors.append(f"[ERROR] must have 1 to 25 elements [json-pointer:{bpath}/elements]")
            else:
                for j, element in enumerate(elements):
                    _check_element(element, f"{bpath}/elements/{j}", errors)
        elif kind == "input":
            _check_text(block.get("label"), f"{bpath}/label", 2000, errors, plain_only=True)
            _check_element(block.get("element"), f"{bpath}/element", errors)
    return errors


def check_message_blocks(blocks: Any) -> None:
    """Raise BlockError(invalid_blocks | msg_blocks_too_long) like chat.postMessage does."""
    errors = check_blocks(blocks, "/blocks", MAX_MESSAGE_BLOCKS)
    if errors:
        raise BlockError("invalid_blocks", errors)
    if len(json.dumps(blocks)) > MAX_MESSAGE_BLOCKS_JSON:
        raise BlockError("msg_blocks_too_long", ["[ERROR] blocks are too long [json-pointer:/blocks]"])


def check_message(text: Any, blocks: Any, attachments: Any = None, *, required: bool = True) -> None:
    """A message's text and blocks as chat.postMessage / chat.update / chat.postEphemeral and
    response_url check them: invalid_blocks, msg_blocks_too_long, no_text, msg_too_long."""
    if blocks is not None:
        check_message_blocks(blocks)
    if required and not text and not blocks and not attachments:
        raise BlockError("no_text", [])
    if text and len(str(text)) > MAX_TEXT:
        raise BlockError("msg_too_long", [])


def check_view(view: Any, types: tuple[str, ...] = ("modal", "home")) -> None:
    """Raise BlockError(invalid_arguments | view_too_large) like views.open does.

    `types`: the view types the method takes (views.open and views.push only modals,
    views.publish only home).
    """
    if not isinstance(view, dict):
        raise BlockError("invalid_arguments", ["[ERROR] missing required field: view"])
    errors: list[str] = []
    if view.get("type") not in types:
        errors.append(f"[ERROR] must be one of {', '.join(types)} [json-pointer:/view/type]")
    if view.get("type") == "modal":
        _check_text(view.get("title"), "/view/title", 24, errors, plain_only=True)
        for key in ("submit", "close"):
            if view.get(key) is not None:
                _check_text(view[key], f"/view/{key}", 24, errors, plain_only=True)
        blocks = view.get("blocks") or []
        if any(isinstance(b, dict) and b.get("type") == "input" for b in blocks) and not view.get("submit"):
            errors.append("[ERROR] submit is required when an input block is present [json-pointer:/view/submit]")
    errors += check_blocks(view.get("blocks"), "/view/blocks", MAX_VIEW_BLOCKS)
    if len(str(view.get("private_metadata") or "")) > 3000:
        errors.append("[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]")
    if len(str(view.get("callback_id") or "")) > 255:
        errors.append("[ERROR] must be less than 256 characters [json-pointer:/view/callback_id]")
    if errors:
        raise BlockError("invalid_arguments", errors)
    if len(json.dumps(view)) > MAX_VIEW_JSON:
        raise BlockError("view_too_large", ["[ERROR] view is too large"])


def iter_elements(blocks: list[dict] | None) -> Iterator[tuple[dict, dict]]:
    """Every interactive element in `blocks` as (block, element)."""
    for block in blocks or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "actions":
            for element in block.get("elements") or []:
                yield block, element
        elif block.get("type") == "section" and isinstance(block.get("accessory"), dict):
            yield block, block["accessory"]
        elif block.get("type") == "input" and isinstance(block.get("element"), dict):
            yield block, block["element"]


def all_options(element: dict) -> list[dict]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options += list(group.get("options") or [])
    return options


def find_option(element: dict, value: str) -> dict | None:
    for option in all_options(element):
        if option.get("value") == value:
            return option
    return None


def find_element(
    blocks: list[dict] | None,
    action_id: str,
    value: str | None = None,
    block_id: str | None = None,
) -> tuple[dict, dict] | None:
    """The (block, element) with `action_id` (and button `value` / `block_id` when given)."""
    matches = [
        (b, e)
        for b, e in iter_elements(blocks)
        if e.get("action_id") == action_id and (block_id is None or b.get("block_id") == block_id)
    ]
    if value is not None and len(matches) > 1:
        exact = [(b, e) for b, e in matches if e.get("value") == value]
        matches = exact or matches
    return matches[0] if matches else None


def plain(text: Any) -> str:
    """The text of a text object (or a string)."""
    if isinstance(text, dict):
        return str(text.get("text", ""))
    return "" if text is None else str(text)

"""Slack's size limits, applied to every message before it is sent. Slack refuses a block or a
message over its limit (`invalid_blocks`, `msg_too_long`) and would refuse it again on every
retry, so a long reason or summary must never cost a page or a checklist: it is cut instead.
Figures: Slack's Block Kit and chat.postMessage reference (see SLACK.md)."""

from __future__ import annotations

import copy
from typing import Any

from bot.render import fit

MESSAGE_TEXT = 40_000
BLOCKS = 50
SECTION_TEXT = 3_000
FIELD_TEXT = 2_000
FIELDS = 10
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
BUTTON_TEXT = 75
BUTTON_VALUE = 2_000
ACTION_ELEMENTS = 25


def _fit_text(obj: Any, limit: int) -> None:
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        obj["text"] = fit(obj["text"], limit)


def _fit_element(element: Any) -> None:
    if not isinstance(element, dict):
        return
    if element.get("type") == "button":
        _fit_text(element.get("text"), BUTTON_TEXT)
        if isinstance(element.get("value"), str):
            element["value"] = element["value"][:BUTTON_VALUE]
    elif element.get("type") in ("mrkdwn", "plain_text"):
        _fit_text(element, SECTION_TEXT)


def fit_blocks(blocks: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if blocks is None:
        return None
    blocks = copy.deepcopy(blocks)
    if len(blocks) > BLOCKS:
        hidden = len(blocks) - (BLOCKS - 1)
        blocks = blocks[: BLOCKS - 1] + [{"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"… {hidden} more not shown here: `/incident status` lists everything."}]}]
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "section":
            _fit_text(block.get("text"), SECTION_TEXT)
            if isinstance(block.get("fields"), list):
                block["fields"] = block["fields"][:FIELDS]
                for item in block["fields"]:
                    _fit_text(item, FIELD_TEXT)
            _fit_element(block.get("accessory"))
        elif kind == "header":
            _fit_text(block.get("text"), HEADER_TEXT)
        elif kind == "context" and isinstance(block.get("elements"), list):
            block["elements"] = block["elements"][:CONTEXT_ELEMENTS]
            for element in block["elements"]:
                _fit_element(element)
        elif kind == "actions" and isinstance(block.get("elements"), list):
            block["elements"] = block["elements"][:ACTION_ELEMENTS]
            for element in block["elements"]:
                _fit_element(element)
    return blocks


def fit_message(text: str, blocks: list[dict[str, Any]] | None) -> tuple[str, list[dict[str, Any]] | None]:
    return fit(text or "", MESSAGE_TEXT), fit_blocks(blocks)

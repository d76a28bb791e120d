"""Parsing `/incident …` text and modal state (pure functions)."""

from __future__ import annotations

import pytest

from bot.errors import InvalidInput
from handlers.parsing import head_rest, parse_fields, parse_user, split_command
from handlers.views import values_of


def test_split_command():
    assert split_command("") == ("help", "")
    assert split_command("  DONE confirm  a=1 ") == ("done", "confirm  a=1")


def test_words_split_at_any_whitespace():
    assert split_command("declare\u00a0csam-report Hash 1") == ("declare", "csam-report Hash 1")
    assert head_rest("csam-report\u00a0Hash match\t8812 ") == ("csam-report", "Hash match\t8812")
    assert head_rest("legal") == ("legal", "") and head_rest("   ") == ("", "")
    assert parse_fields("Confirm a=1")[0] == "confirm"


def test_parse_user_accepts_escaped_mentions_and_ids():
    assert parse_user("<@U0LEGAL01|lena>") == "U0LEGAL01"
    assert parse_user("<@U0LEGAL01>") == "U0LEGAL01"
    assert parse_user("U0LEGAL01") == "U0LEGAL01"
    with pytest.raises(InvalidInput, match="not a Slack user"):
        parse_user("@lena")


def test_parse_fields_with_quotes():
    assert parse_fields('hash-share hash_count=4 programmes="NCMEC hash sharing"') == (
        "hash-share", {"hash_count": "4", "programmes": "NCMEC hash sharing"})
    with pytest.raises(InvalidInput, match="not `field=value`"):
        parse_fields("confirm category")
    with pytest.raises(InvalidInput, match="Quote values"):
        parse_fields('confirm note="unterminated')
    with pytest.raises(InvalidInput, match="Name the step"):
        parse_fields("")


def test_values_of_reads_each_element_type():
    view = {"state": {"values": {
        "a": {"value": {"type": "plain_text_input", "value": "x"}},
        "b": {"value": {"type": "static_select", "selected_option": {"value": "A1"}}},
        "c": {"value": {"type": "users_select", "selected_user": "U0LEAD001"}},
        "d": {"value": {"type": "plain_text_input", "value": None}},
    }}}
    assert values_of(view) == {"a": "x", "b": "A1", "c": "U0LEAD001"}

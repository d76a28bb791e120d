"""Page texts: the shipped templates, overrides, and the content rule."""

from __future__ import annotations

import jinja2
import pytest

from bot.paging.base import PagerConfigError, page_dedup_key
from bot.paging.render import PAGES_DIR, PageRenderer, make_environment, page_context
from tests.paging_support import SECRET_TITLE, notice


def test_dedup_key_defaults_from_page_id():
    assert notice().dedup_key == "safeguard-page-7" == page_dedup_key(7)
    assert notice(dedup_key="custom").dedup_key == "custom"


def test_shipped_templates_exist():
    for name in ("email_subject.txt", "email_body.txt", "pagerduty_summary.txt", "webhook.json"):
        assert (PAGES_DIR / name).is_file()


def test_context_has_no_title_or_recipients():
    ctx = page_context(notice())
    assert SECRET_TITLE not in repr(ctx)
    assert not {"incident_title", "users", "emails"} & set(ctx)


def test_all_texts_name_the_incident_and_not_the_title():
    r = PageRenderer()
    n = notice()
    texts = [r.email_subject(n), r.email_body(n), r.pagerduty_summary(n), repr(r.webhook_body(n))]
    for text in texts:
        assert "INC-7" in text
        assert SECRET_TITLE not in text and "U0LEGAL01" not in text
    assert "\n" not in r.email_subject(n)
    assert "\n" not in r.pagerduty_summary(n)


def test_body_without_link():
    body = PageRenderer().email_body(notice(channel_id=None, channel_link=None))
    assert "https://" not in body and "INC-7" in body


def test_override_folder_wins_and_falls_back(tmp_path):
    (tmp_path / "email_subject.txt").write_text("PAGE {{ incident_ref }} for {{ role }}")
    r = PageRenderer(tmp_path)
    assert r.email_subject(notice()) == "PAGE INC-7 for legal"
    assert "Legal on-call" in r.pagerduty_summary(notice())  # shipped template


def test_templates_cannot_reach_the_title(tmp_path):
    (tmp_path / "email_subject.txt").write_text("{{ incident_title }}")
    with pytest.raises(PagerConfigError) as err:
        PageRenderer(tmp_path).email_subject(notice())
    assert isinstance(err.value.__cause__, jinja2.UndefinedError)
    assert err.value.transient is False


def test_webhook_template_must_render_json(tmp_path):
    (tmp_path / "webhook.json").write_text("not json")
    with pytest.raises(ValueError):
        PageRenderer(tmp_path).webhook_body(notice())


def test_autoescape_only_for_html(tmp_path):
    (tmp_path / "x.html").write_text("{{ reason }}")
    (tmp_path / "x.txt").write_text("{{ reason }}")
    env = make_environment(tmp_path)
    assert env.get_template("x.html").render(reason="<b>") == "&lt;b&gt;"
    assert env.get_template("x.txt").render(reason="<b>") == "<b>"


def test_unknown_event_refused():
    with pytest.raises(ValueError):
        page_context(notice(), event="explode")


def test_header_injection_is_refused_not_crashed():
    from bot.paging.base import DeliveryError
    from bot.paging.email import EmailBackend

    backend = EmailBackend("smtp://127.0.0.1:9", "s@example.org")
    with pytest.raises(DeliveryError) as err:
        backend.build_message(notice(incident_ref="INC-7\r\nBcc: x@evil.example"))
    assert err.value.transient is False

"""Email backend against a real in-process SMTP server (aiosmtpd) on a free port."""

from __future__ import annotations

import email
import email.policy
import socket
import threading

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from bot.paging.base import Backend, DeliveryError, PageNotice
from bot.paging.email import EmailBackend, parse_smtp_url
from tests.paging_support import SECRET_TITLE
from tests.paging_support import notice as make_notice


def notice(**overrides) -> PageNotice:
    overrides.setdefault("emails", ["legal@example.org", "General Counsel <gc@example.org>"])
    return make_notice(**overrides)


class FreePortController(Controller):
    """aiosmtpd's Controller bound to port 0: learn the real port before its self-test."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class Handler:
    def __init__(self):
        self.envelopes = []
        self.rcpt_reply: dict[str, str] = {}
        self.data_reply: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_reply.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply:
            return self.data_reply
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp():
    handler = Handler()
    controller = FreePortController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    handler.url = f"smtp://127.0.0.1:{controller.port}"
    try:
        yield handler
    finally:
        controller.stop()


def message_of(envelope):
    return email.message_from_bytes(envelope.original_content, policy=email.policy.default)


def test_message_arrives_naming_incident_and_role(smtp):
    backend = EmailBackend(smtp.url, "Safeguard <safeguard@example.org>", timeout=5)
    assert isinstance(backend, Backend) and backend.name == "email"
    backend.send(notice())
    [env] = smtp.envelopes
    assert env.mail_from == "safeguard@example.org"
    assert env.rcpt_tos == ["legal@example.org", "gc@example.org"]
    msg = message_of(env)
    subject = msg["Subject"]
    assert "INC-7" in subject and "Legal on-call" in subject and "SEV1" in subject
    assert msg["X-Safeguard-Page"] == "safeguard-page-7"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "text/plain"
    body = msg.get_content()
    for part in (
        "INC-7",
        "Legal on-call",
        "Confirmed CSAM report",
        "level 2",
        "NCMEC report not filed 24h after confirmation",
        "https://example.slack.com/archives/C0INC7",
        "/incident ack",
    ):
        assert part in body, part


def test_message_carries_no_content_or_identifiers(smtp):
    EmailBackend(smtp.url, "safeguard@example.org").send(notice())
    raw = smtp.envelopes[0].original_content.decode()
    decoded = message_of(smtp.envelopes[0]).get_content()
    for text in (raw, decoded):
        assert SECRET_TITLE not in text
        assert "kid_1234" not in text
        assert "U0LEGAL01" not in text


def test_multiline_reason_stays_on_its_line(smtp):
    EmailBackend(smtp.url, "safeguard@example.org").send(notice(reason="late\n\nvery late"))
    msg = message_of(smtp.envelopes[0])
    assert "Reason:     late very late" in msg.get_content()
    assert "\n" not in msg["Subject"]


def test_resolve_is_a_no_op(smtp):
    EmailBackend(smtp.url, "safeguard@example.org").resolve(notice())
    assert smtp.envelopes == []


def test_no_addresses_is_permanent(smtp):
    backend = EmailBackend(smtp.url, "safeguard@example.org")
    for emails in ([], ["", "  "]):
        with pytest.raises(DeliveryError) as err:
            backend.send(notice(emails=emails))
        assert err.value.transient is False
    with pytest.raises(DeliveryError) as err:
        backend.send(notice(emails=["not an address"]))
    assert err.value.transient is False
    assert smtp.envelopes == []


@pytest.mark.parametrize(
    ("reply", "transient"),
    [("451 4.3.0 Try again later", True), ("550 5.7.1 Message rejected", False)],
)
def test_data_reply_decides_transience(smtp, reply, transient):
    smtp.data_reply = reply
    with pytest.raises(DeliveryError) as err:
        EmailBackend(smtp.url, "safeguard@example.org").send(notice())
    assert err.value.transient is transient
    assert err.value.status == int(reply[:3])


@pytest.mark.parametrize(
    ("reply", "transient"),
    [("451 4.2.1 Mailbox busy", True), ("550 5.1.1 No such user", False)],
)
def test_all_recipients_refused(smtp, reply, transient):
    smtp.rcpt_reply = {"legal@example.org": reply, "gc@example.org": reply}
    with pytest.raises(DeliveryError) as err:
        EmailBackend(smtp.url, "safeguard@example.org").send(notice())
    assert err.value.transient is transient


def test_one_temporary_refusal_among_permanent_ones_is_transient(smtp):
    smtp.rcpt_reply = {"legal@example.org": "550 5.1.1 No", "gc@example.org": "450 4.2.1 Busy"}
    with pytest.raises(DeliveryError) as err:
        EmailBackend(smtp.url, "safeguard@example.org").send(notice())
    assert err.value.transient is True


def test_partial_refusal_is_delivered(smtp, caplog):
    smtp.rcpt_reply = {"gc@example.org": "550 5.1.1 No such user"}
    EmailBackend(smtp.url, "safeguard@example.org").send(notice())
    assert smtp.envelopes[0].rcpt_tos == ["legal@example.org"]
    assert "refused" in caplog.text


def test_login_with_percent_encoded_credentials():
    seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        seen.append((auth_data.login, auth_data.password))
        ok = auth_data.login == b"pager" and auth_data.password == b"p@ss:w/rd"
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535

    handler = Handler()
    controller = FreePortController(
        handler,
        hostname="127.0.0.1",
        port=0,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        url = f"smtp://pager:p%40ss%3Aw%2Frd@127.0.0.1:{controller.port}"
        EmailBackend(url, "safeguard@example.org").send(notice())
        assert len(handler.envelopes) == 1
        bad = f"smtp://pager:wrong@127.0.0.1:{controller.port}"
        with pytest.raises(DeliveryError) as err:
            EmailBackend(bad, "safeguard@example.org", timeout=2).send(notice())
        assert err.value.transient is False  # 535
        assert "wrong" not in str(err.value)
    finally:
        controller.stop()
    assert seen[0] == (b"pager", b"p@ss:w/rd")


def test_connection_refused_is_transient():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DeliveryError) as err:
        EmailBackend(f"smtp://127.0.0.1:{port}", "safeguard@example.org", timeout=1).send(notice())
    assert err.value.transient is True


def test_silent_server_times_out_transient():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    accepted = []
    t = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    t.start()
    try:
        with pytest.raises(DeliveryError) as err:
            EmailBackend(f"smtp://127.0.0.1:{port}", "s@example.org", timeout=0.2).send(notice())
        assert err.value.transient is True
    finally:
        t.join(1)
        for conn, _ in accepted:
            conn.close()
        listener.close()


def test_starttls_not_offered_is_permanent(smtp):
    with pytest.raises(DeliveryError) as err:
        EmailBackend(smtp.url + "?starttls=1", "safeguard@example.org", timeout=5).send(notice())
    assert err.value.transient is False


def test_parse_smtp_url():
    t = parse_smtp_url("smtp://mail.example.org")
    assert (t.scheme, t.host, t.port, t.username, t.password, t.starttls) == (
        "smtp",
        "mail.example.org",
        25,
        None,
        None,
        False,
    )
    t = parse_smtp_url("smtp://u%40x:p%2F1@mail.example.org:587?starttls=1")
    assert (t.port, t.username, t.password, t.starttls) == (587, "u@x", "p/1", True)
    t = parse_smtp_url("smtps://mail.example.org")
    assert (t.scheme, t.port) == ("smtps", 465)
    assert "p/1" not in repr(EmailBackend("smtp://u:p%2F1@h", "a@b.org"))


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.org",
        "smtp://",
        "smtp://h:notaport",
        "smtp://h?starttls=maybe",
        "smtp://h?tls=1",
        "smtps://h?starttls=1",
        "",
    ],
)
def test_bad_smtp_url_is_permanent_config_error(url):
    with pytest.raises(DeliveryError) as err:
        EmailBackend(url, "safeguard@example.org")
    assert err.value.transient is False
    assert isinstance(err.value, ValueError)


def test_bad_from_address():
    with pytest.raises(ValueError):
        EmailBackend("smtp://h", "safeguard")


# -- TLS: implicit (smtps://) and STARTTLS, with a throw-away self-signed certificate ---------


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


def test_smtps_implicit_tls(tls):
    server_ctx, client_ctx = tls
    handler = Handler()
    controller = FreePortController(handler, hostname="127.0.0.1", port=0, ssl_context=server_ctx)
    controller.start()
    try:
        url = f"smtps://127.0.0.1:{controller.port}"
        EmailBackend(url, "safeguard@example.org", timeout=5, ssl_context=client_ctx).send(notice())
        assert len(handler.envelopes) == 1
        # An untrusted certificate is a configuration problem, not worth retrying.
        with pytest.raises(DeliveryError) as err:
            EmailBackend(url, "safeguard@example.org", timeout=5).send(notice())
        assert err.value.transient is False
    finally:
        controller.stop()


def test_starttls(tls):
    server_ctx, client_ctx = tls
    handler = Handler()
    controller = FreePortController(
        handler, hostname="127.0.0.1", port=0, tls_context=server_ctx, require_starttls=True
    )
    controller.start()
    try:
        base = f"smtp://127.0.0.1:{controller.port}"
        EmailBackend(base + "?starttls=1", "s@example.org", ssl_context=client_ctx).send(notice())
        assert len(handler.envelopes) == 1
        assert handler.envelopes[0].rcpt_tos == ["legal@example.org", "gc@example.org"]
        with pytest.raises(DeliveryError) as err:  # 530 Must issue a STARTTLS command first
            EmailBackend(base, "s@example.org", timeout=5).send(notice())
        assert err.value.transient is False
    finally:
        controller.stop()

"""Email backend: one plain-text message per page to all of the notice's addresses, over SMTP.

``smtp_url`` is ``smtp://[user:pass@]host[:port][?starttls=1]`` (plain SMTP, port 25 by
default, STARTTLS when asked) or ``smtps://[user:pass@]host[:port]`` (implicit TLS, port 465).
User and password are percent-decoded. Email has no idea of resolving, so ``resolve`` is a no-op.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field as PydanticField

from bot.config_types import EmailAddress, EnvName, StrictModel
from bot.durations import Duration
from bot.paging._config import _get, _required, _secret, _timeout, build_checked
from bot.paging.base import DeliveryError, PageNotice, PagerConfigError, PagerKind
from bot.paging.render import PageRenderer

log = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class SmtpTarget:
    scheme: str
    host: str
    port: int
    username: str | None
    password: str | None
    starttls: bool

    @property
    def where(self) -> str:  # for messages: never the credentials
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpTarget:
    parts = urlsplit((url or "").strip())
    if parts.scheme not in ("smtp", "smtps"):
        raise PagerConfigError("smtp url must start with smtp:// or smtps://")
    if not parts.hostname:
        raise PagerConfigError("smtp url has no host")
    try:
        port = parts.port
    except ValueError as exc:
        raise PagerConfigError("smtp url has an invalid port") from exc
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"starttls"})
    if unknown:
        raise PagerConfigError(f"smtp url has unknown parameters: {', '.join(unknown)}")
    flag = (query.get("starttls", ["0"])[-1] or "").strip().lower()
    if flag not in _TRUE | _FALSE:
        raise PagerConfigError("smtp url: starttls must be 1 or 0")
    starttls = flag in _TRUE
    if starttls and parts.scheme == "smtps":
        raise PagerConfigError("smtp url: starttls applies to smtp://, smtps:// is already TLS")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and username is None:
        raise PagerConfigError("smtp url has a password but no user")
    return SmtpTarget(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or (465 if parts.scheme == "smtps" else 25),
        username=username,
        password=password,
        starttls=starttls,
    )


def _is_transient_code(code: int | None) -> bool:
    return code is not None and 400 <= code < 500


def _reply_text(msg: bytes | str | None) -> str:
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return (msg or "").strip()[:300]


class EmailBackend:
    name = "email"

    def __init__(
        self,
        smtp_url: str,
        from_addr: str,
        timeout: float = 10.0,
        *,
        renderer: PageRenderer | None = None,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        self.target = parse_smtp_url(smtp_url)
        _, addr = parseaddr(from_addr or "")
        if not addr or "@" not in addr:
            raise PagerConfigError(f"email from address is not an address: {from_addr!r}")
        self.from_addr = from_addr
        self._envelope_from = addr
        self.timeout = float(timeout)
        if self.timeout <= 0:
            raise PagerConfigError("email timeout must be positive")
        self.renderer = renderer or PageRenderer()
        self.ssl_context = ssl_context
        self.local_hostname = local_hostname

    def __repr__(self) -> str:
        return f"EmailBackend(smtp={self.target.where!r}, from_addr={self.from_addr!r})"

    def recipients(self, notice: PageNotice) -> list[str]:
        """The notice's addresses, checked; an empty or malformed list is a permanent error."""
        out: list[str] = []
        for raw in notice.emails:
            if not raw or not raw.strip():
                continue
            _, addr = parseaddr(raw.strip())
            local, at, domain = addr.rpartition("@")
            if not at or not local or not domain or any(c.isspace() for c in addr):
                raise DeliveryError(
                    f"email page {notice.dedup_key}: not an email address: {raw!r}",
                    transient=False,
                )
            if addr not in out:
                out.append(addr)
        if not out:
            raise DeliveryError(
                f"email page {notice.dedup_key}: no email addresses to page", transient=False
            )
        return out

    def build_message(self, notice: PageNotice) -> EmailMessage:
        try:
            return self._build_message(notice)
        except (ValueError, TypeError) as exc:
            if isinstance(exc, DeliveryError):
                raise
            raise DeliveryError(
                f"email page {notice.dedup_key}: cannot build the message: {exc}", transient=False
            ) from exc

    def _build_message(self, notice: PageNotice) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.from_addr
        msg["To"] = ", ".join(self.recipients(notice))
        msg["Subject"] = self.renderer.email_subject(notice)
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        # The same page level always has the same Message-ID: a resend after a crash is one
        # message to mail clients and to servers that de-duplicate.
        msg["Message-ID"] = f"<{notice.dedup_key}.level-{notice.level}@{self._envelope_from.rpartition('@')[2]}>"
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Auto-Response-Suppress"] = "All"
        msg["X-Safeguard-Page"] = notice.dedup_key
        msg["X-Safeguard-Incident"] = notice.incident_ref
        msg.set_content(self.renderer.email_body(notice))
        return msg

    def send(self, notice: PageNotice) -> None:
        recipients = self.recipients(notice)
        msg = self.build_message(notice)
        what = f"email page {notice.dedup_key} via {self.target.where}"
        refused = self._deliver(msg, recipients, what)
        if refused:
            # Some recipients took it: a retry would page those twice, so this is a success.
            log.warning(
                "%s: %d of %d recipients refused: %s",
                what,
                len(refused),
                len(recipients),
                {r: code for r, (code, _) in refused.items()},
            )

    def resolve(self, notice: PageNotice) -> None:
        """Email cannot be withdrawn: nothing to do."""

    # -- plumbing -------------------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()

    def _connect(self) -> smtplib.SMTP:
        t = self.target
        if t.scheme == "smtps":
            return smtplib.SMTP_SSL(
                t.host,
                t.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=self._tls_context(),
            )
        return smtplib.SMTP(
            t.host, t.port, local_hostname=self.local_hostname, timeout=self.timeout
        )

    def _deliver(
        self, msg: EmailMessage, recipients: list[str], what: str
    ) -> dict[str, tuple[int, bytes]]:
        server: smtplib.SMTP | None = None
        try:
            server = self._connect()
            if self.target.starttls:
                server.starttls(context=self._tls_context())
            if self.target.username is not None:
                server.login(self.target.username, self.target.password or "")
            refused = server.send_message(msg, from_addr=self._envelope_from, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {r: code for r, (code, _) in exc.recipients.items()}
            # Retrying helps if any refusal was temporary (the others will refuse again).
            transient = any(_is_transient_code(c) for c in codes.values())
            raise DeliveryError(
                f"{what}: all recipients refused: {codes}",
                transient=transient,
                status=min(codes.values(), default=None),
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(
                f"{what}: server does not support it: {exc}", transient=False
            ) from exc
        except smtplib.SMTPServerDisconnected as exc:
            raise DeliveryError(f"{what}: server disconnected: {exc}", transient=True) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"{what}: SMTP {exc.smtp_code} {_reply_text(exc.smtp_error)}",
                transient=_is_transient_code(exc.smtp_code) or exc.smtp_code < 0,
                status=exc.smtp_code,
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(
                f"{what}: TLS certificate not trusted: {exc.verify_message}", transient=False
            ) from exc
        except TimeoutError as exc:
            raise DeliveryError(
                f"{what}: timed out after {self.timeout:g}s", transient=True
            ) from exc
        except smtplib.SMTPException as exc:
            raise DeliveryError(f"{what}: {type(exc).__name__}: {exc}", transient=True) from exc
        except OSError as exc:  # refused, unreachable, reset, DNS, TLS handshake
            raise DeliveryError(
                f"{what}: connection failed: {type(exc).__name__}: {exc}", transient=True
            ) from exc
        finally:
            if server is not None:
                try:
                    server.quit()
                except (smtplib.SMTPException, OSError):
                    server.close()
        return dict(refused)


# --- the pager kind: its config section and how to build it from that --------------------


class EmailConfig(StrictModel):
    smtp_url_env: EnvName
    from_: EmailAddress = PydanticField(alias="from")
    timeout: Duration = timedelta(seconds=10)


def _build(section, where: str, env, renderer) -> EmailBackend:
    return build_checked(where, EmailBackend,
                         smtp_url=_secret(section, where, "smtp_url_env", env),
                         from_addr=str(_required(section, where, "from", "from_")),
                         timeout=_timeout(_get(section, "timeout"), where), renderer=renderer)


KIND = PagerKind("email", EmailConfig, _build)

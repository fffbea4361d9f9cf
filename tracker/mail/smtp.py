"""Sending mail over SMTP: TRACKER_SMTP_URL parsing and a sender that keeps its connection open."""

from __future__ import annotations

import re
import smtplib
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from functools import lru_cache
from types import TracebackType
from urllib.parse import parse_qsl, unquote, urlsplit

from tracker.config import ConfigError, redact_url
from tracker.mail.errors import AddressNeedsSmtpUtf8, MailError, PermanentMailError, TransientMailError
from tracker.mail.wire import EncodedMail, encode_message

VARIABLE = "TRACKER_SMTP_URL"
TIMEOUT = 30.0  # the worker's wait for each reply: a slow server's mail still goes, a silent one is tried again later
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")
ENHANCED_STATUS = re.compile(rb"^\s*([245]\.\d{1,3}\.\d{1,3})\b")
# How smtplib's send_message sends a mail with an address only SMTPUTF8 carries (RFC 6531).
SMTPUTF8_OPTIONS = ("SMTPUTF8", "BODY=8BITMIME")


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to deliver: host, port, credentials and the kind of TLS."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    use_ssl: bool = False
    starttls: bool = False


def parse_smtp_url(url: str) -> SmtpTarget:
    """Parse an smtp:// or smtps:// URL into a target, or raise ConfigError naming the variable."""
    shown = redact_url(url)
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError as exc:  # a bracketed host that is no IPv6 address
        raise ConfigError(f"{VARIABLE} is not a valid URL: {exc}") from None
    if parts.scheme not in ("smtp", "smtps") or not host:
        raise ConfigError(f"{VARIABLE} must look like smtp://user:pass@host:port or smtps://…, got {shown!r}")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{VARIABLE} has an invalid port: {shown!r}") from None
    if port == 0:
        raise ConfigError(f"{VARIABLE} has an invalid port: {shown!r}")
    if parts.path not in ("", "/") or parts.fragment:
        raise ConfigError(f"{VARIABLE} must not have a path, got {shown!r}")
    starttls = False
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name != "starttls" or value.lower() not in TRUE + FALSE:
            raise ConfigError(f"{VARIABLE} accepts only ?starttls=1 or ?starttls=0, got {shown!r}")
        starttls = value.lower() in TRUE
    use_ssl = parts.scheme == "smtps"
    if use_ssl and starttls:
        raise ConfigError(f"{VARIABLE}: smtps:// is already encrypted; drop ?starttls=1 or use smtp://")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and username is None:
        raise ConfigError(f"{VARIABLE} has a password but no user name: {shown!r}")
    default_port = 465 if use_ssl else 587 if starttls else 25
    return SmtpTarget(host, port or default_port, username, password, use_ssl, starttls)


def _status(reply: bytes | str) -> str:
    raw = reply.encode() if isinstance(reply, str) else reply
    match = ENHANCED_STATUS.match(raw)
    return f" {match.group(1).decode()}" if match else ""


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """Return the TLS settings every connection shares: loading the CA certificates takes tens of milliseconds."""
    return ssl.create_default_context()


def _by_code(code: int, what: str, reply: bytes | str, recipient: bool = False) -> MailError:
    # The server's reply text often quotes the address, so only the codes are kept.
    message = f"{what}{_status(reply)}"
    if 400 <= code < 500:
        return TransientMailError(message, code)
    return PermanentMailError(message, code, recipient=recipient)


class SmtpSender:
    """Deliver messages over one SMTP connection, reconnecting once when the server dropped it."""

    def __init__(self, target: SmtpTarget | str, timeout: float = TIMEOUT,
                 local_hostname: str | None = None) -> None:
        self.target = parse_smtp_url(target) if isinstance(target, str) else target
        self.timeout = timeout
        # Without a name smtplib asks DNS for this host's FQDN, which stalls in some containers.
        self.local_hostname = local_hostname
        self._conn: smtplib.SMTP | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def send(self, msg: EmailMessage | EncodedMail) -> None:
        """Hand msg to the server, or raise TransientMailError / PermanentMailError.

        An EncodedMail goes as it is; an EmailMessage is written as smtplib's send_message would write it.
        """
        with self._lock:
            while True:
                reused = self._conn is not None
                try:
                    return self._send_once(msg)
                except _Dropped as dropped:
                    self._drop()
                    # Servers close idle connections after a while; that is no failure of this
                    # mail, so a reused connection gets one fresh try.
                    if not reused and dropped.timed_out:
                        raise self._timed_out() from None
                    if not reused:
                        raise TransientMailError("server closed the connection", dropped.code) from None

    def close(self) -> None:
        """Say goodbye to the server and close the connection, if one is open."""
        with self._lock:
            self._drop(polite=True)

    def _send_once(self, msg: EmailMessage | EncodedMail) -> None:
        try:
            mail = msg if isinstance(msg, EncodedMail) else encode_message(msg)
        except UnicodeError:
            raise PermanentMailError("message cannot be encoded for this server") from None
        try:
            conn = self._connection()
            if mail.smtputf8:
                conn.ehlo_or_helo_if_needed()
                if not conn.has_extn("smtputf8"):
                    raise AddressNeedsSmtpUtf8("the address needs SMTPUTF8, which this server does not offer")
            # With such an address: MAIL FROM … SMTPUTF8 and the headers as UTF-8 (RFC 6531/6532).
            refused = conn.sendmail(mail.sender, list(mail.recipients), mail.data,
                                    SMTPUTF8_OPTIONS if mail.smtputf8 else ())
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            raise _by_code(code, "recipient refused", reply, recipient=True) from None
        except smtplib.SMTPServerDisconnected as error:
            # smtplib reports a reply that did not come in time as a closed connection: told apart by its cause.
            raise _Dropped(timed_out=isinstance(error.__context__, TimeoutError)) from None
        except smtplib.SMTPResponseException as error:
            if error.smtp_code == 421:
                raise _Dropped(421) from None
            if isinstance(error, smtplib.SMTPConnectError):
                raise _by_code(error.smtp_code, "server refused the connection", error.smtp_error) from None
            if isinstance(error, smtplib.SMTPAuthenticationError):
                self._drop()
                raise _by_code(error.smtp_code, "login refused", error.smtp_error) from None
            what = "sender refused" if isinstance(error, smtplib.SMTPSenderRefused) else "message refused"
            raise _by_code(error.smtp_code, what, error.smtp_error) from None
        except smtplib.SMTPNotSupportedError as error:
            self._drop()
            raise PermanentMailError(f"server lacks a needed extension: {error}") from None
        except smtplib.SMTPException as error:
            self._drop()
            raise TransientMailError(f"SMTP error: {type(error).__name__}") from None
        except UnicodeError:
            self._drop()
            raise PermanentMailError("message cannot be encoded for this server") from None
        except OSError as error:
            self._drop()
            if isinstance(error, TimeoutError):
                raise self._timed_out() from None
            raise TransientMailError(f"cannot reach the SMTP server: {type(error).__name__}") from None
        if refused:
            code, reply = next(iter(refused.values()))
            raise _by_code(code, "recipient refused", reply, recipient=True)

    def _timed_out(self) -> SmtpTimeout:
        target = self.target
        return SmtpTimeout(f"the SMTP server at {target.host}:{target.port} did not answer within {self.timeout:g} s "
                           f"(timed out)")

    def _connection(self) -> smtplib.SMTP:
        if self._conn is not None:
            return self._conn
        target = self.target
        conn: smtplib.SMTP
        if target.use_ssl:
            conn = smtplib.SMTP_SSL(target.host, target.port, self.local_hostname, timeout=self.timeout,
                                    context=_tls_context())
        else:
            conn = smtplib.SMTP(target.host, target.port, self.local_hostname, timeout=self.timeout)
        try:
            if target.starttls:
                conn.starttls(context=_tls_context())
            if target.username is not None:
                conn.login(target.username, target.password or "")
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _drop(self, polite: bool = False) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if polite:
                conn.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            conn.close()


class SmtpTimeout(TransientMailError):
    """The server did not answer within the sender's timeout (a silent server, or one that is not SMTP): tried again
    later, as any transient failure, and said so."""


class _Dropped(Exception):
    """The server closed the connection, or said it will (421), or a reply did not come in time (timed_out)."""

    def __init__(self, code: int | None = None, timed_out: bool = False) -> None:
        super().__init__(code)
        self.code = code
        self.timed_out = timed_out

"""Sending survey mail through an HTTP API (Postmark, SendGrid, Mailgun) instead of SMTP."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from types import TracebackType
from typing import Any

import requests

from tracker.config import Settings
from tracker.mail.errors import PermanentMailError, TransientMailError
from tracker.mail.smtp import SmtpSender
from tracker.mail.wire import EncodedMail

TIMEOUT = (5.0, 30.0)  # connect, read
# Headers every API sets from its own fields; everything else (List-Unsubscribe, Message-ID, …) is passed on.
OWN_HEADERS = {"from", "to", "cc", "bcc", "subject", "reply-to", "content-type", "content-transfer-encoding",
               "mime-version", "date"}


def _parts(message: EmailMessage) -> tuple[str, str]:
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    return (plain.get_content() if plain is not None else "",  # type: ignore[attr-defined]
            html.get_content() if html is not None else "")  # type: ignore[attr-defined]


def _extra_headers(message: EmailMessage) -> dict[str, str]:
    return {name: str(value) for name, value in message.items() if name.lower() not in OWN_HEADERS}


def _addresses(message: EmailMessage, name: str) -> list[tuple[str, str]]:
    return [(n, a) for n, a in getaddresses([str(v) for v in message.get_all(name, [])]) if a]


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class HttpSender:
    """Post messages to one provider's API over a kept-alive session; the subclasses speak each dialect."""

    name = "http"
    default_url = ""

    def __init__(self, api_key: str, base_url: str | None = None, session: requests.Session | None = None,
                 timeout: tuple[float, float] = TIMEOUT):
        self.api_key = api_key
        self.timeout = timeout
        self.base_url = (base_url or self.default_url).rstrip("/")
        self.session = session or requests.Session()
        self.session.headers.update({"Accept": "application/json", "User-Agent": "satisfaction-tracker"})

    def __enter__(self) -> HttpSender:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the session's pooled connections."""
        self.session.close()

    def send(self, message: EmailMessage | EncodedMail) -> None:
        """Hand message to the provider, or raise TransientMailError / PermanentMailError."""
        if isinstance(message, EncodedMail):
            message = message.message  # the API takes headers and parts: the mail as written, parsed
        try:
            response = self._post(message)
        except requests.Timeout:
            raise TransientMailError(f"{self.name} did not answer in time") from None
        except requests.ConnectionError:
            raise TransientMailError(f"cannot reach {self.name}") from None
        except requests.RequestException as exc:
            raise TransientMailError(f"{self.name} request failed: {type(exc).__name__}") from None
        if response.status_code < 300 and self._accepted(response):
            return
        status = response.status_code
        # The provider's message often quotes the address; only codes go into errors and logs.
        detail = f"{self.name} refused the mail: HTTP {status}{self._code(response)}"
        if status == 429 or status >= 500:
            raise TransientMailError(detail)
        raise PermanentMailError(detail, recipient=self._recipient_refused(response))

    def _post(self, message: EmailMessage) -> requests.Response:
        raise NotImplementedError

    def _accepted(self, response: requests.Response) -> bool:
        return True

    def _code(self, response: requests.Response) -> str:
        return ""

    def _recipient_refused(self, response: requests.Response) -> bool:
        return False


class PostmarkSender(HttpSender):
    """Postmark's `POST /email` with the server token."""

    name, default_url = "Postmark", "https://api.postmarkapp.com"
    RECIPIENT_CODES = (406,)  # inactive recipient: bounced hard or complained before

    def _post(self, message: EmailMessage) -> requests.Response:
        text, html = _parts(message)
        body: dict[str, Any] = {
            "From": str(message["From"]), "To": str(message["To"]), "Subject": str(message["Subject"] or ""),
            "TextBody": text, "HtmlBody": html, "MessageStream": "outbound", "TrackOpens": False,
            "TrackLinks": "None",
            "Headers": [{"Name": k, "Value": v} for k, v in _extra_headers(message).items()],
        }
        if message["Reply-To"]:
            body["ReplyTo"] = str(message["Reply-To"])
        return self.session.post(f"{self.base_url}/email", json=body, timeout=self.timeout,
                                 headers={"X-Postmark-Server-Token": self.api_key})

    def _accepted(self, response: requests.Response) -> bool:
        return not _json(response).get("ErrorCode")

    def _code(self, response: requests.Response) -> str:
        code = _json(response).get("ErrorCode")
        return f", ErrorCode {code}" if code else ""

    def _recipient_refused(self, response: requests.Response) -> bool:
        data = _json(response)
        code = data.get("ErrorCode")
        # 300 is any invalid request; it is about the customer's address only when it names the To field.
        return code in self.RECIPIENT_CODES or (code == 300 and "'to'" in str(data.get("Message", "")).lower())


class SendgridSender(HttpSender):
    """SendGrid's v3 `POST /v3/mail/send` with a Bearer key."""

    name, default_url = "SendGrid", "https://api.sendgrid.com"

    def _post(self, message: EmailMessage) -> requests.Response:
        text, html = _parts(message)
        sender = parseaddr(str(message["From"]))
        body: dict[str, Any] = {
            "personalizations": [{"to": [{"email": a, **({"name": n} if n else {})}
                                         for n, a in _addresses(message, "To")]}],
            "from": {"email": sender[1], **({"name": sender[0]} if sender[0] else {})},
            "subject": str(message["Subject"] or ""),
            "content": [c for c in ({"type": "text/plain", "value": text}, {"type": "text/html", "value": html})
                        if c["value"]],
            "headers": _extra_headers(message),
            "tracking_settings": {"click_tracking": {"enable": False}, "open_tracking": {"enable": False}},
        }
        if message["Reply-To"]:
            body["reply_to"] = {"email": parseaddr(str(message["Reply-To"]))[1]}
        return self.session.post(f"{self.base_url}/v3/mail/send", json=body, timeout=self.timeout,
                                 headers={"Authorization": f"Bearer {self.api_key}"})

    def _recipient_refused(self, response: requests.Response) -> bool:
        errors = _json(response).get("errors")
        return response.status_code == 400 and any(
            isinstance(e, dict) and re.match(r"personalizations\.\d+\.to\b", str(e.get("field") or ""))
            for e in (errors if isinstance(errors, list) else []))


class MailgunSender(HttpSender):
    """Mailgun's `POST /v3/<domain>/messages.mime`, the finished MIME message uploaded as is."""

    name, default_url = "Mailgun", "https://api.mailgun.net"

    def __init__(self, api_key: str, domain: str, base_url: str | None = None,
                 session: requests.Session | None = None, timeout: tuple[float, float] = TIMEOUT):
        super().__init__(api_key, base_url, session, timeout)
        self.domain = domain

    def _post(self, message: EmailMessage) -> requests.Response:
        recipients = ", ".join(a for _n, a in _addresses(message, "To"))
        return self.session.post(
            f"{self.base_url}/v3/{self.domain}/messages.mime", auth=("api", self.api_key), timeout=self.timeout,
            data={"to": recipients, "o:tracking": "no"},
            files={"message": ("message.mime", message.as_bytes(), "message/rfc822")})

    def _recipient_refused(self, response: requests.Response) -> bool:
        text = str(_json(response).get("message", "")).lower()
        return response.status_code == 400 and ("'to'" in text or "to parameter" in text)


def make_sender(settings: Settings) -> SmtpSender | HttpSender:
    """Return the sender TRACKER_MAIL_TRANSPORT names, ready to use as a context manager."""
    transport, key, url = settings.mail_transport, settings.mail_api_key or "", settings.mail_api_url
    if transport == "postmark":
        return PostmarkSender(key, url)
    if transport == "sendgrid":
        return SendgridSender(key, url)
    if transport == "mailgun":
        return MailgunSender(key, settings.mailgun_domain or "", url)
    return SmtpSender(settings.smtp_url)

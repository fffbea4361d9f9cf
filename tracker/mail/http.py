"""Sending survey mail through an HTTP API (Postmark, SendGrid, Mailgun) instead of SMTP."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests

from tracker.config import Settings
from tracker.mail.errors import PermanentMailError, TransientMailError
from tracker.mail.smtp import SmtpSender
from tracker.mail.wire import EncodedMail

TIMEOUT = (5.0, 30.0)  # connect, read
# Answers to `tracker check`'s probe that neither prove nor refuse a key (with any 5xx): see HttpSender._unconfirmed.
UNCONFIRMED = frozenset({404, 405, 429})
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


@dataclass(frozen=True)
class ApiProbe:
    """What `tracker check` learnt from a mail API's answer to a call that sends nothing: whether the settings work,
    what was found, and the variable to look at when they do not."""

    ok: bool
    text: str
    variable: str = "TRACKER_MAIL_API_KEY"
    confirmed: bool = True  # False: it answered, but not as the provider does, so the key is neither proved nor refused


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

    def probe(self) -> ApiProbe:
        """Prove the key (and the URL, and Mailgun's domain) with one call that sends no mail; never raises."""
        try:
            response = self._probe()
        except requests.Timeout:
            return ApiProbe(False, f"{self.name} did not answer within {self.timeout[1]:g} s", "TRACKER_MAIL_API_URL")
        except requests.ConnectionError:
            return ApiProbe(False, f"cannot reach {self.name} at {self.base_url}", "TRACKER_MAIL_API_URL")
        except requests.RequestException as exc:
            return ApiProbe(False, f"{self.name} request failed: {type(exc).__name__}", "TRACKER_MAIL_API_URL")
        status = response.status_code
        if status == 429 or status >= 500:
            return self._unconfirmed(response)
        if 300 <= status < 400:
            return ApiProbe(False, f"{self.name} redirected the check (HTTP {status}) to "
                                   f"{response.headers.get('Location', '')[:200]}", "TRACKER_MAIL_API_URL")
        return self._probed(response)

    def _unconfirmed(self, response: requests.Response, why: str = "") -> ApiProbe:
        """An answer that neither proves nor refuses the key: one the provider's API does not give to the check
        (a 404 or 405: a proxy's, or a stand-in's), or a 429 or 5xx (busy or down for now; sends are retried)."""
        request, status = response.request, response.status_code
        why = why or (f"which {self.name} does not: the key is not confirmed (is TRACKER_MAIL_API_URL {self.name}'s "
                      "API?)" if status in (404, 405) else "busy or down for now: the key is not confirmed")
        return ApiProbe(True, f"{self.base_url} answers {request.method} {urlsplit(request.url or '').path} with "
                              f"HTTP {status}{self._said(response)}, {why}", "TRACKER_MAIL_API_URL", confirmed=False)

    def _probe(self) -> requests.Response:
        raise NotImplementedError

    def _probed(self, response: requests.Response) -> ApiProbe:
        if response.status_code == 200:
            return ApiProbe(True, f"{self.name} at {self.base_url} accepts the key")
        return self._refused(response)

    def _refused(self, response: requests.Response) -> ApiProbe:
        if response.status_code in UNCONFIRMED:
            return self._unconfirmed(response)
        return ApiProbe(False, f"{self.name} refused the key: HTTP {response.status_code}{self._said(response)}")

    def _said(self, response: requests.Response) -> str:
        """The provider's words about a refused check (no mail, so no address in them); a send's errors carry
        codes only (_code)."""
        return self._code(response)

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

    def _probe(self) -> requests.Response:
        # The server's own settings: a read every server token may make (GET /server).
        return self.session.get(f"{self.base_url}/server", timeout=self.timeout, allow_redirects=False,
                                headers={"X-Postmark-Server-Token": self.api_key})

    def _probed(self, response: requests.Response) -> ApiProbe:
        if response.status_code == 200 and not _json(response).get("ErrorCode"):
            name = str(_json(response).get("Name") or "")[:100]
            return ApiProbe(True, f"Postmark at {self.base_url} accepts the server token"
                                  + (f" (server {name!r})" if name else ""))
        return self._refused(response)

    def _refused(self, response: requests.Response) -> ApiProbe:
        # Postmark's API says why it refuses with an ErrorCode (10: a bad token, with its 401). A 403 or other
        # refusal without one is a firewall's or proxy's between here and Postmark (Postmark's support article
        # "Getting a 403 that doesn't look like a Postmark error"), which says nothing of the token.
        if response.status_code not in (401, *UNCONFIRMED) and not _json(response).get("ErrorCode"):
            return self._unconfirmed(response, "not Postmark's own answer (no ErrorCode: a firewall or proxy on the "
                                               "way?): the key is not confirmed")
        return super()._refused(response)

    def _accepted(self, response: requests.Response) -> bool:
        return not _json(response).get("ErrorCode")

    def _code(self, response: requests.Response) -> str:
        code = _json(response).get("ErrorCode")
        return f", ErrorCode {code}" if code else ""

    def _said(self, response: requests.Response) -> str:
        text = " ".join(str(_json(response).get("Message") or "").split())[:200]
        return self._code(response) + (f": {text}" if text else "")

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

    def _probe(self) -> requests.Response:
        # The key's own permissions (GET /v3/scopes): sending needs mail.send.
        return self.session.get(f"{self.base_url}/v3/scopes", timeout=self.timeout, allow_redirects=False,
                                headers={"Authorization": f"Bearer {self.api_key}"})

    def _probed(self, response: requests.Response) -> ApiProbe:
        if response.status_code == 403:  # a valid key that may not list its scopes: it may still send
            return ApiProbe(True, f"SendGrid at {self.base_url} accepts the API key (it may not list its "
                                  f"permissions, so Mail Send is not confirmed)")
        if response.status_code != 200:
            return self._refused(response)
        scopes = _json(response).get("scopes")
        if isinstance(scopes, list) and "mail.send" not in scopes:
            return ApiProbe(False, "the SendGrid API key lacks the Mail Send permission (scope mail.send): "
                                   "SendGrid would refuse every survey")
        return ApiProbe(True, f"SendGrid at {self.base_url} accepts the API key (Mail Send granted)")

    def _said(self, response: requests.Response) -> str:
        errors = _json(response).get("errors")
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        text = " ".join(str(first.get("message") or "").split())[:200]
        return f": {text}" if text else ""

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

    def _probe(self) -> requests.Response:
        # A domain sending key may only send, so the check is a send without a message: Mailgun authenticates the
        # key for the domain, then refuses the request as incomplete (400), and nothing is sent.
        return self.session.post(f"{self.base_url}/v3/{self.domain}/messages.mime", auth=("api", self.api_key),
                                 timeout=self.timeout, allow_redirects=False, data={})

    def _probed(self, response: requests.Response) -> ApiProbe:
        status = response.status_code
        if status in (200, 400):  # 400: authenticated, and refused for the missing message
            return ApiProbe(True, f"Mailgun at {self.base_url} accepts the key for {self.domain} (checked with a "
                                  f"request without a message: nothing sent)")
        if status == 404 and "domain" in self._said(response).lower():  # Mailgun's own "Domain not found"
            return ApiProbe(False, f"Mailgun at {self.base_url} knows no domain {self.domain!r}{self._said(response)}"
                                   " (an EU domain needs TRACKER_MAIL_API_URL=https://api.eu.mailgun.net)",
                            "TRACKER_MAILGUN_DOMAIN")
        return self._refused(response)

    def _said(self, response: requests.Response) -> str:
        text = " ".join(str(_json(response).get("message") or "").split())[:200]
        return f": {text}" if text else ""

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

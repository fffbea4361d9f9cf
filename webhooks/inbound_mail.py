"""POST /inbound/<provider>: survey replies by email, as Mailgun, Postmark and SendGrid deliver them."""

from __future__ import annotations

import codecs
import email
import logging
import time
from collections.abc import Callable
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import compat32
from email.policy import default as default_policy
from typing import Any

from flask import Blueprint, jsonify, request
from marshmallow import ValidationError, fields
from werkzeug.exceptions import RequestEntityTooLarge

from tracker import text as jsontext
from tracker.alerts.held import alert_answer
from tracker.answers.by_email import InboundReply, handle_reply
from tracker.config import Settings
from tracker.model import Survey
from tracker.schema_cache import schema
from tracker.web.context import current_tracker
from tracker.web.errors import envelope
from webhooks.adapters.base import (
    Inbound,
    PayloadError,
    SignatureError,
    VendorPayload,
    check_fresh,
    check_shared_token,
    hmac_hex,
    load_json,
    same,
    unix_seconds,
)

bp = Blueprint("inbound", __name__)
log = logging.getLogger(__name__)
# Replies may carry attachments and long quoted threads; larger mails are refused with 413.
INBOUND_MAX_BODY = 10 * 1024 * 1024
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _text(**kwargs: Any) -> fields.String:
    return fields.String(load_default="", allow_none=True, **kwargs)


class MailgunInboundPayload(VendorPayload):
    """A Mailgun route's forward() POST (form fields, parsed mail)."""

    recipient, sender, subject = _text(), _text(), _text()
    from_ = _text(data_key="from")
    To, Cc = _text(), _text()
    body_plain, stripped_text = _text(data_key="body-plain"), _text(data_key="stripped-text")
    body_html, stripped_html = _text(data_key="body-html"), _text(data_key="stripped-html")
    message_headers = _text(data_key="message-headers")
    in_reply_to, references = _text(data_key="In-Reply-To"), _text(data_key="References")


class PostmarkAddressPayload(VendorPayload):
    """One of Postmark's parsed addresses (FromFull, ToFull, CcFull)."""

    Email, Name, MailboxHash = _text(), _text(), _text()


class PostmarkHeaderPayload(VendorPayload):
    """One mail header as Postmark lists it."""

    Name, Value = _text(), _text()


class PostmarkInboundPayload(VendorPayload):
    """Postmark's inbound webhook JSON."""

    From, To, Cc, OriginalRecipient, Subject, MessageID = _text(), _text(), _text(), _text(), _text(), _text()
    TextBody, HtmlBody, StrippedTextReply = _text(), _text(), _text()
    # Postmark always sends the parsed sender; a body without it is not Postmark's shape (422 naming it).
    FromFull = fields.Nested(PostmarkAddressPayload, required=True)
    ToFull = fields.List(fields.Nested(PostmarkAddressPayload), load_default=list, allow_none=True)
    CcFull = fields.List(fields.Nested(PostmarkAddressPayload), load_default=list, allow_none=True)
    Headers = fields.List(fields.Nested(PostmarkHeaderPayload), load_default=list, allow_none=True)


class SendgridInboundPayload(VendorPayload):
    """SendGrid Inbound Parse fields (parsed mode; raw mode sends the whole mail as `email`)."""

    to, cc, subject, text, html, headers, envelope, charsets, email = (_text() for _ in range(9))
    from_ = _text(data_key="from")


def _load(payload_class: type[VendorPayload], data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise PayloadError("The body must be a JSON object.", {"_schema": ["Must be an object."]})
    try:
        return {k: ("" if v is None else v) for k, v in schema(payload_class).load(data).items()}
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise PayloadError("The payload is not a valid inbound mail.", messages) from None


def _header_block(raw: str) -> dict[str, str]:
    parsed = HeaderParser(policy=compat32).parsestr(raw[:200_000], headersonly=True)
    return {k.lower(): str(v) for k, v in parsed.items()}


def _json(raw: str) -> Any:
    try:
        return jsontext.loads(raw) if raw else None
    except (ValueError, RecursionError):
        return None


def _mailgun(body: bytes, settings: Settings, now: float) -> InboundReply:
    form = request.form.to_dict()
    timestamp, token, signature = (str(form.get(k, "")) for k in ("timestamp", "token", "signature"))
    expected = hmac_hex((settings.mailgun_signing_key or "").encode(), f"{timestamp}{token}".encode())
    if not (token and signature and same(expected, signature.lower())):
        raise SignatureError("Invalid signature.")
    check_fresh(unix_seconds(timestamp), now)
    data = _load(MailgunInboundPayload, form)
    listed = _json(data["message_headers"])
    headers = {str(p[0]).lower(): str(p[1]) for p in (listed if isinstance(listed, list) else [])
               if isinstance(p, list) and len(p) == 2}
    headers.setdefault("in-reply-to", data["in_reply_to"])
    headers.setdefault("references", data["references"])
    return InboundReply(recipients=(data["recipient"], data["To"], data["Cc"], headers.get("to", "")),
                        sender=data["from_"] or data["sender"], subject=data["subject"],
                        text=data["stripped_text"] or data["body_plain"],
                        html=data["stripped_html"] or data["body_html"], headers=headers)


def _postmark(body: bytes, settings: Settings, now: float) -> InboundReply:
    data = _load(PostmarkInboundPayload, load_json(body))
    headers = {str(h.get("Name") or "").lower(): str(h.get("Value") or "") for h in data["Headers"] or []}
    listed = [a.get("Email") or "" for a in [*(data["ToFull"] or []), *(data["CcFull"] or [])]]
    sender = data["FromFull"].get("Email") or data["From"]
    return InboundReply(recipients=(data["OriginalRecipient"], data["To"], data["Cc"], *listed), sender=sender,
                        subject=data["Subject"], text=data["StrippedTextReply"] or data["TextBody"],
                        html=data["HtmlBody"], headers=headers)


def _form_fields(body: bytes) -> dict[str, str]:
    """Read multipart fields from the raw body, each decoded in the charset SendGrid names for it."""
    if request.mimetype != "multipart/form-data":
        return request.form.to_dict()
    head = f"Content-Type: {request.headers.get('Content-Type', '')}\r\n\r\n".encode("latin-1", "replace")
    try:
        parsed = BytesParser(policy=compat32).parsebytes(head + body)
    except RecursionError:  # the email package reads nested multiparts by recursion
        raise PayloadError("The form's parts are nested too deeply.", status=400) from None
    raw: dict[str, bytes] = {}
    for part in parsed.get_payload() if parsed.is_multipart() else []:
        if not isinstance(part, Message):
            continue
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and not part.get_filename() and isinstance(payload, bytes):
            raw.setdefault(name, payload)
    charsets = _json(raw.get("charsets", b"").decode("utf-8", "replace"))
    charsets = charsets if isinstance(charsets, dict) else {}
    _check_charsets(charsets)
    return {name: _decode(value, charsets.get(name)) for name, value in raw.items()}


def _check_charsets(charsets: dict[str, Any]) -> None:
    """Refuse (422) a `charsets` entry naming a codec that is not a text encoding, like "base64" or "rot13"."""
    wrong = []
    for name, charset in charsets.items():
        try:
            is_text = not isinstance(charset, str) or not charset or codecs.lookup(charset)._is_text_encoding
        except (LookupError, ValueError):  # ValueError: a name with a NUL in it, which no codec has
            is_text = True  # an unknown name is read as UTF-8 below, as mail clients do
        if not is_text:
            wrong.append(f"{str(name)[:50]}: {str(charset)[:50]} is a codec, not a text encoding.")
    if wrong:
        raise PayloadError("The charsets field names codecs that are not text encodings.", {"charsets": wrong})


def _decode(value: bytes, charset: Any) -> str:
    """Decode a field in the charset named for it; an unknown name, or text it cannot decode, reads as UTF-8."""
    try:
        if isinstance(charset, str) and charset and codecs.lookup(charset)._is_text_encoding:
            return value.decode(charset, "replace")
    except (LookupError, UnicodeError, ValueError):
        pass
    return value.decode("utf-8", "replace")


def _mime_parts(raw: str) -> tuple[str, str, dict[str, str], str]:
    """Return text, HTML, headers and subject of a whole MIME mail (SendGrid's raw mode)."""
    try:
        message = email.message_from_string(raw[:INBOUND_MAX_BODY], policy=default_policy)
    except RecursionError:  # the email package reads nested multiparts by recursion
        raise PayloadError("The mail's MIME parts are nested too deeply.",
                           {"email": ["MIME parts nested too deeply."]}) from None
    bodies = []
    for kind in ("plain", "html"):
        try:
            part = message.get_body((kind,))  # type: ignore[attr-defined]
            bodies.append(part.get_content() if part is not None else "")
        except Exception:  # an undecodable part reads as empty rather than failing the reply
            bodies.append("")
    headers = {k.lower(): str(v) for k, v in _safe_items(message)}
    return bodies[0], bodies[1], headers, headers.get("subject", "")


def _safe_items(message: Message) -> list[tuple[str, str]]:
    items = []
    for key in message.keys():
        try:
            items.append((key, str(message[key])))
        except Exception:  # noqa: S112 - a header the parser cannot read is left out
            continue
    return items


def _sendgrid(body: bytes, settings: Settings, now: float) -> InboundReply:
    data = _load(SendgridInboundPayload, _form_fields(body))
    text, html, headers, subject = data["text"], data["html"], _header_block(data["headers"]), data["subject"]
    if data["email"]:
        text, html, mime_headers, subject = _mime_parts(data["email"])
        headers = {**mime_headers, **headers}
    smtp_envelope = _json(data["envelope"])
    listed = smtp_envelope.get("to") if isinstance(smtp_envelope, dict) else None
    listed = listed if isinstance(listed, list) else []
    recipients = (data["to"], data["cc"], headers.get("to", ""), *(str(a) for a in listed))
    return InboundReply(recipients=recipients, sender=data["from_"] or headers.get("from", ""), subject=subject,
                        text=text, html=html, headers=headers)


PROVIDERS: dict[str, tuple[tuple[str, ...], Callable[[bytes, Settings, float], InboundReply]]] = {
    "mailgun": (FORM_TYPES, _mailgun),
    "postmark": (("application/json",), _postmark),
    "sendgrid": (FORM_TYPES, _sendgrid),
}


@bp.post("/inbound/<provider>")
def receive(provider: str) -> Any:
    """Record a reply to a survey; any mail that was read gets 200, so the provider stops retrying."""
    tracker = current_tracker()
    settings = tracker.settings
    secret = settings.mailgun_signing_key if provider == "mailgun" else settings.inbound_token
    if provider not in PROVIDERS or not secret:
        return envelope(404, "Unknown or unconfigured provider.")
    content_types, parse = PROVIDERS[provider]
    if provider != "mailgun":
        try:  # the shared token is checked before a byte of the body is read
            check_shared_token(Inbound(b"", {k.lower(): v for k, v in request.headers.items()},
                                       request.args.to_dict()), secret)
        except SignatureError:
            return envelope(401, "The token is missing or invalid.",
                            headers={"WWW-Authenticate": 'Basic realm="inbound"'})
    request.max_content_length = INBOUND_MAX_BODY
    request.max_form_memory_size = INBOUND_MAX_BODY
    if request.mimetype not in content_types:
        return envelope(415, f"The body must be {' or '.join(content_types)}.")
    try:
        body = request.get_data(cache=True)
        too_large = len(body) >= INBOUND_MAX_BODY and bool(request.stream.read(1))
    except RequestEntityTooLarge:
        too_large = True
    if too_large:
        return envelope(413, "The mail is larger than 10 MiB.")
    try:
        reply = parse(body, settings, time.time())
    except SignatureError:
        return envelope(401, "The signature is missing, invalid or stale.",
                        headers={"WWW-Authenticate": 'Signature realm="inbound"'})
    except PayloadError as exc:
        return envelope(exc.status, exc.message, exc.errors or None)

    now_ms = int(time.time() * 1000)

    def alert(survey: Survey, recorded: int, rating: int) -> None:
        alert_answer(settings, tracker.kick, survey, recorded, rating)

    outcome = handle_reply(tracker.store, settings, reply, now_ms, on_answer=alert)
    return jsonify({"status": outcome}), 200

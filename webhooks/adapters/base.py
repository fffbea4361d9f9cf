"""What every source adapter shares: the inbound request, the three outcomes, and the crypto helpers.

An adapter module is pure: it exposes

    NAME: str                      # the <source> in /webhooks/<source>
    CONTENT_TYPES: tuple[str, ...] # accepted media types; () accepts any
    def verify(inbound: Inbound, secret: str) -> None        # raises SignatureError
    def parse(inbound: Inbound) -> Delivery                  # raises PayloadError / IgnoredEvent

and, when the source names each delivery in a header, optionally

    def delivery_id(inbound: Inbound) -> str | None          # the id parse() dedupes by, body unread

so that the receiver answers a verified retry as a duplicate even when its body no longer parses. An adapter module
never imports another adapter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields

from tracker import text as jsontext
from tracker.events import OUT_OF_RANGE, epoch_seconds_in_range, parse_event
from tracker.model import Event
from tracker.schema_cache import load

JSON_TYPES = ("application/json",)


class SignatureError(Exception):
    """The request is not provably from the source (401); the message never helps a forger."""


class PayloadError(Exception):
    """The body is not JSON (400) or not of the expected shape (422); errors name the fields."""

    def __init__(self, message: str, errors: Mapping[str, Any] | None = None, status: int = 422):
        super().__init__(message)
        self.message = message
        self.errors = dict(errors or {})
        self.status = status


class IgnoredEvent(Exception):
    """A valid delivery about something the tracker does not act on (200 ignored)."""


@dataclass(frozen=True)
class Inbound:
    """One HTTP request as an adapter sees it: raw bytes, lower-cased headers, query, arrival time."""

    body: bytes
    headers: Mapping[str, str]
    query: Mapping[str, str] = field(default_factory=dict)
    received_at: float = 0.0

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass(frozen=True)
class Delivery:
    """What a request carried: the id it is deduplicated by, and its events."""

    id: str
    events: tuple[Event, ...]


def load_json(body: bytes) -> Any:
    """Decode a JSON body (every string mended: tracker.text) or raise PayloadError(400) saying what is wrong."""
    try:
        return jsontext.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        why = "it is not UTF-8 text"
    except json.JSONDecodeError as exc:
        why = f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    except ValueError as exc:
        why = str(exc)
    except RecursionError:
        why = "it is nested too deeply"
    raise PayloadError(f"The body is not valid JSON: {why}.", status=400) from None


def require_object(data: Any) -> dict[str, Any]:
    """Return data when it is a JSON object, else raise PayloadError(422)."""
    if not isinstance(data, dict):
        raise PayloadError("The body must be a JSON object.", {"_schema": ["Must be an object."]})
    return data


def load_event(raw: Mapping[str, Any], source: str) -> Event:
    """Validate a standard-shaped event dict and return it as an Event, or raise PayloadError."""
    try:
        return parse_event(raw, source)
    except ValidationError as exc:
        raise PayloadError("The event is not valid.", _as_dict(exc.messages)) from None


def _as_dict(messages: Any) -> dict[str, Any]:
    return messages if isinstance(messages, dict) else {"_schema": messages}


def hmac_digest(secret: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    """Return the raw HMAC of message."""
    return hmac.new(secret, message, getattr(hashlib, algorithm)).digest()


def hmac_base64(secret: bytes, message: bytes, algorithm: str = "sha256") -> str:
    """Return the base64 HMAC of message, as most vendors send it."""
    return base64.b64encode(hmac_digest(secret, message, algorithm)).decode("ascii")


def hmac_hex(secret: bytes, message: bytes, algorithm: str = "sha256") -> str:
    """Return the hex HMAC of message."""
    return hmac_digest(secret, message, algorithm).hex()


def same(expected: str, given: str) -> bool:
    """Compare two signatures in constant time."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8", "replace"))


def check_shared_token(inbound: Inbound, secret: str) -> None:
    """Accept `?token=<secret>` or Basic auth whose password is the secret (vendors that sign nothing)."""
    token = inbound.query.get("token", "")
    if token and same(secret, token):
        return
    auth = inbound.header("authorization")
    if auth[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
        except ValueError:
            raise SignatureError("Invalid credentials.") from None
        _user, _, password = decoded.partition(":")
        if password and same(secret, password):
            return
    raise SignatureError("Missing or invalid credentials.")


def fallback_delivery_id(source: str, *parts: object) -> str:
    """Build a dedupe id for sources that send none: source + ticket + status + time."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:32]
    return f"{source}:{digest}"


# Shared by the vendor adapters (appended; the functions above keep their signatures).

TOLERANCE_SECONDS = 300


class IdField(fields.Field):
    """A vendor id sent as a string or a number, loaded as a string ("" loads as None unless required)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValidationError("Not a valid id.")
        text = str(value).strip()
        if not text:
            if self.required:
                raise ValidationError("Field may not be blank.")
            return None
        if len(text) > 200:
            raise ValidationError("Longer than maximum length 200.")
        return text


def unix_time(per_second: int = 1) -> Callable[[float], None]:
    """A validator for a vendor's unix time (seconds, or 1/per_second of one): a time an event may carry.

    Checked as the payload loads, so a time no datetime can hold (1e308, 2**70) is a 422 naming the field.
    """

    def validate(value: float) -> None:
        if not (math.isfinite(value) and epoch_seconds_in_range(value / per_second)):
            raise ValidationError(OUT_OF_RANGE)

    return validate


def load_payload(schema_class: type[Schema], data: Any) -> dict[str, Any]:
    """Load a vendor payload with its schema, or raise PayloadError(422) naming the fields at fault."""
    try:
        return load(schema_class, require_object(data))
    except ValidationError as exc:
        raise PayloadError("The payload is missing required fields.", _as_dict(exc.messages)) from None


def unix_seconds(text: str) -> int:
    """Read a signed unix-seconds timestamp header, or raise SignatureError."""
    text = text.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 12):
        raise SignatureError("Invalid signature.")
    return int(text)


def check_fresh(sent_at: float, received_at: float, tolerance: float = TOLERANCE_SECONDS) -> None:
    """Raise SignatureError when a signed timestamp lies further than tolerance from the arrival time."""
    if not math.isfinite(sent_at) or abs(received_at - sent_at) > tolerance:
        raise SignatureError("Invalid signature.")


class VendorPayload(Schema):
    """Base of the `<Vendor><Thing>Payload` schemas: vendor input tolerates fields it does not know."""

    class Meta:
        unknown = EXCLUDE


def slug(text: Any) -> str | None:
    """Turn a vendor label ("Web Form", "Channel::WebWidget") into a lower-case token, or None if empty."""
    if not isinstance(text, str) or not text.strip():
        return None
    return re.sub(r"[^\w]+", "_", text.strip().lower()).strip("_") or None


ORGANISATION_MAX = 200


def vendor_text(value: Any) -> str | None:
    """Return a vendor's free text (an organisation's name) stripped, or None when blank, unrendered or not text."""
    # Placeholders a helpdesk could not fill arrive as "" or, on some, as the raw "{{…}}"; a non-string is a
    # field the vendor does not document in that shape, so it is left out rather than failing the delivery.
    if not isinstance(value, str):
        return None
    text = value.strip()[:ORGANISATION_MAX]  # a name longer than any real one is cut, the delivery kept
    return text if text and "{{" not in text else None

"""Standard Webhooks signatures (https://www.standardwebhooks.com), made by the reference library.

One module signs (the alerts we send) and verifies (the `standard` source we receive). The
`standardwebhooks` package decodes the secret and computes the HMAC; its own `verify` reads the
wall clock, while the receiver judges a timestamp by the request's arrival time (and tests pin that
time), so the header checks around the library's signature are ours.

A configured secret is `whsec_<base64>` or the bare base64, padded or not (the reference pads it
before decoding). Anything else is refused by `secret_problem` at start-up: the reference library
would silently drop the letters outside the alphabet and verify against a key nobody configured.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cache

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook, hmac_data

PREFIX = "whsec_"
TOLERANCE_SECONDS = 300
VERSION = "v1"
BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class InvalidSignature(ValueError):
    """The signature headers are missing, malformed, stale or match nothing; the message says which."""


def secret_problem(secret: str) -> str | None:
    """Say why a configured secret cannot be decoded the way the reference library decodes it, or None."""
    text = secret.removeprefix(PREFIX)
    letters = text.rstrip("=")
    if not text:
        return "is empty after its whsec_ prefix"
    if not BASE64.fullmatch(text):
        return "must be whsec_<base64>: it holds characters outside the base64 alphabet (A-Z a-z 0-9 + /)"
    if len(letters) % 4 == 1:
        return "must be whsec_<base64>: its length is not that of any base64 text (one letter too many or few?)"
    return None


@cache
def _webhook(secret: str | bytes) -> Webhook:
    if isinstance(secret, str) and (problem := secret_problem(secret)):
        # Settings refuse such a secret at start-up; fail closed for any other caller.
        raise InvalidSignature(f"The secret {problem}.")
    try:
        return Webhook(secret)  # `whsec_` or bare, padded or unpadded base64, decoded as the reference does
    except (binascii.Error, EmptyWebhookSecretError):
        raise InvalidSignature("The secret does not decode.") from None


def sign(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the `webhook-signature` header value (`v1,<base64>`) of one message."""
    webhook = _webhook(secret)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        # The library signs text; a body that is not UTF-8 is signed as the bytes it is (the spec signs
        # the raw body), so such a body, signed, is answered 400 like any other non-JSON and not 401.
        return f"{VERSION},{base64.b64encode(_mac(secret, msg_id, timestamp, body)).decode('ascii')}"
    return webhook.sign(msg_id, datetime.fromtimestamp(timestamp, UTC), text)


def sign_each(secrets: Sequence[str | bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the `webhook-signature` header value signed with each secret, space-separated (`v1,<a> v1,<b>`): what
    Standard Webhooks sends while a secret rotates, so a receiver holding either one verifies."""
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)


def _mac(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    """Return the library's HMAC of "id.timestamp.body" with the decoded secret: the raw MAC a v1 signature holds."""
    return hmac_data(_webhook(secret)._whsecret, f"{msg_id}.{timestamp}.".encode() + body)


def verify(secret: str | bytes, headers: Mapping[str, str], body: bytes, now: float) -> None:
    """Raise InvalidSignature unless a v1 signature matches and the timestamp is within 5 minutes of now."""
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (msg_id and stamp and signatures):
        raise InvalidSignature("Missing signature headers.")
    timestamp = _unix_seconds(stamp)
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise InvalidSignature("The timestamp is too old or too new.")
    expected = _mac(secret, msg_id, timestamp, body)  # what sign() signs, without its text round trip and base64
    # Senders rotating secrets send several signatures; other versions (v1a, …) are skipped.
    for candidate in signatures.split(" "):
        if candidate.partition(",")[0] == VERSION and hmac.compare_digest(expected, _digest(candidate)):
            return
    raise InvalidSignature("Invalid signature.")


def _unix_seconds(text: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 12):
        raise InvalidSignature("Invalid timestamp.")
    return int(text)


def _digest(signature: str) -> bytes:
    """Return the raw MAC of a `v1,<base64>` signature, or b"" when it does not decode."""
    try:
        return base64.b64decode(signature.partition(",")[2].encode("ascii"))
    except (binascii.Error, ValueError):
        return b""

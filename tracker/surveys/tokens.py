"""Survey tokens: a survey id and its signature, safe in URLs and email local parts.

Tokens are lower-case base32 because some mail servers fold the local part of
`reply+<token>@domain` to lower case; they carry no personal data and expire with the survey
record they point to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence

SID_LENGTH = 20
SIG_LENGTH = 26
TOKEN = re.compile(rf"^([a-z2-7]{{{SID_LENGTH}}})-([a-z2-7]{{{SIG_LENGTH}}})$")


def derive_key(secret: str, purpose: str) -> bytes:
    """Derive a separate key per purpose from TRACKER_SECRET_KEY."""
    return hmac.new(secret.encode("utf-8"), f"tracker:{purpose}".encode(), hashlib.sha256).digest()


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def survey_id(tkey: str, solved_at_ms: int | str) -> str:
    """Name the survey for one solve of one ticket, the same on every retry."""
    return _b32(hashlib.sha256(f"{tkey}\x1f{solved_at_ms}".encode()).digest())[:SID_LENGTH]


def _signature(secret: str, sid: str) -> str:
    return _b32(hmac.new(derive_key(secret, "survey-token"), sid.encode(), hashlib.sha256).digest())[:SIG_LENGTH]


def make_token(secret: str, sid: str) -> str:
    """Sign a survey id into a token."""
    return f"{sid}-{_signature(secret, sid)}"


def read_token(secrets: str | Sequence[str], token: str) -> str | None:
    """Return the survey id of a genuine token, signed with the secret or any of the secrets (Settings.secret_keys:
    the key and the earlier ones still accepted), else None."""
    match = TOKEN.match(token.strip().lower()) if len(token) < 100 else None
    if not match:
        return None
    sid, signature = match.groups()
    keys = (secrets,) if isinstance(secrets, str) else secrets
    return sid if any(hmac.compare_digest(signature, _signature(key, sid)) for key in keys) else None

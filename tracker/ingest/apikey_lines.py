"""API keys as replay lines: export-log writes every key that works as it is stored, replay writes each back, so
every integration's and every lead's key works against the new install, with the same scopes.

A key is stored as the SHA-256 digest of the key (tracker.store.apikeys), never the key itself, and the digest is
not keyed with TRACKER_SECRET_KEY: `{"type": "apikey.recorded", "name": …, "digest": …, "scopes": […],
"created_at": …}` holds whatever secret either install runs with. A revoked key is gone, so it is not carried; a
name whose digest no longer resolves to it (a revoke cut short) works nowhere and is left out too. Replay writes
each key unless a replay carried it before, so replaying twice changes nothing and a key revoked in the new install
stays revoked however often the file is replayed again; a name or digest that names another key there is refused
with the line's number. Dashboard sessions are not carried: leads sign in again. Replay-only: a webhook carrying the
line is ignored, as survey.sent is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from marshmallow import fields, validate

from tracker.events import AwareDateTime, StrictSchema, iso_from_ms, to_epoch_ms
from tracker.store import Store
from tracker.store.apikeys import SCOPES, StoredKey

KEY = "apikey.recorded"
TYPES = (KEY,)
NAME_MAX = 1000


class ApiKeyLine(StrictSchema):
    type = fields.String(required=True, validate=validate.Equal(KEY))
    name = fields.String(required=True, validate=validate.Length(min=1, max=NAME_MAX))
    digest = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$", error="Must be a digest."))
    scopes = fields.List(fields.String(validate=validate.OneOf(SCOPES)), required=True,
                         validate=validate.Length(min=1, max=len(SCOPES)))
    created_at = AwareDateTime(required=True)


_SCHEMA = ApiKeyLine()


def key_from_line(data: dict[str, Any]) -> StoredKey:
    """Read an apikey.recorded line, or raise ValidationError."""
    loaded = _SCHEMA.load(data)
    return StoredKey(loaded["name"], loaded["digest"], tuple(dict.fromkeys(loaded["scopes"])),
                     to_epoch_ms(loaded["created_at"]) // 1000)


def key_line(key: StoredKey) -> dict[str, Any]:
    """Return the line key_from_line reads back to key."""
    return {"type": KEY, "name": key.name, "digest": key.digest, "scopes": list(key.scopes),
            "created_at": iso_from_ms(key.created_at * 1000)}


def key_lines(store: Store) -> Iterator[dict[str, Any]]:
    """Yield an apikey.recorded line per key that works, by name."""
    for key in store.stored_keys():
        yield key_line(key)

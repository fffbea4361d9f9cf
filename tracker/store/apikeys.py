"""Support leads' API keys: only their SHA-256 digests are stored."""

from __future__ import annotations

import hashlib
import json
import secrets
import time

from tracker.store import keys
from tracker.store.base import RedisBase

KEY_PREFIX = "trk_"
SCOPES = ("read", "admin")


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ApiKeys(RedisBase):
    """Create, list, revoke and check API keys."""

    def create_key(self, name: str, scopes: tuple[str, ...] = ("read", "admin")) -> str:
        """Create a key under a new name and return it; the key itself is never stored."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        meta = json.dumps({"digest": digest(key), "created_at": int(time.time()), "scopes": list(scopes)})
        if not self.redis.hsetnx(keys.API_KEYS, name, meta):
            raise KeyError(name)
        self.redis.set(keys.api_key_hash(digest(key)), name)
        return key

    def list_keys(self) -> list[dict[str, object]]:
        rows = []
        for name, meta in sorted(self.redis.hgetall(keys.API_KEYS).items()):
            data = json.loads(meta)
            rows.append({"name": name, "created_at": data["created_at"], "scopes": data["scopes"]})
        return rows

    def revoke_key(self, name: str) -> bool:
        meta = self.redis.hget(keys.API_KEYS, name)
        if meta is None:
            return False
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(keys.api_key_hash(json.loads(meta)["digest"]))
        pipe.hdel(keys.API_KEYS, name)
        pipe.execute()
        return True

    def check_key(self, key: str) -> tuple[str, list[str]] | None:
        """Return (name, scopes) for a valid key, else None."""
        if not key.startswith(KEY_PREFIX) or len(key) > 200:
            return None
        name = self.redis.get(keys.api_key_hash(digest(key)))
        if name is None:
            return None
        meta = self.redis.hget(keys.API_KEYS, name)
        return (name, json.loads(meta)["scopes"]) if meta else None

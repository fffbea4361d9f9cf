"""Support leads' API keys: only their SHA-256 digests are stored (not keyed with TRACKER_SECRET_KEY)."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from redis.client import Pipeline

from tracker.store import keys
from tracker.store.base import RedisBase

KEY_PREFIX = "trk_"
SCOPES = ("read", "admin")
KNOWN_MAX = 1000  # valid keys whose name and scopes a process remembers
_OWN_REPLIES = 2  # a counted check's own replies (_counted): the key's read and its rate counter's INCR


class KeyCheck(NamedTuple):
    """A valid key's name and scopes, and its requests in the current rate window (0 when not counted)."""

    name: str
    scopes: list[str]
    requests: int = 0
    left_ms: int = 0


class StoredKey(NamedTuple):
    """A key as stored: its name, its digest (never the key), its scopes and when it was created (unix seconds)."""

    name: str
    digest: str
    scopes: tuple[str, ...]
    created_at: int


class KeyClash(Exception):
    """A key carried from another install names a key of this one's: its name is another key's, or its digest
    resolves to another name."""


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _meta(digest_: str, created_at: int, scopes: tuple[str, ...] | list[str]) -> str:
    return json.dumps({"digest": digest_, "created_at": created_at, "scopes": list(scopes)})


class ApiKeys(RedisBase):
    """Create, list, revoke and check API keys."""

    def create_key(self, name: str, scopes: tuple[str, ...] = ("read", "admin")) -> str:
        """Create a key under a new name and return it; the key itself is never stored."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        meta = _meta(digest(key), int(time.time()), scopes)
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

    def stored_keys(self) -> list[StoredKey]:
        """Return every key that works, as stored, by name: a name whose digest no longer resolves to it (a revoke
        cut short, see revoke_key) works nowhere and is left out."""
        listed = [(name, json.loads(meta)) for name, meta in sorted(self.redis.hgetall(keys.API_KEYS).items())]
        pipe = self.redis.pipeline(transaction=False)
        for _, meta in listed:
            pipe.get(keys.api_key_hash(meta["digest"]))
        return [StoredKey(name, meta["digest"], tuple(meta["scopes"]), int(meta["created_at"]))
                for (name, meta), owner in zip(listed, pipe.execute(), strict=True) if owner == name]

    def restore_key(self, carried: StoredKey, dry_run: bool = False) -> bool:
        """Write a key carried from another install as it was stored there, unless a replay carried it before
        (revoked here since or not: it stays as it is); say whether it was (or, dry, would be) new. Raise KeyClash
        when its name or its digest names another key here.

        Its name, then its digest, then the mark that it was carried: each one key, each step safe to repeat, so a
        restore cut short is finished by the next replay (the name's meta there with the same digest)."""
        if self.redis.sismember(keys.API_KEYS_CARRIED, carried.digest):
            return False
        owner = self.redis.get(keys.api_key_hash(carried.digest))
        if owner is not None and owner != carried.name:
            raise KeyClash(f"this key is here already, named {owner!r}")
        new = not dry_run and bool(self.redis.hsetnx(
            keys.API_KEYS, carried.name, _meta(carried.digest, carried.created_at, carried.scopes)))
        if not new:
            held = self.redis.hget(keys.API_KEYS, carried.name)
            if held is not None and json.loads(held)["digest"] != carried.digest:
                raise KeyClash(f"another API key is named {carried.name!r} here: revoke it (tracker api-key revoke) "
                               "and replay again, or this one would not work here")
            if dry_run or held is None:  # held None: revoked between the two reads; its digest must not resolve
                return dry_run and held is None
        self.redis.set(keys.api_key_hash(carried.digest), carried.name, nx=True)
        self.redis.sadd(keys.API_KEYS_CARRIED, carried.digest)
        return new

    def revoke_key(self, name: str) -> bool:
        meta = self.redis.hget(keys.API_KEYS, name)
        if meta is None:
            return False
        # The key stops working first, then its name goes: two keys of two slots, so two steps, in this order;
        # a revoke cut short in between leaves a dead key still listed, which revoking again removes.
        self.redis.delete(keys.api_key_hash(json.loads(meta)["digest"]))
        self.redis.hdel(keys.API_KEYS, name)
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

    def admit_key(self, key: str, window_ms: int, now_ms: int) -> KeyCheck | None:
        """Check a key and count one request of it in its window_ms rate window (0: no counting); None when invalid."""
        return self.admit_key_and_read(key, window_ms, now_ms)[0]

    def admit_key_and_read(self, key: str, window_ms: int, now_ms: int,
                           reads: Callable[[Any], None] | None = None) -> tuple[KeyCheck | None, list[Any]]:
        """Check a key and count one request of it (as admit_key), and run reads, queued on the same pipeline
        (not a transaction: of any slots), in the same round trip; return (the check, the reads' replies).

        A key's name and scopes never change while its digest resolves, so a process remembers them and later
        checks cost one round trip: whether the digest still resolves, the count and the reads, pipelined
        together; a key not remembered costs one more, the digest looked up first. The reads' replies come back
        only with a valid key (for an invalid one they were read and are dropped: [] then); a read that failed
        raises only then.
        """
        if not key.startswith(KEY_PREFIX) or len(key) > 200:
            return None, []
        known: dict[str, tuple[str, list[str]]] = vars(self).setdefault("_known_keys", {})
        hashed = digest(key)
        if hashed in known:
            name, scopes = known[hashed]
            pipe = self.redis.pipeline(transaction=False)
            pipe.get(keys.api_key_hash(hashed))
            replies = self._counted(pipe, name, window_ms, now_ms, reads)
            if replies[0] == name:  # not revoked since
                return KeyCheck(name, scopes, *self._rate(replies, window_ms, now_ms)), self._read(replies, window_ms)
            del known[hashed]
        found = self.redis.get(keys.api_key_hash(hashed))
        if found is None:
            return None, []
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(keys.API_KEYS, found)
        replies = self._counted(pipe, found, window_ms, now_ms, reads)
        if not replies[0]:
            return None, []
        if len(known) >= KNOWN_MAX:
            known.clear()
        known[hashed] = (found, json.loads(replies[0])["scopes"])
        return KeyCheck(*known[hashed], *self._rate(replies, window_ms, now_ms)), self._read(replies, window_ms)

    def _counted(self, pipe: Pipeline, name: str, window_ms: int, now_ms: int,
                 reads: Callable[[Any], None] | None = None) -> list[Any]:
        """Run a pipeline of one read, adding one request of a key to its fixed rate window unless window_ms is 0,
        then the reads queued by reads; return the read's reply, the count's (when counted) and the reads' as
        they came (an error among the reads raised by _read, once the key is known valid).

        A window's counter is given its expiry by the first request of each process in that window (pipelined
        with the count), and by whoever makes it anew later (a count of 1: it was gone), so a request costs no
        PEXPIRE of its own and no counter outlives its window long.
        """
        if window_ms <= 0:
            if reads is not None:
                reads(pipe)
            replies = list(pipe.execute(raise_on_error=False))
            if isinstance(replies[0], Exception):
                raise replies[0]
            return replies
        counter = keys.rate_counter(name, now_ms // window_ms)
        timed: set[str] = vars(self).setdefault("_timed_counters", set())  # counters this process gave an expiry
        expire = counter not in timed
        pipe.incr(counter)
        if expire:
            pipe.pexpire(counter, window_ms * 2)
        if reads is not None:
            reads(pipe)
        replies = list(pipe.execute(raise_on_error=False))
        for reply in replies[:_OWN_REPLIES + (1 if expire else 0)]:
            if isinstance(reply, Exception):
                raise reply
        if expire:
            del replies[_OWN_REPLIES]  # PEXPIRE's
            if len(timed) >= KNOWN_MAX:
                timed.clear()
            timed.add(counter)
        elif int(replies[1]) == 1:  # the counter was gone (deleted, evicted) and this request made it anew
            self.redis.pexpire(counter, window_ms * 2)
        return replies

    @staticmethod
    def _read(replies: list[Any], window_ms: int) -> list[Any]:
        """Return the replies of the reads queued after a key's own commands, raising the first that failed."""
        read = replies[_OWN_REPLIES if window_ms > 0 else 1:]
        for reply in read:
            if isinstance(reply, Exception):
                raise reply
        return read

    @staticmethod
    def _rate(replies: list[Any], window_ms: int, now_ms: int) -> tuple[int, int]:
        """Return (requests counted in the window, ms until it ends) from a _counted pipeline's replies."""
        if window_ms <= 0:
            return 0, 0
        return int(replies[1]), (now_ms // window_ms + 1) * window_ms - now_ms

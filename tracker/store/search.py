"""Finding customers for the dashboard's search: by email prefix (CUSTOMERS, lex-ordered) and by name prefix (the
name index, NAME_INDEX: "<name lowercased>|<email>"). Every query is bounded (ZRANGEBYLEX with LIMIT)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tracker.store import keys
from tracker.store.base import RedisBase

NAME_MAX = 200  # characters of a name the index keeps
_TOP = b"\xff"  # above every UTF-8 byte sequence: the end of a prefix's range


def name_key(name: str | None) -> str:
    """Return how the index keeps a name: lowercased, spaces collapsed, no '|' (it ends the name), bounded."""
    return " ".join((name or "").replace("|", " ").lower().split())[:NAME_MAX]


def _prefix_range(prefix: str) -> tuple[bytes, bytes]:
    raw = prefix.encode("utf-8")
    return b"[" + raw, b"[" + raw + _TOP


def queue_index_name(base: RedisBase, client: Any, email: str, name: str | None) -> Any:
    """Index a customer under a name (None or '' takes them off), on the store's client or queued on a pipeline."""
    return base.script("index_name")(keys=[keys.NAME_INDEX, keys.NAME_INDEXED], args=[email, name_key(name)],
                                     client=client)


def index_profile_names(base: RedisBase, emails: Iterable[str]) -> None:
    """Index these customers under the names their profiles hold now (read in one round trip, written in one)."""
    chosen = sorted(set(emails))
    if not chosen:
        return
    read = base.redis.pipeline(transaction=False)
    for email in chosen:
        read.hget(keys.customer(email, "profile"), "name")
    names = read.execute()
    pipe = base.redis.pipeline(transaction=False)
    for email, name in zip(chosen, names, strict=True):
        queue_index_name(base, pipe, email, name)
    pipe.execute()


class Search(RedisBase):
    """Keep the name index and search customers by email or name prefix."""

    def index_name(self, email: str, name: str | None, client: object | None = None) -> None:
        """Index a customer under their current name (None or '' takes them off), replacing the entry they had."""
        queue_index_name(self, client, email, name)

    def index_profile_names(self, emails: Iterable[str]) -> None:
        """Index these customers under the names their profiles hold now."""
        index_profile_names(self, emails)

    def rebuild_name_index(self, batch: int = 500) -> int:
        """Index every customer under their profile's name, and take off entries of customers no longer known;
        return the customers with a name."""
        named = 0
        known: set[str] = set()
        for start in range(0, self.redis.zcard(keys.CUSTOMERS), batch):
            chunk = self.redis.zrange(keys.CUSTOMERS, start, start + batch - 1)
            known.update(chunk)
            self.index_profile_names(chunk)
        pipe = self.redis.pipeline(transaction=False)
        for email, _name in self.redis.hscan_iter(keys.NAME_INDEXED, count=batch):
            if email not in known:
                self.index_name(email, None, client=pipe)
            else:
                named += 1
        pipe.execute()
        return named

    def find_by_email(self, prefix: str, limit: int) -> list[str]:
        """Return up to limit customers whose email starts with prefix (lowercased), in email order."""
        low, high = _prefix_range(prefix.strip().lower())
        return list(self.redis.zrangebylex(keys.CUSTOMERS, low, high, start=0, num=limit))

    def find_by_name(self, prefix: str, limit: int) -> list[tuple[str, str]]:
        """Return up to limit (email, lowercased name) of customers whose name starts with prefix, by name."""
        wanted = name_key(prefix)
        if not wanted:
            return []
        low, high = _prefix_range(wanted)
        found = []
        for member in self.redis.zrangebylex(keys.NAME_INDEX, low, high, start=0, num=limit):
            name, _, email = member.partition("|")
            found.append((email, name))
        return found

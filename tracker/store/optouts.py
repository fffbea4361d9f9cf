"""Opt-outs kept by keyed hash of the address, so they outlive the erasure of the address itself."""

from __future__ import annotations

from tracker.model import OptOut
from tracker.store import keys
from tracker.store.base import RedisBase

KINDS = tuple(keys.OPT_OUTS)  # unsubscribed, suppressed


class OptOuts(RedisBase):
    """Keep, lift and read opt-outs by digest (the plain records live in the profile and the suppressed set)."""

    def keep_opt_out(self, kind: str, digest: str, at_ms: int) -> None:
        """Record an opt-out under the address's digest; the first time recorded stays."""
        self.redis.hsetnx(keys.OPT_OUTS[kind], digest, str(at_ms))

    def lift_opt_out(self, kind: str, digest: str) -> bool:
        return bool(self.redis.hdel(keys.OPT_OUTS[kind], digest))

    def opt_out(self, email: str, digest: str) -> OptOut:
        """Read whether an address opted out, from its plain records and from its digest, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(keys.customer(email, "profile"), "unsubscribed")
        pipe.hget(keys.OPT_OUTS["unsubscribed"], digest)
        pipe.sismember(keys.SUPPRESSED, email)
        pipe.hexists(keys.OPT_OUTS["suppressed"], digest)
        plain_at, kept_at, plain_suppressed, kept_suppressed = pipe.execute()
        at = plain_at or kept_at
        return OptOut(unsubscribed=bool(at), suppressed=bool(plain_suppressed or kept_suppressed),
                      unsubscribed_at_ms=int(at) if at and at.isdigit() else None)

    def kept_opt_outs(self, kind: str, digests: list[str]) -> tuple[int, int]:
        """Return how many digests of this kind are kept, and how many of the given ones are among them."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hlen(keys.OPT_OUTS[kind])
        for digest in digests:
            pipe.hexists(keys.OPT_OUTS[kind], digest)
        total, *present = pipe.execute()
        return int(total), sum(1 for found in present if found)

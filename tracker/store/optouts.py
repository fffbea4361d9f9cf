"""Opt-outs kept by keyed hash of the address, so they outlive the erasure of the address itself."""

from __future__ import annotations

from collections.abc import Sequence

from tracker.model import OptOut
from tracker.store import keys
from tracker.store.base import RedisBase

KINDS = tuple(keys.OPT_OUTS)  # unsubscribed, suppressed


class OptOuts(RedisBase):
    """Keep, lift and read opt-outs by digest (the plain records live in the profile and the suppressed set)."""

    def keep_opt_out(self, kind: str, digest: str, at_ms: int, earlier: Sequence[str] = ()) -> None:
        """Record an opt-out under the address's digest; the first time recorded stays, also one kept under the
        digest of an earlier secret key (earlier), which moves to this one (so an address is kept once)."""
        name = keys.OPT_OUTS[kind]
        moved = [value for value in self.redis.hmget(name, list(earlier)) if value is not None] if earlier else []
        self.redis.hsetnx(name, digest, moved[0] if moved else str(at_ms))
        if earlier:
            self.redis.hdel(name, *earlier)  # after the new one is written: a crash between loses nothing

    def lift_opt_out(self, kind: str, digests: Sequence[str]) -> bool:
        """Lift an opt-out kept under any of the address's digests; say whether one was kept."""
        return bool(self.redis.hdel(keys.OPT_OUTS[kind], *digests))

    def opt_out(self, email: str, digests: Sequence[str]) -> OptOut:
        """Read whether an address opted out, from its plain records and from its digests (the secret key's, then
        the earlier keys'), in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(keys.customer(email, "profile"), "unsubscribed")
        pipe.hmget(keys.OPT_OUTS["unsubscribed"], list(digests))
        pipe.sismember(keys.SUPPRESSED, email)
        pipe.hmget(keys.OPT_OUTS["suppressed"], list(digests))
        plain_at, kept_ats, plain_suppressed, kept_suppressed = pipe.execute()
        at = plain_at or next((value for value in kept_ats if value is not None), None)
        return OptOut(unsubscribed=bool(at), suppressed=bool(plain_suppressed) or any(
                          value is not None for value in kept_suppressed),
                      unsubscribed_at_ms=int(at) if at and at.isdigit() else None)

    def kept_opt_outs(self, kind: str, digests: list[Sequence[str]]) -> tuple[int, int]:
        """Return how many opt-outs of this kind are kept, and how many of the given addresses (each by its digests)
        are among them."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hlen(keys.OPT_OUTS[kind])
        for address in digests:
            pipe.hmget(keys.OPT_OUTS[kind], list(address))
        total, *present = pipe.execute()
        return int(total), sum(1 for found in present if any(value is not None for value in found))

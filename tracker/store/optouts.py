"""Opt-outs kept by keyed hash of the address, so they outlive the erasure of the address itself."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from tracker.model import OptOut
from tracker.store import keys
from tracker.store.base import RedisBase

KINDS = tuple(keys.OPT_OUTS)  # unsubscribed, suppressed


class OptOuts(RedisBase):
    """Keep, lift and read opt-outs by digest (the plain records live in the profile and the suppressed set), and
    carry both kinds of record over to a new install."""

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

    # What export-log carries to a new install, and replay writes back as it was (tracker.ingest.optout_lines).

    def unsubscribed_profiles(self, batch: int = 500) -> Iterator[tuple[str, str]]:
        """Yield (email, the profile's unsubscribed field) for every customer whose profile records an unsubscribe."""
        emails: list[str] = []
        for email, _ in self.redis.zscan_iter(keys.CUSTOMERS, count=batch):
            emails.append(email)
            if len(emails) >= batch:
                yield from self._unsubscribed_of(emails)
                emails = []
        yield from self._unsubscribed_of(emails)

    def _unsubscribed_of(self, emails: list[str]) -> Iterator[tuple[str, str]]:
        pipe = self.redis.pipeline(transaction=False)
        for email in emails:
            pipe.hget(keys.customer(email, "profile"), "unsubscribed")
        for email, at in zip(emails, pipe.execute() if emails else [], strict=True):
            if at:
                yield email, at

    def kept_opt_out_entries(self, kind: str, batch: int = 500) -> Iterator[tuple[str, str]]:
        """Yield (digest, first time) of every opt-out of this kind kept by hash."""
        yield from self.redis.hscan_iter(keys.OPT_OUTS[kind], count=batch)

    def restore_unsubscribe(self, email: str, at_ms: int, dry_run: bool = False) -> bool:
        """Record a plain unsubscribe unless the profile holds one; say whether it was (or, dry, would be) new."""
        if dry_run:
            return not self.redis.hexists(keys.customer(email, "profile"), "unsubscribed")
        return bool(self.redis.hsetnx(keys.customer(email, "profile"), "unsubscribed", str(at_ms)))

    def restore_suppression(self, email: str, dry_run: bool = False) -> bool:
        """Put an address on the plain suppression list; say whether it was (or, dry, would be) new."""
        if dry_run:
            return not self.redis.sismember(keys.SUPPRESSED, email)
        return bool(self.redis.sadd(keys.SUPPRESSED, email))

    def restore_kept_opt_out(self, kind: str, digest: str, at_ms: int, dry_run: bool = False) -> bool:
        """Keep an opt-out by digest unless it is kept; say whether it was (or, dry, would be) new."""
        if dry_run:
            return not self.redis.hexists(keys.OPT_OUTS[kind], digest)
        return bool(self.redis.hsetnx(keys.OPT_OUTS[kind], digest, str(at_ms)))

"""Unsubscribes and suppressions that outlive erasure: each is also kept as a keyed hash of the address.

The hash is an HMAC with a key derived from TRACKER_SECRET_KEY, so the stored value names no one and
cannot be reversed by hashing a list of guessed addresses without the secret. Erasure deletes the
plain address and keeps the hash; the send path checks both. Rotating the secret forgets the opt-outs
of customers already erased (the hash of their address changes), as the README says.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from tracker.config import ConfigError, Settings
from tracker.model import OptOut
from tracker.store import Store
from tracker.surveys.tokens import derive_key


@dataclass(frozen=True)
class SuppressionList:
    """The suppressed addresses still known in plain, and how many more are kept only by hash (erased)."""

    addresses: tuple[str, ...]
    erased: int


def require_secret(settings: Settings) -> Settings:
    """Return the settings if they hold the secret opt-outs are hashed with, else raise ConfigError."""
    if not settings.secret_key:  # a hash keyed with nothing would never match the real one again
        raise ConfigError("TRACKER_SECRET_KEY is required: opt-outs are kept as a hash keyed with it")
    return settings


def address_digests(settings: Settings, email: str) -> list[str]:
    """Return the keyed hashes an opt-out of this address may be kept under: with the secret key (where one is kept
    from now on), then with each earlier key still accepted (TRACKER_SECRET_KEY_PREVIOUS)."""
    address = email.strip().lower().encode("utf-8")
    return [hmac.new(derive_key(secret, "opt-out"), address, hashlib.sha256).hexdigest()
            for secret in require_secret(settings).secret_keys]


def opt_out(store: Store, settings: Settings, email: str) -> OptOut:
    """Read whether an address unsubscribed or is suppressed, erased or not."""
    email = email.strip().lower()
    return store.opt_out(email, address_digests(settings, email))


def _keep(store: Store, settings: Settings, kind: str, email: str, at_ms: int) -> None:
    digest, *earlier = address_digests(settings, email)
    store.keep_opt_out(kind, digest, at_ms, earlier)


def unsubscribe(store: Store, settings: Settings, email: str, at_ms: int) -> None:
    """Record the customer's unsubscribe, in their profile and by hash."""
    email = email.strip().lower()
    _keep(store, settings, "unsubscribed", email, at_ms)
    store.unsubscribe(email, at_ms)


def suppress(store: Store, settings: Settings, email: str, at_ms: int) -> None:
    """Put an address on the suppression list, in plain (for listing) and by hash (to outlive erasure)."""
    email = email.strip().lower()
    _keep(store, settings, "suppressed", email, at_ms)
    store.suppress(email)


def unsuppress(store: Store, settings: Settings, email: str) -> bool:
    """Take an address off the suppression list, erased or not; say whether it was on it."""
    email = email.strip().lower()
    lifted = store.lift_opt_out("suppressed", address_digests(settings, email))
    return store.unsuppress(email) or lifted


def suppression_list(store: Store, settings: Settings) -> SuppressionList:
    """List the suppressed addresses in plain, and count the erased ones kept only by hash."""
    addresses = store.suppressed()
    kept, listed = store.kept_opt_outs("suppressed", [address_digests(settings, a) for a in addresses])
    return SuppressionList(tuple(addresses), kept - listed)


def keep_through_erasure(store: Store, settings: Settings, email: str, state: OptOut) -> None:
    """Make sure the hashes hold every opt-out the plain records hold, before erasure deletes those."""
    if state.unsubscribed:
        _keep(store, settings, "unsubscribed", email, state.unsubscribed_at_ms or 0)
    if state.suppressed:
        _keep(store, settings, "suppressed", email, 0)

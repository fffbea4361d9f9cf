"""Unsubscribes and suppressions as replay lines: export-log writes every opt-out as it is stored, replay writes each
back, so nobody who opted out is mailed by the new install.

An opt-out is stored twice (tracker.surveys.optout): in plain (the profile's `unsubscribed` time, the suppressed
set) and as a keyed hash of the address (an HMAC under TRACKER_SECRET_KEY), which alone outlives erasure. Both are
carried as they are stored: `{"type": "optout.unsubscribed", "email": …, "at": …}`, `{"type":
"optout.suppressed", "email": …}`, and per hash `{"type": "optout.<kind>", "digest": …, "at": …, "keys": […]}`.
A hash holds only under the secret key it was made with, so the new install needs the exporting one's
TRACKER_SECRET_KEY (and TRACKER_SECRET_KEY_PREVIOUS): `keys` names the exporting install's keys by a fingerprint
(never the key), and a replay that holds a secret refuses a hash line naming a key it does not hold, rather than
keep an opt-out that would never match again. Replaying writes each record unless it is there (the first time
stays), so replaying twice changes nothing. Replay-only: a webhook carrying them is ignored, as survey.sent is.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from tracker.config import Settings
from tracker.events import AwareDateTime, StrictSchema, iso_from_ms, to_epoch_ms
from tracker.store import Store
from tracker.surveys.tokens import derive_key

UNSUBSCRIBED = "optout.unsubscribed"
SUPPRESSED = "optout.suppressed"
TYPES = (UNSUBSCRIBED, SUPPRESSED)
KIND = {UNSUBSCRIBED: "unsubscribed", SUPPRESSED: "suppressed"}  # type -> the store's kind (keys.OPT_OUTS)
FINGERPRINT = 16  # hex digits of a key's fingerprint
ADDRESS_MAX = 320


class Address(fields.String):
    """An email address as the store keeps it: folded to lower case, with an @ (as `tracker suppress` takes one)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip().lower()
        if "@" not in text or not 3 <= len(text) <= ADDRESS_MAX:
            raise ValidationError("Must be an email address.")
        return text


class KeyNotHeld(Exception):
    """A hash line was made under a secret key this install does not hold: kept, it would never match again."""


@dataclass(frozen=True)
class OptOutLine:
    """One stored opt-out: in plain (email) or by hash (digest, with the exporting install's key fingerprints)."""

    kind: str  # unsubscribed or suppressed
    email: str | None = None
    digest: str | None = None
    at_ms: int | None = None
    keys: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """Say what the line restores, as replay counts it."""
        return "kept by hash" if self.digest else self.kind


def key_fingerprints(settings: Settings) -> list[str]:
    """Name the secret keys opt-outs are hashed with here (TRACKER_SECRET_KEY, then the previous ones), none when
    no secret is set; a fingerprint tells whether two installs hold the same key, and nothing of the key."""
    if not settings.secret_key:
        return []
    return [derive_key(secret, "opt-out key fingerprint").hex()[:FINGERPRINT] for secret in settings.secret_keys]


class OptOutLineSchema(StrictSchema):
    type = fields.String(required=True, validate=validate.OneOf(TYPES))
    email = Address(load_default=None)
    digest = fields.String(load_default=None, validate=validate.Regexp(r"^[0-9a-f]{64}$", error="Must be a digest."))
    at = AwareDateTime(load_default=None)
    keys = fields.List(fields.String(validate=validate.Regexp(rf"^[0-9a-f]{{{FINGERPRINT}}}$",
                                                              error="Must be a key fingerprint.")),
                       load_default=list, validate=validate.Length(max=20))

    @validates_schema
    def one_address(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data.get("email") is None) == (data.get("digest") is None):
            raise ValidationError("Give either email or digest.", "email")
        if data.get("at") is None and (data.get("digest") or data.get("type") == UNSUBSCRIBED):
            raise ValidationError("Required for an unsubscribe and for an opt-out kept by hash.", "at")
        if data.get("keys") and not data.get("digest"):
            raise ValidationError("Only an opt-out kept by hash names keys.", "keys")


_SCHEMA = OptOutLineSchema()


def optout_from_line(data: dict[str, Any]) -> OptOutLine:
    """Read an opt-out line, or raise ValidationError."""
    loaded = _SCHEMA.load(data)
    return OptOutLine(KIND[loaded["type"]], email=loaded["email"], digest=loaded["digest"],
                      at_ms=None if loaded["at"] is None else to_epoch_ms(loaded["at"]), keys=tuple(loaded["keys"]))


def optout_line(optout: OptOutLine) -> dict[str, Any]:
    """Return the line optout_from_line reads back to optout."""
    line: dict[str, Any] = {"type": next(kind for kind, name in KIND.items() if name == optout.kind)}
    line |= {"email": optout.email} if optout.email else {"digest": optout.digest}
    if optout.at_ms is not None:
        line["at"] = iso_from_ms(optout.at_ms)
    if optout.keys:
        line["keys"] = list(optout.keys)
    return line


def stored_optouts(store: Store, fingerprints: Sequence[str]) -> Iterator[OptOutLine]:
    """Yield every opt-out as stored: the plain unsubscribes and suppressions, then every one kept by hash (each
    naming the keys it may have been made with)."""
    for email, at in store.unsubscribed_profiles():
        yield OptOutLine("unsubscribed", email=email, at_ms=_ms(at))
    for email in store.suppressed():
        yield OptOutLine("suppressed", email=email)
    for kind in KIND.values():
        for digest, at in store.kept_opt_out_entries(kind):
            yield OptOutLine(kind, digest=digest, at_ms=_ms(at), keys=tuple(fingerprints))


def _ms(stored: str) -> int:
    # What the store writes is epoch milliseconds; anything else still records the opt-out, at no time.
    return int(stored) if stored.isdigit() else 0


def restore_optout(store: Store, settings: Settings, optout: OptOutLine, dry_run: bool = False) -> bool:
    """Write the opt-out unless it is stored; say whether it was (or would be) new. A hash line naming a key this
    install does not hold raises KeyNotHeld (when the install holds a secret to compare with)."""
    if optout.digest:
        held = key_fingerprints(settings)
        if held and optout.keys and not set(optout.keys) <= set(held):
            raise KeyNotHeld("this opt-out is kept as a hash keyed with a TRACKER_SECRET_KEY this install does not "
                             "hold: set TRACKER_SECRET_KEY (and TRACKER_SECRET_KEY_PREVIOUS) to the exporting "
                             "install's keys and replay again, or it would never match its address")
        return store.restore_kept_opt_out(optout.kind, optout.digest, optout.at_ms or 0, dry_run)
    assert optout.email is not None
    if optout.kind == "unsubscribed":
        return store.restore_unsubscribe(optout.email, optout.at_ms or 0, dry_run)
    return store.restore_suppression(optout.email, dry_run)


def verified(settings: Settings, optout: OptOutLine) -> bool:
    """Say whether a hash line was checked to hold here (its keys compared with this install's)."""
    return not optout.digest or bool(optout.keys and key_fingerprints(settings))

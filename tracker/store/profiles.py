"""Customers' profiles as export-log reads them and replay writes them back: what only the profile (and the order
hashes) hold once the log entries that wrote it are trimmed (tracker.ingest.profile_lines)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tracker.store import keys
from tracker.store.base import RedisBase
from tracker.store.due import STATE_IDLE_MS, wall_ms
from tracker.store.records import ALIAS_FIELD, ORDER_FIELD
from tracker.store.risk import queue_place_risk
from tracker.store.search import queue_index_name
from tracker.store.state import ORDER_ALIAS_MS
from tracker.store.sums import has_own_fields


@dataclass(frozen=True)
class HeldOrder:
    """What an order's hash holds beside its summary: written back, the log's events of the order find it there and
    count once (a refund by its event id, a status by its time)."""

    created_at_ms: int | None = None
    status_at_ms: int | None = None
    status_event: str = ""
    refunds: dict[str, int] = field(default_factory=dict)  # refund event id -> amount (minor units)


@dataclass(frozen=True)
class CarriedOrder:
    """One of a customer's orders: the profile's summary of it (apply_customer.lua) and, when restoring it must meet
    the log's events of it, what its hash holds."""

    okey: str  # <source>:<order id>
    status: str
    total: int | None  # minor units; None while no event gave one
    refunded: int  # every refund, the base's included
    currency: str
    base: int = 0  # what a forgotten order had refunded before it came back
    held: HeldOrder | None = None
    alias_until_ms: int | None = None  # when the order's own alias (refunds naming only the order) expires

    def summary(self) -> str:
        """Return the profile's field value: 'status|total|refunded|currency[|base]'."""
        text = f"{self.status}|{'' if self.total is None else self.total}|{self.refunded}|{self.currency}"
        return f"{text}|{self.base}" if self.base else text


@dataclass(frozen=True)
class CarriedProfile:
    """What a customer's profile holds that neither the kept events nor the survey lines give back."""

    email: str
    name: str | None = None
    locale: str | None = None
    timezone: str | None = None
    organisation: str | None = None
    seen_at_ms: int | None = None
    first_seen_ms: int | None = None
    aliases: tuple[tuple[str, str], ...] = ()  # (source, id): the alias keys naming this customer
    orders: tuple[CarriedOrder, ...] = ()
    throttle: tuple[str, int] | None = None  # the survey holding their one-survey window, and when the window ends


@dataclass(frozen=True)
class StoredProfile:
    """A customer's profile hash as stored, with their order hashes and the aliases naming them."""

    email: str
    record: dict[str, str]
    orders: dict[str, dict[str, str]]  # okey -> its hash (empty once it expired)
    order_alias_ttl: dict[str, int]  # okey -> ms left of the order's alias naming this customer
    aliases: list[tuple[str, str]]  # (source, id) of the profile's aliases whose key names this customer
    throttle: tuple[str, int] | None = None  # the survey holding their one-survey window, and the ms left of it


class Profiles(RedisBase):
    """Read every customer's profile whole, and write one back as another install held it."""

    def iter_profiles(self, batch: int = 500) -> Iterator[StoredProfile]:
        """Yield every customer's profile with their order hashes and the aliases naming them, a batch of
        customers a few round trips."""
        emails: list[str] = []
        for email, _ in self.redis.zscan_iter(keys.CUSTOMERS, count=batch):
            emails.append(email)
            if len(emails) >= batch:
                yield from self._profiles_of(emails)
                emails = []
        yield from self._profiles_of(emails)

    def _profiles_of(self, emails: Sequence[str]) -> Iterator[StoredProfile]:
        if not emails:
            return
        pipe = self.redis.pipeline(transaction=False)
        for email in emails:
            pipe.hgetall(keys.customer(email, "profile"))
        records = [(email, record) for email, record in zip(emails, pipe.execute(), strict=True)
                   if has_own_fields(record)]
        pipe = self.redis.pipeline(transaction=False)
        asked: list[tuple[str, str, str]] = []  # (email, what, name)
        for email, record in records:
            pipe.get(keys.customer(email, "throttle"))
            pipe.pttl(keys.customer(email, "throttle"))
            asked.append((email, "throttle", ""))
            for name in record:
                if name.startswith(ORDER_FIELD):
                    okey = name[len(ORDER_FIELD):]
                    source, _, ident = okey.partition(":")
                    pipe.hgetall(keys.order(okey))
                    pipe.get(keys.alias(source, f"order:{ident}"))
                    pipe.pttl(keys.alias(source, f"order:{ident}"))
                    asked.append((email, "order", okey))
                elif name.startswith(ALIAS_FIELD) and ":" in name[len(ALIAS_FIELD):]:
                    pipe.get(keys.alias(*name[len(ALIAS_FIELD):].split(":", 1)))
                    asked.append((email, "alias", name[len(ALIAS_FIELD):]))
        replies = iter(pipe.execute() if asked else [])
        found: dict[str, StoredProfile] = {email: StoredProfile(email, record, {}, {}, []) for email, record in records}
        for email, what, name in asked:
            held = found[email]
            if what == "throttle":
                holder, left = next(replies), int(next(replies))
                if holder and left > 0:
                    found[email] = replace(held, throttle=(holder, left))
            elif what == "order":
                order, named, ttl = next(replies), next(replies), next(replies)
                held.orders[name] = order if order.get("customer") in (None, email) else {}
                if named == email:
                    held.order_alias_ttl[name] = int(ttl)
            elif next(replies) == email:
                source, _, ident = name.partition(":")
                held.aliases.append((source, ident))
        yield from found.values()

    def restore_profile(self, profile: CarriedProfile, dry_run: bool = False) -> bool:
        """Write back what a customer's profile held, merged with what is stored (the replayed log's events of their
        orders count once, whichever is applied first); say whether anything was (or, dry, would be) new.

        Each order goes through one script in its bucket's slot (restore_order.lua), then the profile through one
        in the customer's (restore_profile.lua), written from what the orders hold then; the aliases, the list of
        customers, the ranking by order value and the name index are single keys."""
        email = profile.email
        if dry_run:
            return self._would_restore(profile)
        now = wall_ms()
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(keys.CUSTOMERS, {email: 0})
        for source, ident in profile.aliases:
            pipe.set(keys.alias(source, ident), email)
        throttled = profile.throttle is not None and profile.throttle[1] > now
        if profile.throttle is not None and throttled:
            # The window a survey sent there opened goes on here; a survey this install sent since keeps its own.
            pipe.set(keys.customer(email, "throttle"), profile.throttle[0], pxat=profile.throttle[1], nx=True)
        for order in profile.orders:
            if order.alias_until_ms is not None and order.alias_until_ms > now:
                source, _, ident = order.okey.partition(":")
                pipe.set(keys.alias(source, f"order:{ident}"), email,
                         px=min(order.alias_until_ms - now, ORDER_ALIAS_MS))
        held = [order for order in profile.orders if order.held is not None]
        for order in held:
            assert order.held is not None
            refunds = [part for eid, amount in sorted(order.held.refunds.items()) for part in (eid, amount)]
            self.script("restore_order")(
                keys=[keys.order(order.okey)],
                args=[email, order.currency, "" if order.total is None else order.total,
                      _arg(order.held.created_at_ms), order.status, _arg(order.held.status_at_ms),
                      order.held.status_event, now, STATE_IDLE_MS, *refunds], client=pipe)
        replies = pipe.execute()
        window = bool(throttled and replies[1 + len(profile.aliases)])  # the window was carried now
        merged = dict(zip((order.okey for order in held), replies[len(replies) - len(held):], strict=True))
        fields: list[str] = []
        for order in profile.orders:
            if order.okey in merged:
                status, total, refunded, currency = merged[order.okey]
                value = f"{status}|{total}|{order.base + int(refunded or 0)}|{currency}"
                fields += [f"{ORDER_FIELD}{order.okey}", f"{value}|{order.base}" if order.base else value, "set"]
            else:
                fields += [f"{ORDER_FIELD}{order.okey}", order.summary(), "keep"]
        changed, value, main, name = self.script("restore_profile")(
            keys=[keys.customer(email, "profile")],
            args=[_arg(profile.seen_at_ms), profile.name or "", profile.locale or "", profile.timezone or "",
                  profile.organisation or "", _arg(profile.first_seen_ms), len(profile.aliases),
                  *(f"{source}:{ident}" for source, ident in profile.aliases), *fields])
        pipe = self.redis.pipeline(transaction=False)
        if main != "-":
            pipe.zadd(keys.RANK_VALUE, {email: int(value)})
            queue_place_risk(self, pipe, [email])
        if name:
            queue_index_name(self, pipe, email, name)
        pipe.execute()
        return int(changed) > 0 or window

    def _would_restore(self, profile: CarriedProfile) -> bool:
        """Say whether restoring the profile would write a field the stored profile lacks."""
        record: dict[str, Any] = self.redis.hgetall(keys.customer(profile.email, "profile"))
        wanted = [name for name, value in (("name", profile.name), ("locale", profile.locale),
                                           ("timezone", profile.timezone), ("organisation", profile.organisation))
                  if value]
        wanted += [f"{ALIAS_FIELD}{source}:{ident}" for source, ident in profile.aliases]
        wanted += [f"{ORDER_FIELD}{order.okey}" for order in profile.orders]
        if any(name not in record for name in wanted):
            return True
        return profile.throttle is not None and profile.throttle[1] > wall_ms() and \
            not self.redis.exists(keys.customer(profile.email, "throttle"))


def _arg(ms: int | None) -> str:
    return "" if ms is None else str(ms)

"""Customers' profiles as replay lines: export-log writes what a customer's profile holds that the kept events and
survey lines cannot give back once the log is trimmed (TRACKER_LOG_RETENTION_DAYS); replay writes it back.

One `customer.profile` line a customer: their name, locale, time zone and organisation, the time the newest event
named them (`seen_at`, which decides between this line and a replayed event, as between two events) and their first
time seen, their ids per source whose alias names them (so an event naming them only by id still finds them), their
orders as the profile sums them (status, total, refunded, currency, minor units), and the one-survey window a survey
sent to them holds (`throttle`: that survey and when the window ends), which goes on in the new install. An order
the log still has events of is met by them on replay: its line carries what the order's hash holds (`held`: the
refund event ids and amounts, the status's time and event), written back into the order (store.restore_profile), so
each of those events counts once, whether it is applied before the line or after; an order whose hash expired has
its held part made from the log's own events of it (their refunds, its newest status). Replaying twice changes
nothing.
Replay-only: a webhook carrying it is ignored, as it ignores survey.sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from marshmallow import ValidationError, fields, validate

from tracker.events import IDENT_MAX, TEXT, AwareDateTime, StrictSchema, iso_from_ms, to_epoch_ms
from tracker.ingest.optout_lines import Address
from tracker.model import Event
from tracker.store import Store, ticket_key
from tracker.store.profiles import CarriedOrder, CarriedProfile, HeldOrder, StoredProfile
from tracker.store.records import ORDER_FIELD
from tracker.store.state import ORDER_ALIAS_MS

PROFILE = "customer.profile"
TYPES = (PROFILE,)
STEPS = {"created": 0, "fulfilled": 1, "refunded": 2, "cancelled": 3}  # as apply_order.lua orders one instant
SOURCE = validate.Regexp(r"^[^:\s]{1,40}$", error="Must be a source name.")
IDENT = validate.Length(min=1, max=IDENT_MAX)
MINOR = validate.Range(min=0, max=10**14)


@dataclass
class LoggedOrder:
    """What the exported log says of one order: its newest status (at, step, event id, status) and its refunds."""

    newest: tuple[int, int, str, str] = (-1, -1, "", "")
    refunds: dict[str, int] = field(default_factory=dict)
    created: bool = False  # the log holds the event that placed it


@dataclass
class LoggedOrders:
    """The orders the exported log holds events of, by okey: their events will be replayed and applied again."""

    orders: dict[str, LoggedOrder] = field(default_factory=dict)
    customers: set[str] = field(default_factory=set)  # the addresses the log's ticket and order events name

    def add(self, event: Event) -> None:
        """Note a ticket or order event written to the export."""
        if event.customer.email:
            self.customers.add(event.customer.email)
        if event.order is None:
            return
        order = self.orders.setdefault(ticket_key(event.source, event.order.id), LoggedOrder())
        status = event.order.status or ""
        order.newest = max(order.newest, (event.at_ms, STEPS.get(status, 0), event.id, status))
        if status == "refunded":
            order.refunds[event.id] = _minor(event.order.total)
        order.created |= status == "created"


def _minor(total: str) -> int:
    return int((Decimal(total) * 100).to_integral_value())


class HeldSchema(StrictSchema):
    created_at = AwareDateTime(load_default=None)
    status_at = AwareDateTime(load_default=None)
    status_event = fields.String(load_default="", validate=validate.Length(max=IDENT_MAX))
    refunds = fields.Dict(keys=fields.String(validate=IDENT), values=fields.Integer(strict=True, validate=MINOR),
                          load_default=dict)


class OrderLineSchema(StrictSchema):
    source = fields.String(required=True, validate=SOURCE)
    id = fields.String(required=True, validate=IDENT)
    status = fields.String(required=True, validate=validate.Length(max=50))
    total = fields.Integer(strict=True, required=True, allow_none=True, validate=MINOR)
    refunded = fields.Integer(strict=True, load_default=0, validate=MINOR)
    currency = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{3}$|^$",
                                                                    error="Must be an ISO 4217 code."))
    base = fields.Integer(strict=True, load_default=0, validate=MINOR)
    held = fields.Nested(HeldSchema, load_default=None)
    alias_until = AwareDateTime(load_default=None)


class ThrottleSchema(StrictSchema):
    """The customer's one-survey window (TRACKER_SURVEY_THROTTLE_DAYS): the survey that opened it and when it ends."""

    survey = fields.String(required=True, validate=validate.Length(min=1, max=200))
    until = AwareDateTime(required=True)


class ProfileLine(StrictSchema):
    """A customer.profile line."""

    type = fields.String(required=True, validate=validate.Equal(PROFILE))
    email = Address(required=True)
    name = fields.String(load_default=None, validate=TEXT)
    locale = fields.String(load_default=None, validate=validate.Length(max=35))
    timezone = fields.String(load_default=None, validate=validate.Length(max=64))
    organisation = fields.String(load_default=None, validate=TEXT)
    seen_at = AwareDateTime(load_default=None)
    first_seen = AwareDateTime(load_default=None)
    aliases = fields.Dict(keys=fields.String(validate=SOURCE),
                          values=fields.List(fields.String(validate=IDENT), validate=validate.Length(max=1000)),
                          load_default=dict)
    orders = fields.List(fields.Nested(OrderLineSchema), load_default=list, validate=validate.Length(max=100_000))
    throttle = fields.Nested(ThrottleSchema, load_default=None)


_PROFILE = ProfileLine()


def _ms(moment: Any) -> int | None:
    return None if moment is None else to_epoch_ms(moment)


def profile_from_line(data: dict[str, Any]) -> CarriedProfile:
    """Read a customer.profile line, or raise ValidationError."""
    loaded = _PROFILE.load(data)
    orders = []
    for order in loaded["orders"]:
        held = order["held"]
        if order["base"] > order["refunded"]:
            raise ValidationError({"orders": ["An order's base is part of what it refunded."]})
        orders.append(CarriedOrder(
            okey=ticket_key(order["source"], order["id"]), status=order["status"], total=order["total"],
            refunded=order["refunded"], currency=order["currency"], base=order["base"],
            held=None if held is None else HeldOrder(_ms(held["created_at"]), _ms(held["status_at"]),
                                                     held["status_event"], dict(held["refunds"])),
            alias_until_ms=_ms(order["alias_until"])))
    return CarriedProfile(
        email=loaded["email"], name=loaded["name"], locale=loaded["locale"], timezone=loaded["timezone"],
        organisation=loaded["organisation"], seen_at_ms=_ms(loaded["seen_at"]), first_seen_ms=_ms(loaded["first_seen"]),
        aliases=tuple((source, ident) for source, idents in sorted(loaded["aliases"].items()) for ident in idents),
        orders=tuple(orders), throttle=None if (held := loaded["throttle"]) is None else (
            held["survey"], to_epoch_ms(held["until"])))


def profile_line(profile: CarriedProfile) -> dict[str, Any]:
    """Return the customer.profile line profile_from_line reads back to profile."""
    line: dict[str, Any] = {"type": PROFILE, "email": profile.email}
    line |= {name: value for name, value in (("name", profile.name), ("locale", profile.locale),
                                             ("timezone", profile.timezone), ("organisation", profile.organisation))
             if value}
    line |= {name: iso_from_ms(ms) for name, ms in (("seen_at", profile.seen_at_ms),
                                                     ("first_seen", profile.first_seen_ms)) if ms is not None}
    aliases: dict[str, list[str]] = {}
    for source, ident in profile.aliases:
        aliases.setdefault(source, []).append(ident)
    if aliases:
        line["aliases"] = aliases
    if profile.orders:
        line["orders"] = [_order_line(order) for order in profile.orders]
    if profile.throttle is not None:
        line["throttle"] = {"survey": profile.throttle[0], "until": iso_from_ms(profile.throttle[1])}
    return line


def _order_line(order: CarriedOrder) -> dict[str, Any]:
    source, _, ident = order.okey.partition(":")
    line: dict[str, Any] = {"source": source, "id": ident, "status": order.status, "total": order.total,
                            "refunded": order.refunded, "currency": order.currency}
    if order.base:
        line["base"] = order.base
    if order.held is not None:
        held = order.held
        line["held"] = {name: iso_from_ms(ms) for name, ms in (("created_at", held.created_at_ms),
                                                                ("status_at", held.status_at_ms)) if ms is not None}
        line["held"] |= {"status_event": held.status_event} if held.status_event else {}
        line["held"] |= {"refunds": held.refunds} if held.refunds else {}
    if order.alias_until_ms is not None:
        line["alias_until"] = iso_from_ms(order.alias_until_ms)
    return line


def profile_lines(store: Store, logged: LoggedOrders, now_ms: int) -> Iterator[tuple[dict[str, Any], bool]]:
    """Yield a customer.profile line per customer whose profile holds a name, locale, time zone, organisation, id or
    order, and whether it says what the log no longer does (a customer none of its events names, an order it does
    not hold the placing of); logged: the customers and orders the export's log lines hold events of."""
    for stored in store.iter_profiles():
        profile = carried_profile(stored, logged, now_ms)
        if profile.name or profile.locale or profile.timezone or profile.organisation or profile.aliases \
                or profile.orders or profile.throttle:
            beyond = profile.email not in logged.customers or not all(
                order.okey in logged.orders and logged.orders[order.okey].created for order in profile.orders)
            yield profile_line(profile), beyond


def carried_profile(stored: StoredProfile, logged: LoggedOrders, now_ms: int) -> CarriedProfile:
    """Describe what a stored profile carries over."""
    record = stored.record
    orders = tuple(_carried_order(stored, name[len(ORDER_FIELD):], value, logged, now_ms)
                   for name, value in sorted(record.items()) if name.startswith(ORDER_FIELD))
    return CarriedProfile(
        email=stored.email, name=record.get("name") or None, locale=record.get("locale") or None,
        timezone=record.get("timezone") or None, organisation=record.get("organisation") or None,
        seen_at_ms=_number(record.get("seen_at")), first_seen_ms=_number(record.get("first_seen")),
        aliases=tuple(sorted(stored.aliases)), orders=orders,
        throttle=None if stored.throttle is None else (stored.throttle[0], now_ms + stored.throttle[1]))


def _carried_order(stored: StoredProfile, okey: str, summary: str, logged: LoggedOrders, now_ms: int) -> CarriedOrder:
    status, total, refunded, currency, base = [*summary.split("|"), "", "", "", "", ""][:5]
    order = CarriedOrder(okey, status, _number(total), _number(refunded) or 0, currency, _number(base) or 0)
    ttl = stored.order_alias_ttl.get(okey)
    alias_until = None if ttl is None else now_ms + (ttl if ttl >= 0 else ORDER_ALIAS_MS)
    order = replace(order, alias_until_ms=alias_until)
    record = stored.orders.get(okey) or {}
    if record:  # its hash: its refunds by event id, its status's time and event
        held = HeldOrder(_number(record.get("created_at")), _number(record.get("status_at")),
                         record.get("status_eid", ""),
                         {name[len("refund:"):]: int(value) for name, value in sorted(record.items())
                          if name.startswith("refund:") and value.lstrip("-").isdigit()})
        return replace(order, held=held)
    seen = logged.orders.get(okey)
    if seen is None:  # no event of it left to replay: the summary alone is the order
        return order
    # Its hash expired while the log still holds events of it (a surveyed order is kept only until its survey can
    # no longer be answered): the summary counts them already, so the order is written back holding them.
    at, _, eid, newest = seen.newest
    refunds = seen.refunds if sum(seen.refunds.values()) <= order.refunded else {}
    held = HeldOrder(None, at if newest == status else None, eid if newest == status else "", dict(refunds))
    return replace(order, held=held, base=order.refunded - sum(refunds.values()))


def _number(value: str | None) -> int | None:
    return int(value) if value and value.lstrip("-").isdigit() else None

"""A customer's stored records read back whole and typed: what a data-access request is answered from."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from tracker.model import (
    Agent,
    Aggregate,
    Answer,
    Order,
    OrdersSummary,
    Profile,
    StatusChange,
    StoredOrder,
    StoredTicket,
    Survey,
    SurveyedTicket,
    Ticket,
)
from tracker.store import filed, keys
from tracker.store.base import RedisBase
from tracker.store.outbox import CARD_COPY, card_copy
from tracker.store.scores import answer_of
from tracker.store.sums import has_own_fields
from tracker.store.surveys import survey_from_hash

ALIAS_FIELD = "alias:"
# The profile's field per order: "o:<okey>" = "status|total|refunded|currency[|base]" (apply_customer.lua),
# kept after the order hash itself expired.
ORDER_FIELD = "o:"


class NewestAnswer(Protocol):
    """What a score card shows of the newest answer: an Answer has it, and so has the profile's copy."""

    @property
    def rating(self) -> int: ...
    @property
    def scale(self) -> str: ...
    @property
    def at_ms(self) -> int: ...
    @property
    def tkey(self) -> str | None: ...


class CardAnswer(NamedTuple):
    """The profile's copy of the newest answer, as the score card shows it."""

    rating: int
    scale: str
    at_ms: int
    tkey: str | None


# A score card's stored parts: the customer's name, their aggregate, their newest answer, their orders.
CardParts = tuple[str | None, Aggregate, NewestAnswer | None, OrdersSummary]


def _ms(record: Mapping[str, str], name: str) -> int | None:
    value = record.get(name, "")
    return int(value) if value.lstrip("-").isdigit() else None


def _money(minor: str | None) -> str:
    return f"{Decimal(int(minor or 0)) / 100:.2f}"


def _tags(raw: str | None) -> tuple[str, ...]:
    try:
        tags = json.loads(raw or "[]")
    except ValueError:
        return ()
    return tuple(str(tag) for tag in tags) if isinstance(tags, list) else ()


def ticket_from_hash(tkey: str, record: Mapping[str, str], history: list[tuple[str, float]]) -> StoredTicket:
    """Read a ticket hash and its status history (`<event id>|<status>` by time)."""
    involved = record.get("agent_involved", "")
    agent = (Agent(record["agent_id"], record.get("agent_name") or None, record.get("agent_email") or None)
             if record.get("agent_id") else None)
    ticket = Ticket(id=record.get("ticket_id") or tkey.partition(":")[2], status=record.get("status") or None,
                    subject=record.get("subject") or None, channel=record.get("channel") or None,
                    brand=record.get("brand") or None, team=record.get("team") or None, tags=_tags(record.get("tags")),
                    agent=agent, agent_involved=None if involved == "" else involved == "1",
                    resolved_by=record.get("resolved_by") or None)
    return StoredTicket(key=tkey, source=record.get("source") or tkey.partition(":")[0],
                        customer=record.get("customer", ""), ticket=ticket,
                        created_at_ms=_ms(record, "created_at"), status_at_ms=_ms(record, "status_at"),
                        solved_at_ms=_ms(record, "solved_at"), survey=record.get("survey_sid") or None,
                        history=tuple(StatusChange(entry.rpartition("|")[2], int(at)) for entry, at in history))


def surveyed_from_hash(member: str, record: Mapping[str, str]) -> SurveyedTicket | None:
    """Read the ticket (or order) hash a due member stands for; None when there is none.

    A solve time that is not a number raises ValueError: the sender parks such a record rather than skip it.
    """
    if not record:
        return None
    involved, solved_at = record.get("agent_involved", ""), record.get("solved_at", "")
    if solved_at and not solved_at.isdigit():
        raise ValueError(f"{member}: solved_at is not a time in ms: {solved_at!r}")
    source, _, ident = member.removeprefix(keys.ORDER_DUE).partition(":")
    return SurveyedTicket(
        key=member, customer=record.get("customer", ""), source=record.get("source") or source,
        id=record.get("ticket_id") or record.get("order_id") or ident, status=record.get("status") or None,
        solved_at_ms=int(solved_at) if solved_at else None, subject=record.get("subject") or None,
        agent_id=record.get("agent_id") or None, agent_name=record.get("agent_name") or None,
        team=record.get("team") or None, brand=record.get("brand") or None, channel=record.get("channel") or None,
        tags=_tags(record.get("tags")), agent_involved=None if involved == "" else involved == "1",
        resolved_by=record.get("resolved_by") or None, survey=record.get("survey_sid") or None)


def card_answer(copy: str) -> CardAnswer | None:
    """Read the profile's copy of the newest answer (outbox.card_copy); None when that answer left ("<sid>|")."""
    parts = copy.split("|", 4)
    if len(parts) < 5:
        return None
    _sid, at, rating, scale, tkey = parts
    return CardAnswer(int(rating), scale, int(at), tkey or None)


def profile_aliases(record: Mapping[str, str]) -> list[tuple[str, str]]:
    """Return every (source, id) alias key of a customer's profile hash, sorted: their ids per source
    (fields `alias:<source>:<id>`) and each order's own alias (source, `order:<id>`), named by its `o:` field."""
    found = {tuple(name[len(ALIAS_FIELD):].split(":", 1)) for name in record
             if name.startswith(ALIAS_FIELD) and ":" in name[len(ALIAS_FIELD):]}
    for okey in order_summaries(record):
        source, _, ident = okey.partition(":")
        found.add((source, f"order:{ident}"))
    return sorted((source, ident) for source, ident in found)


def profile_from_hash(email: str, record: Mapping[str, str]) -> Profile | None:
    """Read a customer's profile hash; None when there is none (only the sums and marks kept beside it: sums)."""
    if not has_own_fields(record):
        return None
    aliases = profile_aliases(record)
    return Profile(email=record.get("email") or email, name=record.get("name") or None,
                   locale=record.get("locale") or None, timezone=record.get("timezone") or None,
                   first_seen_ms=_ms(record, "first_seen"), last_seen_ms=_ms(record, "seen_at"),
                   aliases=tuple((source, ident) for source, ident in aliases),
                   last_response_sid=record.get("last_response_sid") or None,
                   last_response_at_ms=_ms(record, "last_response_at"),
                   unsubscribed_at_ms=_ms(record, "unsubscribed"), organisation=record.get("organisation") or None)


def order_summaries(profile: Mapping[str, str]) -> dict[str, tuple[str, str, str, str]]:
    """Read the profile's order fields: okey -> (status, total ('' when no event gave one), refunded, currency)."""
    found = {}
    for name, value in profile.items():
        if name.startswith(ORDER_FIELD):
            status, total, refunded, currency = [*value.split("|"), "", "", ""][:4]
            found[name[len(ORDER_FIELD):]] = (status, total, refunded, currency)
    return found


def order_rows(profile: Mapping[str, str]) -> list[tuple[str, str, str, str]]:
    """Return the (status, total, refunded, currency) rows orders_summary_of adds up, in order key order.

    An order whose total no event gave yet counts nothing (its total is taken as what was refunded).
    """
    return [(status, total or refunded, refunded, currency)
            for _okey, (status, total, refunded, currency) in sorted(order_summaries(profile).items())]


def live_totals(rows: Iterable[Sequence[Any]]) -> tuple[int, dict[str, int]]:
    """Count live orders and sum their value per currency, in minor units, from (status, total, refunded, currency)
    rows."""
    totals: dict[str, int] = {}
    count = 0
    for status, total, refunded, currency in rows:
        if status is None or status == "cancelled":
            continue
        count += 1
        totals[currency] = totals.get(currency, 0) + int(total or 0) - int(refunded or 0)
    return count, totals


def orders_summary_of(rows: Iterable[Sequence[Any]]) -> OrdersSummary:
    """Count live orders and sum their value per currency from (status, total, refunded, currency) rows."""
    count, totals = live_totals(rows)
    main = max(totals, key=lambda c: totals[c]) if totals else None
    return OrdersSummary(count=count, total=f"{Decimal(totals[main]) / 100:.2f}" if main else "0.00",
                         currency=main, totals={c: f"{Decimal(v) / 100:.2f}" for c, v in sorted(totals.items())})


def order_from_hash(okey: str, record: Mapping[str, str],
                    summary: tuple[str, str, str, str] | None = None) -> StoredOrder:
    """Read an order hash; its amounts and status from the customer's summary of it when given (which also
    counts refunds from before an expired order hash came back)."""
    if summary is not None:
        status, total, refunded, currency = summary
        record = {**record, "status": status, "total": total, "refunded": refunded, "currency": currency}
    source, _, ident = okey.partition(":")
    order = Order(id=record.get("order_id") or ident, total=_money(record.get("total")),
                  currency=record.get("currency", ""), status=record.get("status", ""))
    return StoredOrder(key=okey, source=record.get("source") or source,
                       customer=record.get("customer", ""), order=order, refunded=_money(record.get("refunded")),
                       created_at_ms=_ms(record, "created_at"), status_at_ms=_ms(record, "status_at"))


class Records(RedisBase):
    """Read everything stored about one customer as the domain's types."""

    def profile(self, email: str) -> Profile | None:
        """Return who a customer is to the tracker, or None for an address never seen."""
        return profile_from_hash(email, self.redis.hgetall(keys.customer(email, "profile")))

    if TYPE_CHECKING:  # the Store's other parts, which read answers wherever they are kept
        def response(self, sid: str) -> Answer | None: ...

        def timeline_details(self, survey_ids: Sequence[str], answer_ids: Sequence[str]
                             ) -> tuple[dict[str, Survey], dict[str, Answer]]: ...

    def card_parts(self, email: str) -> CardParts | None:
        """Read what a customer's score card shows, in one round trip (see queue_card_parts)."""
        pipe = self.redis.pipeline(transaction=False)
        self.queue_card_parts(pipe, email)
        return self.card_parts_from(email, pipe.execute())

    @staticmethod
    def queue_card_parts(pipe: Any, email: str) -> None:
        """Queue the reads of a customer's score card on a pipeline (two replies, for card_parts_from): their
        own keys, one hash tag; the profile holds their sums (tracker.store.sums), their orders' summary and a copy
        of their newest answer."""
        pipe.hgetall(keys.aggregate("customer", email))  # the profile
        pipe.hgetall(keys.daily("customer", email))

    def card_parts_from(self, email: str, replies: Sequence[Any]) -> CardParts | None:
        """Return a score card's parts from queue_card_parts' replies; None for a customer never seen.

        The newest answer comes from the profile's copy of it when that copy names the answer last_response_sid
        names; only a profile written before the copy existed costs a second round trip, for the answer itself.
        """
        record, daily = replies
        if not has_own_fields(record):  # no profile: a customer never seen (profile_from_hash)
            return None
        sid = record.get("last_response_sid")
        answer: NewestAnswer | None = None
        if sid:
            copy = record.get(CARD_COPY, "")
            answer = card_answer(copy) if copy.startswith(sid + "|") else self.response(sid)
        return (record.get("name") or None, Aggregate.from_hash(record, daily), answer,
                orders_summary_of(order_rows(record)))

    def order_totals(self, emails: Sequence[str]) -> list[tuple[int, dict[str, int]] | None]:
        """Return each customer's live orders counted and summed per currency in minor units (None for a customer
        never seen), from the profiles alone, in one round trip: what a sum over many customers needs (live_totals)."""
        return [None if found is None else live_totals(order_rows(found)) for found in self._profiles(emails)]

    def _profiles(self, emails: Sequence[str]) -> list[dict[str, str] | None]:
        pipe = self.redis.pipeline(transaction=False)
        for email in emails:
            pipe.hgetall(keys.customer(email, "profile"))
        return [record if has_own_fields(record) else None for record in (pipe.execute() if emails else [])]

    def rebuild_card_copies(self, batch: int = 500) -> int:
        """Set every profile's copy of the newest answer (CARD_COPY) from the answer its last_response_sid names,
        as the outbox steps keep it; return how many copies differed and were written.

        Safe beside live writes: a copy is written only while the profile still holds the sid and copy read
        before the answer was (set_card_copy.lua), and every step that changes either writes the copy itself.
        """
        written, start = 0, 0
        while True:
            emails = self.redis.zrange(keys.CUSTOMERS, start, start + batch - 1)
            start += len(emails)
            pipe = self.redis.pipeline(transaction=False)
            for email in emails:
                pipe.hmget(keys.customer(email, "profile"), "last_response_sid", CARD_COPY)
            held = [(email, sid, copy or "") for email, (sid, copy) in zip(emails, pipe.execute(), strict=True) if sid]
            _, answers = self.timeline_details([], [sid for _, sid, _ in held]) if held else ({}, {})
            pipe = self.redis.pipeline(transaction=False)
            for email, sid, copy in held:
                answer = answers.get(sid)
                wanted = (card_copy(sid, answer.at_ms, answer.rating, answer.scale, answer.tkey) if answer
                          else f"{sid}|")
                if wanted != copy:
                    self.script("set_card_copy")(keys=[keys.customer(email, "profile")], args=[sid, copy, wanted],
                                                 client=pipe)
            written += sum(int(done) for done in pipe.execute())
            if len(emails) < batch:
                return written

    def customer_ticket_keys(self, email: str) -> list[str]:
        """Return the keys of the customer's tickets that may still be stored (the index outlives them a little)."""
        return sorted(self.redis.zrange(keys.customer(email, "tickets"), 0, -1))

    def customer_tickets(self, email: str) -> list[StoredTicket]:
        """Return every ticket of the customer still stored, with its status history, in key order."""
        tkeys = self.customer_ticket_keys(email)
        pipe = self.redis.pipeline(transaction=False)
        for tkey in tkeys:
            pipe.hgetall(keys.ticket(tkey))
            pipe.zrange(keys.ticket_history(tkey), 0, -1, withscores=True)
        found = pipe.execute()
        return [ticket_from_hash(tkey, found[2 * i], found[2 * i + 1]) for i, tkey in enumerate(tkeys)
                if found[2 * i] and found[2 * i].get("customer") in (None, email)]

    def customer_orders(self, email: str) -> list[StoredOrder]:
        """Return every order of the customer, from its hash while stored, else from their summary of it."""
        summaries = order_summaries(self.redis.hgetall(keys.customer(email, "profile")))
        okeys = sorted(summaries)
        pipe = self.redis.pipeline(transaction=False)
        for okey in okeys:
            pipe.hgetall(keys.order(okey))
        return [order_from_hash(okey, record, summaries[okey])
                for okey, record in zip(okeys, pipe.execute(), strict=True)
                if record.get("customer") in (None, email)]

    def every_survey_and_answer(self, email: str) -> tuple[list[Survey], list[Answer]]:
        """Return all the customer's surveys and answers, oldest first (no page limit: this is for export)."""
        sids = sorted(set(self.redis.zrange(keys.customer(email, "surveys"), 0, -1))
                      | set(self.redis.zrange(keys.customer(email, "responses"), 0, -1)))
        found = filed.read_many(self, sids)  # the answer lives in the survey's hash
        surveys = [s for record in found if (s := survey_from_hash(record)) and s.customer == email]
        answers = [a for record in found if (a := answer_of(record)) and a.customer == email]
        surveys.sort(key=lambda s: (s.created_at_ms or s.closed_at_ms or 0, s.sid))
        answers.sort(key=lambda a: (a.at_ms, a.sid))
        return surveys, answers

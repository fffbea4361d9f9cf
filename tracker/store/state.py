"""Tickets, orders and customer profiles as the event log describes them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from tracker.model import Agent, Event, Order, OrdersSummary, Survey, SurveyedTicket, Ticket, TimelineEntry
from tracker.store import keys
from tracker.store.base import RedisBase
from tracker.store.records import ORDER_SUMMED, orders_summary_of, surveyed_from_hash
from tracker.store.surveys import survey_from_hash, survey_to_hash
from tracker.store.timeline import timeline_entry

TIMELINE_MAX = 1000  # newest entries kept per customer
HISTORY_MAX = 200  # status changes kept per ticket
TOO_OLD = 2  # what the apply scripts return for a solve (or fulfilment) too old to survey


def _timeline_entry(event: Event, **details: Any) -> str:
    """Describe an applied event for the customer's timeline; the same event gives the same entry."""
    entry = {"kind": event.type, "source": event.source, "event": event.id,
             **{k: v for k, v in details.items() if v}}
    return json.dumps(entry, sort_keys=True, separators=(",", ":"))


def _flag(value: bool | None) -> str:
    """Store a yes/no the source may leave out: '1', '0', or '' when it said nothing."""
    return "" if value is None else ("1" if value else "0")


def ticket_key(source: str, ticket_id: str) -> str:
    """Name a ticket across sources: `<source>:<id>`."""
    return f"{source}:{ticket_id}"


class State(RedisBase):
    """Apply normalised events to tickets, orders and profiles, and read them back."""

    def resolve_alias(self, source: str, customer_id: str) -> str | None:
        return self.redis.get(keys.alias(source, customer_id))

    def apply(self, events: list[tuple[Event, str]], survey_delay_ms: int,
              order_survey_delay_ms: int = -1) -> list[str | None]:
        """Apply (event, email) pairs in one round trip; return None or an error per event."""
        return [None if isinstance(r, int) else r for r in self.apply_events(events, survey_delay_ms,
                                                                               order_survey_delay_ms)]

    def apply_events(self, events: list[tuple[Event, str]], survey_delay_ms: int, order_survey_delay_ms: int = -1,
                     stale_before_ms: int | None = None) -> list[str | int]:
        """Apply (event, email) pairs in one round trip; return per event an error, or 1 (or TOO_OLD: a solve
        whose survey would be due before stale_before_ms, left unscheduled)."""
        pipe = self.redis.pipeline(transaction=False)
        stale = "" if stale_before_ms is None else stale_before_ms
        for event, email in events:
            if event.ticket is not None:
                self._apply_ticket(pipe, event, event.ticket, email, survey_delay_ms, stale)
            elif event.order is not None:
                self._apply_order(pipe, event, event.order, email, order_survey_delay_ms, stale)
            else:
                raise ValueError(f"event {event.id} has neither a ticket nor an order")
        results = pipe.execute(raise_on_error=False)
        return [str(r) if isinstance(r, Exception) else int(r) for r in results]

    def _customer_args(self, event: Event, email: str) -> tuple[str, str, str, str]:
        """Return the customer's name, locale, alias key and alias entry ('source:id' or '')."""
        customer = event.customer
        alias_key = keys.alias(event.source, customer.id) if customer.id else keys.customer(email, "profile")
        alias_entry = f"{event.source}:{customer.id}" if customer.id else ""
        return customer.name or "", customer.locale or "", alias_key, alias_entry

    def _apply_ticket(self, pipe: Any, event: Event, ticket: Ticket, email: str, delay_ms: int,
                      stale: int | str = "") -> None:
        tkey = ticket_key(event.source, ticket.id)
        agent = ticket.agent or Agent("")
        name, locale, alias_key, alias_entry = self._customer_args(event, email)
        entry = _timeline_entry(event, ticket=tkey, status=ticket.status, subject=ticket.subject)
        # The argument order is the one documented at the top of apply_ticket.lua.
        self.script("apply_ticket")(
            keys=[keys.ticket(tkey), keys.DUE, keys.customer(email, "profile"),
                  keys.customer(email, "tickets"), keys.CUSTOMERS, alias_key, keys.customer(email, "timeline"),
                  keys.ticket_history(tkey)],
            args=[tkey, event.at_ms, event.id, ticket.status or "", delay_ms, email, name, locale,
                  ticket.subject or "", ticket.channel or "", ticket.brand or "", ticket.team or "",
                  json.dumps(list(ticket.tags)), agent.id, agent.name or "", agent.email or "", event.source,
                  ticket.id, alias_entry, entry, TIMELINE_MAX, HISTORY_MAX, event.customer.timezone or "",
                  _flag(ticket.agent_involved), stale],
            client=pipe)

    def _apply_order(self, pipe: Any, event: Event, order: Order, email: str, order_survey_delay_ms: int,
                     stale: int | str = "") -> None:
        okey = ticket_key(event.source, order.id)
        minor = int((Decimal(order.total) * 100).to_integral_value())
        name, locale, alias_key, alias_entry = self._customer_args(event, email)
        entry = _timeline_entry(event, order=okey, status=order.status, total=order.total, currency=order.currency)
        # The argument order is the one documented at the top of apply_order.lua.
        self.script("apply_order")(
            keys=[keys.order(okey), keys.customer(email, "profile"), keys.customer(email, "orders"),
                  keys.CUSTOMERS, alias_key, keys.customer(email, "timeline"),
                  keys.alias(event.source, f"order:{order.id}"), keys.DUE],
            args=[okey, event.at_ms, event.id, order.status, minor, order.currency, email, name, locale,
                  event.source, order.id, alias_entry, entry, TIMELINE_MAX, order_survey_delay_ms,
                  event.customer.timezone or "", stale],
            client=pipe)

    def cached_people(self, source: str, person_ids: list[str]) -> dict[str, dict[str, str]]:
        """Return the cached vendor users among person_ids (missing ones are left out)."""
        pipe = self.redis.pipeline(transaction=False)
        for person_id in person_ids:
            pipe.hgetall(keys.person_cache(source, person_id))
        return {pid: found for pid, found in zip(person_ids, pipe.execute(), strict=True) if found}

    def cache_people(self, source: str, people: dict[str, dict[str, str]], ttl_s: int) -> None:
        """Cache vendor users looked up over the API for ttl_s seconds."""
        pipe = self.redis.pipeline(transaction=False)
        for person_id, fields in people.items():
            clean: dict[str | bytes, str] = {k: v for k, v in fields.items() if v}
            if clean:
                pipe.hset(keys.person_cache(source, person_id), mapping=clean)
                pipe.expire(keys.person_cache(source, person_id), ttl_s)
        pipe.execute()

    def timeline_events(self, email: str, limit: int) -> list[TimelineEntry]:
        """Return the newest applied events of a customer, newest first."""
        rows = self.redis.zrevrange(keys.customer(email, "timeline"), 0, limit - 1, withscores=True)
        return [timeline_entry(member, int(score)) for member, score in rows]

    def ticket(self, tkey: str) -> dict[str, str]:
        return self.redis.hgetall(keys.ticket(tkey))

    def restate_survey(self, survey: Survey) -> Survey:
        """Write a survey record that was never sent as given (an outcome it had goes); return it."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(keys.survey(survey.sid), "reason", "closed_at", "error", "next_attempt_at")
        pipe.hset(keys.survey(survey.sid), mapping=survey_to_hash(survey))  # type: ignore[arg-type]
        pipe.hgetall(keys.survey(survey.sid))
        written = survey_from_hash(pipe.execute()[-1])
        assert written is not None  # written just now, in the same transaction
        return written

    def iter_customer_surveys(self, batch: int = 500) -> Iterator[Survey]:
        """Yield every customer's surveys, each customer's oldest first."""
        for email, _ in self.redis.zscan_iter(keys.CUSTOMERS, count=batch):
            sids = self.redis.zrange(keys.customer(email, "surveys"), 0, -1)
            for start in range(0, len(sids), batch):
                pipe = self.redis.pipeline(transaction=False)
                for sid in sids[start:start + batch]:
                    pipe.hgetall(keys.survey(sid))
                yield from (survey for record in pipe.execute() if (survey := survey_from_hash(record)))

    def answer_event(self, sid: str) -> str:
        """Return the (time, id) mark of the newest survey.answered event counted for a survey, or ''."""
        return self.redis.hget(keys.survey(sid), "answer_event") or ""

    def mark_answer_event(self, sid: str, mark: str) -> None:
        """Remember the newest survey.answered event counted for a survey, so older ones change nothing."""
        self.redis.hset(keys.survey(sid), "answer_event", mark)

    def surveyed(self, due_member: str) -> SurveyedTicket | None:
        """Return the ticket or order a due entry stands for, or None when it is not stored."""
        return surveyed_from_hash(due_member, self.redis.hgetall(keys.surveyed(due_member)))

    def orders_summary(self, email: str) -> OrdersSummary:
        """Count live orders and sum their value per currency, refunds and cancellations taken off."""
        okeys = sorted(self.redis.smembers(keys.customer(email, "orders")))
        pipe = self.redis.pipeline(transaction=False)
        for okey in okeys:
            pipe.hmget(keys.order(okey), *ORDER_SUMMED)
        return orders_summary_of(pipe.execute())

"""Tickets, orders and customer profiles as the event log describes them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from tracker.model import Agent, Event, Order, OrdersSummary, Survey, SurveyedTicket, Ticket, TimelineEntry
from tracker.store import filed, keys, notice_data
from tracker.store.base import RedisBase
from tracker.store.due import DAY_MS, STATE_IDLE_MS, wall_ms
from tracker.store.notices import notice_call
from tracker.store.records import order_rows, orders_summary_of, surveyed_from_hash
from tracker.store.risk import queue_place_risk
from tracker.store.search import queue_index_name
from tracker.store.survey_codes import coded, coded_mapping, picked_from
from tracker.store.surveys import survey_from_hash, survey_to_hash, with_dimensions
from tracker.store.timeline import KINDS, UNIT, timeline_entry

PERSON_CACHE_TTL_S = 86400  # how long a vendor user looked up over the API is cached, at most

TIMELINE_MAX = 100  # newest entries kept per customer (a small sorted set stays compactly encoded)
TIMELINE_DAYS = 30  # default of TRACKER_LOG_RETENTION_DAYS: timeline entries older than this go
HISTORY_MAX = 200  # status changes kept per ticket
# How many of a customer's newest answers a forgotten ticket's first survey looks through for an earlier answer.
ANSWERS_LOOKED_AT = 200
TOO_OLD = 2  # what the apply scripts return for a solve (or fulfilment) too old to survey
# A ticket stays in its customer's index this long after its last event: longer than its state can live
# (STATE_IDLE_MS, or a survey's keep), so erasure and exports find every ticket still stored.
TICKET_INDEX_MS = STATE_IDLE_MS + 30 * DAY_MS
# An order's own alias (for refunds that name only the order) goes after a year without an event about it.
ORDER_ALIAS_MS = 365 * DAY_MS
# Timeline entries: the event type's short code (or the type itself), then its details, joined by UNIT.
KIND_CODES = {kind: code for code, kind in KINDS.items()}


def _clean(value: str | None) -> str:
    return (value or "").replace(UNIT, " ")


def _timeline_entry(event: Event, ref: str, status: str | None, *details: str | None) -> str:
    """Describe an applied event for the customer's timeline, compactly; the same event gives the same entry.

    `<code>␟<source>␟<event id>␟<ticket or order id>␟<status, or = when the type says it>␟<details...>`
    (timeline.timeline_entry reads it back).
    """
    said = "=" if status and event.type.rpartition(".")[2] == status else _clean(status)
    fields = [KIND_CODES.get(event.type, event.type), _clean(event.source), _clean(event.id), _clean(ref), said,
              *(_clean(d) for d in details)]
    while fields[-1] == "" and len(fields) > 5:
        fields.pop()
    return UNIT.join(fields)


def _flag(value: bool | None) -> str:
    """Store a yes/no the source may leave out: '1', '0', or '' when it said nothing."""
    return "" if value is None else ("1" if value else "0")


def ticket_key(source: str, ticket_id: str) -> str:
    """Name a ticket across sources: `<source>:<id>`."""
    return f"{source}:{ticket_id}"


@dataclass
class _Pending:
    """One event on its way through the apply rounds: the bucket step's reply, then the customer step's."""

    event: Event
    email: str
    result: str | int = 1
    reply: Any = None


def _opens(item: _Pending) -> bool:
    """Say whether an applied event is the first of a ticket that is not solved or closed: a new open ticket."""
    ticket = item.event.ticket
    return (ticket is not None and not isinstance(item.result, str) and len(item.reply) > 1
            and int(item.reply[1]) == 1 and (ticket.status or "") not in ("solved", "closed"))


def _fail_on(behind_each: list[list[_Pending]], replies: list[Any]) -> None:
    """Report a failed shared command as the error of every event behind it (re-applying them completes it)."""
    for behind, reply in zip(behind_each, replies, strict=True):
        if isinstance(reply, Exception):
            for item in behind:
                item.result = str(reply)


class State(RedisBase):
    """Apply normalised events to tickets, orders and profiles, and read them back.

    An event applies in steps, each in one slot: the ticket (order) bucket's script, then the customer's
    script with what that returned, then single-key commands (alias, CUSTOMERS, NAMES, RANK_VALUE and the at-risk
    ranking placed from it). Each step is idempotent and order-independent, so re-applying a batch after a crash
    ends in the same state.
    """

    def resolve_alias(self, source: str, customer_id: str) -> str | None:
        return self.redis.get(keys.alias(source, customer_id))

    def apply(self, events: list[tuple[Event, str]], survey_delay_ms: int,
              order_survey_delay_ms: int = -1) -> list[str | None]:
        """Apply (event, email) pairs; return None or an error per event."""
        return [None if isinstance(r, int) else r for r in self.apply_events(events, survey_delay_ms,
                                                                               order_survey_delay_ms)]

    def apply_events(self, events: list[tuple[Event, str]], survey_delay_ms: int, order_survey_delay_ms: int = -1,
                     stale_before_ms: int | None = None, timeline_days: int = TIMELINE_DAYS,
                     at_risk_score: float | None = None) -> list[str | int]:
        """Apply (event, email) pairs in two or three round trips; return per event an error, or 1 (or TOO_OLD:
        a solve whose survey would be due before stale_before_ms, left unscheduled).

        timeline_days is TRACKER_LOG_RETENTION_DAYS: how long the customer's timeline keeps an event.
        at_risk_score (TRACKER_AT_RISK_SCORE): a new open ticket of a customer whose score is below it emits
        ticket.at_risk (its state read in the customer round, the notices in one more round trip when there are any).
        """
        for event, _ in events:
            if event.ticket is None and event.order is None:
                raise ValueError(f"event {event.id} has neither a ticket nor an order")
        now = wall_ms()
        stale = "" if stale_before_ms is None else stale_before_ms
        pending = [_Pending(event, email) for event, email in events]
        # Round 1: each ticket's (order's) bucket, and the single keys that need nothing from it.
        pipe = self.redis.pipeline(transaction=False)
        for item in pending:
            if item.event.ticket is not None:
                self._ticket_step(pipe, item.event, item.event.ticket, item.email, survey_delay_ms, stale, now)
            else:
                assert item.event.order is not None
                self._order_step(pipe, item.event, item.event.order, item.email, order_survey_delay_ms, stale, now)
        singles = self._single_keys(pipe, pending)
        replies = pipe.execute(raise_on_error=False)
        for item, reply in zip(pending, replies, strict=False):
            if isinstance(reply, Exception):
                item.result = str(reply)
            else:
                item.result, item.reply = int(reply[0]), reply
        _fail_on(singles, replies[len(pending):])
        # Round 2: each customer's keys, in the batch's order.
        applied = [item for item in pending if item.reply is not None]
        pipe = self.redis.pipeline(transaction=False)
        for item in applied:
            self._customer_step(pipe, item, timeline_days * DAY_MS, now)
        opened = [item for item in applied if at_risk_score is not None and _opens(item)]
        for item in opened:  # the customer as the step left them (their name, their score)
            pipe.hmget(keys.aggregate("customer", item.email), "n", "weight", "weighted")
            pipe.hget(keys.customer(item.email, "profile"), "name")
        # The dashboard's name search: the names the named customers' profiles hold after their steps.
        named = sorted({item.email for item in applied if item.event.customer.name})
        for email in named:
            pipe.hget(keys.customer(email, "profile"), "name")
        replies = pipe.execute(raise_on_error=False) if applied else []
        names = replies[len(replies) - len(named):]
        values: dict[str, int] = {}
        valued: list[_Pending] = []
        for item, reply in zip(applied, replies[:len(applied)], strict=True):
            if isinstance(reply, Exception):
                item.result = str(reply)
            elif item.event.order is not None:
                values[item.email] = int(reply[0])  # the customer's last order event in the batch has the value
                valued.append(item)
        # Round 3: the order values of the batch's customers, in one command, and the notices of new tickets of
        # customers at risk, before the caller moves the log's cursor past them (applied again, they emit nothing).
        pipe = self.redis.pipeline(transaction=False)
        if values:
            pipe.zadd(keys.RANK_VALUE, values)
            queue_place_risk(self, pipe, list(values))  # one call per PLACE_BATCH customers
        placing = len(pipe)
        self._queue_tickets_at_risk(pipe, opened, replies[len(applied):len(replies) - len(named)],
                                    at_risk_score or 0.0)
        # Each named customer whose step went through indexed under the name their profile holds now.
        stepped = {item.email for item in applied if item.event.customer.name and not isinstance(item.result, str)}
        for email, name in zip(named, names, strict=True):
            if isinstance(name, Exception):
                raise name  # as below: read again when the batch is applied again
            if email in stepped:
                queue_index_name(self, pipe, email, name)
        if len(pipe):
            done = pipe.execute(raise_on_error=False)
            if values:
                _fail_on([valued] * placing, done[:placing])  # a placing that failed is applied again too
            for reply in done[placing:]:
                if isinstance(reply, Exception):
                    raise reply  # not the events' fault: the batch is applied again, its cursor unmoved
        return [item.result for item in pending]

    def _queue_tickets_at_risk(self, pipe: Any, opened: list[_Pending], read: list[Any], threshold: float) -> None:
        """Queue ticket.at_risk for each new open ticket whose customer is at risk."""
        for k, item in enumerate(opened):
            sums, name = read[2 * k], read[2 * k + 1]
            for reply in (sums, name):
                if isinstance(reply, Exception):
                    raise reply  # as above: read again when the batch is applied again
            if isinstance(item.result, str):
                continue  # its customer's step failed: the event is parked
            score = notice_data.score_of(*sums)
            if not notice_data.at_risk(score, threshold):
                continue
            ticket = item.event.ticket
            assert ticket is not None
            tkey = ticket_key(item.event.source, ticket.id)
            data = {"ticket": {"id": ticket.id, "source": item.event.source, "key": tkey,
                               "subject": ticket.subject or None},
                    "customer": {"email": item.email, "name": name or None, "score": score}}
            names, args = notice_call(f"{notice_data.TICKET_AT_RISK}:{tkey}", notice_data.TICKET_AT_RISK, item.email,
                                      item.event.at_ms, notice_data.as_json(data))
            # By its source: no SCRIPT EXISTS round trip before the pipeline.
            pipe.execute_command("EVAL", self.script("emit_notice").source, len(names), *names, *args)

    def _ticket_step(self, pipe: Any, event: Event, ticket: Ticket, email: str, delay_ms: int, stale: int | str,
                     now: int) -> None:
        tkey = ticket_key(event.source, ticket.id)
        agent = ticket.agent or Agent("")
        # The argument order is the one documented at the top of apply_ticket.lua.
        self.script("apply_ticket")(
            keys=[keys.ticket(tkey), keys.ticket_history(tkey), keys.ticket_due(keys.bucket_of(tkey))],
            args=[tkey, event.at_ms, event.id, ticket.status or "", delay_ms, email, ticket.subject or "",
                  ticket.channel or "", ticket.brand or "", ticket.team or "",
                  json.dumps(list(ticket.tags), separators=(",", ":")) if ticket.tags else "",
                  agent.id, agent.name or "", agent.email or "", _flag(ticket.agent_involved), HISTORY_MAX, stale,
                  now, STATE_IDLE_MS, ticket.resolved_by or ""],
            client=pipe)

    def _order_step(self, pipe: Any, event: Event, order: Order, email: str, delay_ms: int, stale: int | str,
                    now: int) -> None:
        okey = ticket_key(event.source, order.id)
        minor = int((Decimal(order.total) * 100).to_integral_value())
        # The argument order is the one documented at the top of apply_order.lua.
        self.script("apply_order")(
            keys=[keys.order(okey), keys.ticket_due(keys.bucket_of(okey))],
            args=[okey, event.at_ms, event.id, order.status, minor, order.currency, email, delay_ms, stale,
                  now, STATE_IDLE_MS],
            client=pipe)

    def _customer_step(self, pipe: Any, item: _Pending, timeline_ms: int, now: int) -> None:
        """Queue the customer's script of one applied event."""
        event, email = item.event, item.email
        customer = event.customer
        alias_entry = f"{event.source}:{customer.id}" if customer.id else ""
        common = [email, event.at_ms, customer.name or "", customer.locale or "", customer.timezone or "",
                  alias_entry]
        tail: list[str | int]
        if event.ticket is not None:
            ticket = event.ticket
            tkey = ticket_key(event.source, ticket.id)
            entry = _timeline_entry(event, ticket.id, ticket.status, ticket.subject)
            tail = ["ticket", tkey, TICKET_INDEX_MS]
        else:
            assert event.order is not None
            order = event.order
            tkey = ticket_key(event.source, order.id)
            entry = _timeline_entry(event, order.id, order.status, order.total, order.currency)
            _, status, total, refunded, currency, fresh = item.reply
            tail = ["order", tkey, TICKET_INDEX_MS, status, total, refunded, currency, fresh]
        # The argument order is the one documented at the top of apply_customer.lua.
        self.script("apply_customer")(
            keys=[keys.customer(email, "profile"), keys.customer(email, "tickets"), keys.customer(email, "timeline")],
            args=[*common, entry, TIMELINE_MAX, now, timeline_ms, *tail, customer.organisation or ""], client=pipe)

    def _single_keys(self, pipe: Any, items: list[_Pending]) -> list[list[_Pending]]:
        """Queue the single-key commands of a batch, each key once (all idempotent, each alone in its command):
        CUSTOMERS, the customers' and orders' aliases (the batch's last event naming one wins, as in order),
        and the agents' names (the newest event naming one wins; at one time, the greater name).

        Return the events behind each command."""
        aliases: dict[str, tuple[str, int | None]] = {}
        names: dict[str, tuple[int, str]] = {}
        behind: dict[str, list[_Pending]] = {}
        for item in items:
            event, email = item.event, item.email
            if event.customer.id:
                key = keys.alias(event.source, event.customer.id)
                aliases[key] = (email, None)
                behind.setdefault(key, []).append(item)
            if event.order is not None:
                key = keys.alias(event.source, f"order:{event.order.id}")
                aliases[key] = (email, ORDER_ALIAS_MS)
                behind.setdefault(key, []).append(item)
            agent = event.ticket.agent if event.ticket is not None else None
            if agent is not None and agent.id and agent.name:
                field = f"agent|{event.source}:{agent.id}"
                names[field] = max(names.get(field, (-1, "")), (event.at_ms, agent.name))
                behind.setdefault(field, []).append(item)
        behind_each: list[list[_Pending]] = []
        if items:
            pipe.zadd(keys.CUSTOMERS, {item.email: 0 for item in items})
            behind_each.append(items)
        for key, (email, ttl) in aliases.items():
            # As pipe.set(key, email, px=ttl) queues it, without redis-py's checks of its options (4 µs an event).
            pipe.execute_command("SET", key, email, *(("PX", ttl) if ttl is not None else ()))
            behind_each.append(behind[key])
        for field, (at_ms, name) in names.items():
            self.script("note_name")(keys=[keys.NAMES], args=[field, name, at_ms], client=pipe)
            behind_each.append(behind[field])
        return behind_each

    def cached_people(self, source: str, person_ids: list[str]) -> dict[str, dict[str, str]]:
        """Return the cached vendor users among person_ids (missing ones are left out)."""
        pipe = self.redis.pipeline(transaction=False)
        for person_id in person_ids:
            pipe.hgetall(keys.person_cache(source, person_id))
        return {pid: found for pid, found in zip(person_ids, pipe.execute(), strict=True) if found}

    def cache_people(self, source: str, people: dict[str, dict[str, str]], ttl_s: int = PERSON_CACHE_TTL_S) -> None:
        """Cache vendor users looked up over the API for ttl_s seconds (at most PERSON_CACHE_TTL_S), each named in
        its address's "people" set for as long, which an erasure reads instead of walking the keyspace."""
        ttl_s = min(ttl_s, PERSON_CACHE_TTL_S)
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(keys.PEOPLE_INDEXED, wall_ms(), nx=True)
        for person_id, fields in people.items():
            clean: dict[str | bytes, str] = {k: v for k, v in fields.items() if v}
            if clean:
                cached = keys.person_cache(source, person_id)
                email = clean.get("email", "").strip().lower()
                if email:  # indexed before it is cached
                    pipe.sadd(keys.customer(email, "people"), cached)
                    pipe.expire(keys.customer(email, "people"), ttl_s)
                pipe.hset(cached, mapping=clean)
                pipe.expire(cached, ttl_s)
        pipe.execute()

    def timeline_events(self, email: str, limit: int) -> list[TimelineEntry]:
        """Return the newest applied events of a customer, newest first."""
        rows = self.redis.zrevrange(keys.customer(email, "timeline"), 0, limit - 1, withscores=True)
        return [timeline_entry(member, int(score)) for member, score in rows]

    def ticket(self, tkey: str) -> dict[str, str]:
        return self.redis.hgetall(keys.ticket(tkey))

    def restate_survey(self, survey: Survey) -> Survey:
        """Write a survey record that was never sent as given (an outcome it had goes); return it.

        What it is counted by beside the ticket's details (tags, organisation, resolved_by) is copied from the
        ticket and the customer when the survey does not carry it, as create_survey does."""
        if not (survey.tags or survey.organisation or survey.resolved_by):
            survey = with_dimensions(self.redis, survey)
        pipe = self.redis.pipeline(transaction=True)
        self.script("thaw_survey")(keys=[keys.survey(survey.sid), keys.survey_filed(survey.sid)],
                                   client=pipe)  # written whole, nothing packed or filed beside
        pipe.hdel(keys.survey(survey.sid), "reason", "closed_at", "error", "next_attempt_at")
        pipe.hset(keys.survey(survey.sid), mapping=coded_mapping(survey_to_hash(survey)))  # type: ignore[arg-type]
        pipe.hgetall(keys.survey(survey.sid))
        written = survey_from_hash(pipe.execute()[-1])
        assert written is not None  # written just now, in the same transaction
        return written

    def iter_customer_surveys(self, batch: int = 500) -> Iterator[Survey]:
        """Yield every customer's surveys, each customer's oldest first."""
        for email, _ in self.redis.zscan_iter(keys.CUSTOMERS, count=batch):
            sids = self.redis.zrange(keys.customer(email, "surveys"), 0, -1)
            for start in range(0, len(sids), batch):
                found = filed.read_many(self, sids[start:start + batch])
                yield from (survey for record in found if (survey := survey_from_hash(record)))

    def answer_event(self, sid: str) -> str:
        """Return the (time, id) mark of the newest survey.answered event counted for a survey, or ''."""
        (mark,) = picked_from(["answer_event"], filed.read_many(self, [sid])[0])
        return mark or ""

    def mark_answer_event(self, sid: str, mark: str) -> None:
        """Remember the newest survey.answered event counted for a survey, so older ones change nothing (beside
        a filed or packed value, as any field written since, it wins)."""
        self.redis.hset(keys.survey(sid), coded("answer_event"), mark)

    def surveyed(self, due_member: str) -> SurveyedTicket | None:
        """Return the ticket or order a due entry stands for, or None when it is not stored.

        Its `survey` is the survey sent for it before; when the ticket was forgotten since (its state goes
        once that survey can no longer be answered), an answer its customer gave about it stands in, so an
        answered survey keeps blocking a new one.
        """
        ticket = surveyed_from_hash(due_member, self.redis.hgetall(keys.surveyed(due_member)))
        if ticket is not None and not ticket.survey and ticket.customer:
            answered = self.answered_about(ticket.customer, due_member)
            if answered:
                ticket = replace(ticket, survey=answered)
        return ticket

    def answered_about(self, email: str, due_member: str, newest: int = ANSWERS_LOOKED_AT) -> str | None:
        """Return the sid of the customer's newest answer about a ticket (order), among their newest answers."""
        sids = self.redis.zrevrange(keys.customer(email, "responses"), 0, newest - 1)
        if not sids:
            return None
        return next((sid for sid, record in zip(sids, filed.read_many(self, sids), strict=True)
                     if picked_from(["tkey"], record) == [due_member]), None)

    def orders_summary(self, email: str) -> OrdersSummary:
        """Count live orders and sum their value per currency, refunds and cancellations taken off."""
        return orders_summary_of(order_rows(self.redis.hgetall(keys.customer(email, "profile"))))

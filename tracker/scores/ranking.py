"""Ranked customers, and the score cards of agents, teams, sources, brands, channels, tags and organisations, as the
API and dashboard list them (each also split by who resolved the ticket: a kind "<kind>@human" or "<kind>@bot")."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import takewhile
from typing import Any, NamedTuple

from tracker.config import Settings
from tracker.model import ScoreCard
from tracker.scores.at_risk import rank_of as value_rank
from tracker.scores.at_risk import risk_page
from tracker.scores.cards import customer_card
from tracker.scores.maths import TREND_DAYS, score_card
from tracker.store import Store
from tracker.store.keys import RESOLVERS, split_kind
from tracker.store.risk import RISK_BY_SORT

SORTS = ("score", "value", "recent", "responses")
ORDERS = ("asc", "desc")
KINDS = ("agent", "team", "source", "brand", "channel", "tag", "organisation")
Rank = tuple[Any, ...]
LARGEST = 2 ** 63  # no value a ranked set holds (an order value in minor units, a time in ms, a count) is this big


class RankedQuery(NamedTuple):
    """What a page of ranked customers was asked for; a cursor carries it so it cannot serve another query."""

    sort: str
    order: str
    at_risk: bool | None


# Ranked customers ---------------------------------------------------------------------------------

def _encode_cursor(query: RankedQuery, rank: Rank, filters: str | None = None) -> str:
    """Write a cursor: the query, the filters' key when the list is narrowed by filters, and the rank it stopped at."""
    state = {"s": query.sort, "o": query.order, "r": query.at_risk, "k": list(rank),
             **({"f": filters} if filters else {})}
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, query: RankedQuery, like: Rank, filters: str | None = None) -> Rank:
    """Read a cursor back into the rank it stopped at; ValueError when it is not one of ours for this query (and
    these filters: tracker.scores.customer_filters.filters_key)."""
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("Not a valid cursor.") from exc
    if not isinstance(state, dict) or (state.get("s"), state.get("o"), state.get("r")) != query \
            or state.get("f") != filters:
        raise ValueError("The cursor belongs to another query.")
    rank = state.get("k")
    if not isinstance(rank, list) or len(rank) != len(like):
        raise ValueError("Not a valid cursor.")
    for got, want in zip(rank, like, strict=True):
        # A number no rank holds (past 2^63, NaN, infinite) is no cursor of ours either: refused, not computed with.
        numeric = isinstance(got, int | float) and not isinstance(got, bool) and abs(got) < LARGEST
        if (isinstance(want, str) and not isinstance(got, str)) or (not isinstance(want, str) and not numeric):
            raise ValueError("Not a valid cursor.")
    return tuple(rank)


def _below(score: float | None, threshold: float) -> bool:
    return score is not None and score < threshold


# The sorts whose ranked sets hold whole numbers ranked as they are (no rounding, no other tie-break than the
# email): a page of them is read in rank order exactly (_Walk._ranked_exact).
EXACT = ("responses", "recent")
# How far below or above a rounded value the raw values that round to it may lie.
_ROUNDING = 0.0051
BATCH = 200


class OverBudget(Exception):
    """A walk would look at more customers than reading the at-risk ones whole costs."""


class _Walk:
    """One page of ranked customers, read from the ranked sets in rank order, a batch at a time.

    Customers are in a ranked set when they have the value it ranks by (a score, an answer, an order of
    value); the others (no score, no answer, no order) follow in email order from t:customers. Ties of a
    ranked set's value are read whole and ordered like the rank tuple says, so a page costs the page,
    its ties and the at-risk customers skipped on the way, never the whole set of customers.
    """

    def __init__(self, store: Store, settings: Settings, sort: str, order: str, at_risk: bool | None,
                 after: Rank | None, limit: int, budget: int | None = None, ranked_set: str | None = None):
        self.store, self.sort, self.desc = store, sort, order == "desc"
        # The ranked set walked: the sort's own, or one holding only the customers a list keeps (every one of them
        # ranked in it: the customers without a value are not walked).
        self.ranked_set = ranked_set
        self.sign = -1 if self.desc else 1
        self.at_risk, self.threshold = at_risk, settings.at_risk_score
        self.after, self.limit = after, limit
        self.budget = budget  # how many customers it may look at before giving up (None: no limit)
        self.found: list[tuple[Rank, str]] = []
        self.known: dict[str, dict[str, float | None]] = {}  # ranked set -> customer -> value, read once

    def looked_at(self, count: int) -> None:
        """Count customers read from a ranked set or the list of customers; OverBudget once past the budget."""
        if self.budget is not None:
            self.budget -= count
            if self.budget < 0:
                raise OverBudget

    def fetch(self, sorts: list[str], emails: list[str]) -> None:
        """Read the customers' values in these ranked sets, all in one round trip."""
        wanted = [sort for sort in dict.fromkeys(sorts) if any(e not in self.known.get(sort, {}) for e in emails)]
        for sort, values in zip(wanted, self.store.rank_lookup(wanted, emails), strict=True):
            self.known.setdefault(sort, {}).update(zip(emails, values, strict=True))

    def values(self, sort: str, emails: list[str]) -> list[float | None]:
        """Return the customers' values in a ranked set, reading only those not read before."""
        self.fetch([sort], emails)
        known = self.known[sort] if emails else {}
        return [known[email] for email in emails]

    def needs(self, *sorts: str) -> list[str]:
        """Name the ranked sets a batch of customers is looked up in: these, and the score for the at-risk filter."""
        return [*sorts, *(["score"] if self.at_risk is not None else [])]

    def full(self) -> bool:
        return len(self.found) > self.limit

    def passing(self, emails: list[str]) -> list[str]:
        """Return the customers that pass the at-risk filter, in their order."""
        if self.at_risk is None or not emails:
            return emails
        return [email for email, score in zip(emails, self.values("score", emails), strict=True)
                if _below(None if score is None else round(score, 2), self.threshold) is self.at_risk]

    def keep(self, rows: list[tuple[Rank, str]]) -> None:
        """Keep the rows past the cursor (run sorts what was kept)."""
        self.found.extend(row for row in rows if self.after is None or row[0] > self.after)

    def offer(self, rows: list[tuple[Rank, str]]) -> None:
        """Keep the rows past the cursor that pass the at-risk filter."""
        chosen = set(self.passing([email for _, email in rows]))
        self.keep([row for row in rows if row[1] in chosen])

    def primary(self, value: float) -> float:
        return round(value, 2) if self.sort == "score" else value

    def rank(self, email: str, value: float | None, unhappy: float | None = None) -> Rank:
        if self.sort == "value":
            return value_rank(email, value or 0, unhappy, self.sign)
        if self.sort == "responses":
            return (0, self.sign * int(value or 0), email)
        if self.sort == "score":
            return (int(value is None), self.sign * (round(value, 2) if value is not None else 0.0), email)
        return (int(value is None), self.sign * int(value or 0), email)

    def _ranked_exact(self) -> None:
        """Walk a ranked set of whole numbers (answers, times) in rank order exactly, a batch at a time: by value, ties
        by email, which is how Redis keeps equal scores (by their bytes, and UTF-8 orders as code points do). So a page
        reads the page: never the rest of a tie after it, nor the part of one before the cursor (unless the cursor's
        customer has moved since)."""
        for rows in self._exact_batches():
            self.looked_at(len(rows))
            kept = [(email, value) for email, value in rows if value > 0]
            self.fetch(self.needs(), [email for email, _ in kept])
            self._settle(kept)
            if self.full():
                return

    def _exact_batches(self) -> Iterator[list[tuple[str, float]]]:
        """Yield the ranked set's rows after the cursor in rank order. Ascending, that is the set's own order.
        Descending, the values come highest first, a batch at a time; the ties a batch holds whole are put in email
        order, and the tie of its last value (which may go on past it) is read in the set's own order instead, from
        its first member (or the cursor's), for as long as the page needs."""
        walked = self.ranked_set or self.sort
        cursor: tuple[float, str] | None = None
        if self.after is not None and self.after[0] == 0 and self.after[1] != 0:
            cursor = (float(self.sign * self.after[1]), str(self.after[-1]))
        if not self.desc:
            start = 0
            if cursor is not None:
                first, _end, index = self.store.rank_tie(walked, *cursor)
                start = first if index is None else index + 1
            yield from self._forward(walked, start, None)
            return
        bound = "+inf"
        if cursor is not None:
            first, end, index = self.store.rank_tie(walked, *cursor)
            yield from self._forward(walked, first if index is None else index + 1, end)
            bound = f"({cursor[0]!r}"
        while True:
            rows = self.store.rank_below_bound(walked, bound, BATCH)
            last = rows[-1][1] if rows else None
            whole = rows if len(rows) < BATCH else [row for row in rows if row[1] != last]
            if whole:
                yield sorted(whole, key=lambda row: (-row[1], row[0]))
            if len(rows) < BATCH or last is None:
                return
            first, end, _ = self.store.rank_tie(walked, last)
            yield from self._forward(walked, first, end)
            bound = f"({last!r}"

    def _forward(self, walked: str, start: int, end: int | None) -> Iterator[list[tuple[str, float]]]:
        """Yield a ranked set's rows in its own order from index start to end (None: its last), a batch at a time."""
        while end is None or start < end:
            wanted = BATCH if end is None else min(BATCH, end - start)
            rows = self.store.rank_slice(walked, start, wanted, False)
            if rows:
                yield rows
            if len(rows) < wanted:
                return
            start += len(rows)

    def ranked(self) -> None:
        """Walk the ranked set (values above 0 for counts and order values) from where the cursor points.

        A slice at a time: every row of it is offered, then once the page is full only the rest of the ties of
        the slice's last value are read (they may rank before rows already found). Rows offered beyond the
        page rank after it and change neither the page nor whether more follow.
        """
        if self.sort in EXACT:
            self._ranked_exact()
            return
        positive = self.sort in ("value", "responses")
        walked = self.ranked_set or self.sort
        start = 0
        if self.after is not None and self.after[0] == 0 and not (positive and self.after[1] == 0):
            value = self.sign * self.after[1]
            if self.desc:
                start = self.store.rank_count(walked, value + _ROUNDING, "+inf")
            else:
                start = self.store.rank_count(walked, "-inf", value - _ROUNDING)
        if self.at_risk is True and self.sort == "score" and self.desc:
            # Scores from the threshold up (rounded or not) are not at risk: start below them.
            start = max(start, self.store.rank_count("score", self.threshold, "+inf"))
        ties: float | None = None  # once the page is full, the value whose ties are still read
        while True:
            rows = self.store.rank_slice(walked, start, BATCH, self.desc)
            start += len(rows)
            self.looked_at(len(rows))
            kept = [(email, value) for email, value in rows if not (positive and value <= 0)]
            if ties is not None:
                kept = list(takewhile(partial(self.tied, ties), kept))
            self.fetch(self.needs(*(["unhappy"] if self.sort == "value" else [])), [email for email, _ in kept])
            self._settle(kept)
            if len(rows) < BATCH or (ties is not None and len(kept) < len(rows)):
                return
            if ties is None and self.full():
                ties = self.primary(rows[-1][1])
    def tied(self, value: float, row: tuple[str, float]) -> bool:
        return self.primary(row[1]) == value

    def _settle(self, rows: list[tuple[str, float]]) -> None:
        """Keep the rows of the ranked set that pass the at-risk filter and the cursor, ranked."""
        if self.at_risk is not None:
            chosen = set(self.passing([email for email, _ in rows]))
            rows = [row for row in rows if row[0] in chosen]
        unhappy: list[float | None] = [None] * len(rows)
        if self.sort == "value":
            unhappy = self.values("unhappy", [email for email, _ in rows])
        self.keep([(self.rank(email, value, bad), email) for (email, value), bad in zip(rows, unhappy, strict=True)])

    def unranked(self) -> None:
        """Walk the customers without a value, in rank order: for order values the recently unhappy first.

        Only while some are left to find: how many customers have no value is counted first (every customer less
        those ranked), so a walk ends with the last of them, and one that has none to find reads nothing."""
        positive = self.sort in ("value", "responses")
        missing = self.store.customers_without(self.sort, positive)
        if missing == 0:
            return
        if self.sort == "value" and not (self.after is not None and self.after[:3] == (0, 0, 1)):
            self._unhappy_without_value()
        after_email = None
        if self.after is not None and self.after[:-1] == self.rank("", 0 if positive else None)[:-1]:
            after_email = str(self.after[-1])
        left = missing if after_email is None else None  # from the first customer on, the walk sees every one
        while not self.full():
            emails = self.store.customers_after(after_email, BATCH)
            if not emails:
                return
            after_email = emails[-1]
            self.looked_at(len(emails))
            self.fetch(self.needs(self.sort, *(["unhappy"] if self.sort == "value" else [])), emails)
            values = self.values(self.sort, emails)
            unranked = [e for e, v in zip(emails, values, strict=True) if v is None or (positive and v <= 0)]
            if left is not None:
                left -= len(unranked)
            if self.sort == "value":
                unhappy = self.values("unhappy", unranked)
                unranked = [e for e, bad in zip(unranked, unhappy, strict=True) if bad is None]
            self.offer([(self.rank(email, 0 if positive else None), email) for email in unranked])
            if len(emails) < BATCH or (left is not None and left <= 0):
                return

    def _unhappy_without_value(self) -> None:
        """Customers without orders of value who were recently unhappy, newest unhappiness first."""
        start = 0
        if self.after is not None and self.after[:3] == (0, 0, 0):
            start = self.store.rank_count("unhappy", -self.after[3] + 1, "+inf")
        while not self.full():
            rows = self.store.rank_slice("unhappy", start, BATCH, True)
            start += len(rows)
            self.looked_at(len(rows))
            self.fetch(self.needs("value"), [email for email, _ in rows])
            values = self.values("value", [email for email, _ in rows])
            self.offer([(self.rank(email, 0, bad), email) for (email, bad), value in zip(rows, values, strict=True)
                        if value is None or value <= 0])
            if len(rows) < BATCH:
                return

    def _cursor_unranked(self) -> bool:
        """Say whether the cursor stopped among the customers without a value."""
        assert self.after is not None
        return self.after[0] == 1 if self.sort in ("score", "recent") else self.after[1] == 0

    def run(self) -> list[tuple[Rank, str]]:
        """Walk the two parts in the order the ranks put them: zeros first when ascending by count or value.

        The part wholly before the cursor is not read at all.
        """
        zeros_first = not self.desc and self.sort in ("value", "responses")
        parts = [self.unranked, self.ranked] if zeros_first else [self.ranked, self.unranked]
        if self.after is not None and self._cursor_unranked() != zeros_first:
            parts = parts[1:]
        if (self.at_risk is True and self.sort == "score") or self.ranked_set is not None:
            parts = [part for part in parts if part != self.unranked]  # no score: not at risk; or none to walk
        for part in parts:
            if not self.full():
                part()
        return sorted(self.found)


def _at_risk_walk(store: Store, settings: Settings, sort: str, order: str, after: Rank | None,
                  limit: int) -> list[tuple[Rank, str]]:
    """Rank a page of at-risk customers: by value, by newest answer or by answers from the at-risk sets when they are
    filled for this threshold (the page and its ties; by score, the walk of the score's ranked set below starts at
    the at-risk ones). Otherwise the cheaper way: walk the ranked set keeping the at-risk ones, which costs the page
    divided by the share at risk, unless that walk looks at more customers than there are at risk; then read those
    whole instead. Either way a page costs at most about twice the cheaper of the two."""
    if sort == "value" and (page := risk_page(store, settings.at_risk_score, order, after, limit)) is not None:
        return page
    if sort in RISK_BY_SORT and store.risk_ranking_ready(settings.at_risk_score):
        # The at-risk customers by this order, each with an answer (no one without a value to walk): the page.
        return _Walk(store, settings, sort, order, None, after, limit, ranked_set=RISK_BY_SORT[sort]).run()
    at_most = store.rank_count("score", "-inf", f"({settings.at_risk_score + 0.01!r}")
    if at_most <= BATCH:  # fewer than one step of a walk reads
        return _at_risk_page(store, settings, sort, order, after, limit)
    try:
        return _Walk(store, settings, sort, order, True, after, limit, budget=at_most).run()
    except OverBudget:
        return _at_risk_page(store, settings, sort, order, after, limit)


def _at_risk_page(store: Store, settings: Settings, sort: str, order: str, after: Rank | None,
                  limit: int) -> list[tuple[Rank, str]]:
    """Rank the at-risk customers, read whole from the score ranking: a page costs the at-risk customers."""
    walk = _Walk(store, settings, sort, order, None, after, limit)
    at_risk = [(email, round(score, 2)) for email, score in store.rank_below("score", settings.at_risk_score + 0.01)
               if round(score, 2) < settings.at_risk_score]
    emails = [email for email, _ in at_risk]
    rows: list[tuple[Rank, str]] = []
    for start in range(0, len(emails), 5000):
        chunk = emails[start:start + 5000]
        wanted = {"score": [], "value": ["value", "unhappy"]}.get(sort, [sort])
        looked = dict(zip(wanted, store.rank_lookup(wanted, chunk), strict=True))
        if sort == "score":
            values: list[float | None] = [score for _, score in at_risk[start:start + 5000]]
        else:
            values = looked[sort]
        unhappy = looked.get("unhappy", [None] * len(chunk))
        rows += [(walk.rank(email, value, bad), email)
                 for email, value, bad in zip(chunk, values, unhappy, strict=True)]
    return sorted(row for row in rows if after is None or row[0] > after)[:limit + 1]


def ranked_customers(store: Store, settings: Settings, now_ms: int, *, at_risk: bool | None, sort: str,
                     order: str, limit: int, cursor: str | None) -> tuple[list[ScoreCard], str | None]:
    """Return one page of customers' score cards and the cursor of the next page (None at the end).

    at_risk: True keeps customers whose score is below settings.at_risk_score, False keeps the others
    (those without a score included), None keeps everyone. sort: "score" (nulls last), "responses",
    "recent" (latest answer, nulls last) or "value": lifetime order value (live orders, the main
    currency's total taken as is) with ties broken by the most recent unsatisfied answer, which is
    how the at-risk list ranks what a customer is worth and how recently things went wrong.
    order: "asc" or "desc". cursor: opaque, from a previous page of the same query; a malformed or
    foreign cursor raises ValueError. Read from the ranked sets kept as answers and orders arrive.
    """
    emails, next_cursor = ranked_emails(store, settings, at_risk=at_risk, sort=sort, order=order, limit=limit,
                                        cursor=cursor)
    return customer_cards(store, settings, emails, now_ms), next_cursor


def ranked_emails(store: Store, settings: Settings, *, at_risk: bool | None, sort: str, order: str, limit: int,
                  cursor: str | None) -> tuple[list[str], str | None]:
    """Return one page of customers as ranked_customers ranks them, by email, and the next page's cursor (None at
    the end): the ranking without the cards, for a reader that needs less of each customer."""
    if sort not in SORTS or order not in ORDERS or limit < 1:
        raise ValueError("sort, order or limit is not valid")
    query = RankedQuery(sort, order, at_risk)
    after = None
    if cursor:
        after = _decode_cursor(cursor, query, (0, 0, 0, 0, "") if sort == "value" else (0, 0, ""))
    if at_risk:
        ranked = _at_risk_walk(store, settings, sort, order, after, limit)
    else:
        ranked = _Walk(store, settings, sort, order, at_risk, after, limit).run()
    page, more = ranked[:limit], len(ranked) > limit
    return [email for _, email in page], _encode_cursor(query, page[-1][0]) if more else None


def customer_cards(store: Store, settings: Settings, emails: list[str], now_ms: int) -> list[ScoreCard]:
    """Return the score cards of a page of customers, as customer_card shows each, read in one round trip."""
    return [card for email, read in zip(emails, store.card_replies(emails), strict=True)
            if (card := customer_card(store, settings, email, now_ms, read=read))]


# Agents, teams, sources, brands, channels, tags, organisations ------------------------------------

def kind_of(kind: str, resolved_by: str | None = None) -> str:
    """Return the kind whose aggregates answer a list of kind, split by resolved_by when given; ValueError when
    either is unknown."""
    if kind.partition("@")[0] not in KINDS or (resolved_by is not None and resolved_by not in RESOLVERS):
        raise ValueError(f"unknown kind {kind!r} or resolved_by {resolved_by!r}")
    return split_kind(kind, resolved_by) if resolved_by else kind


def aggregate_counts(store: Store, kind: str, idents: list[str] | None = None,
                     crossed: str | None = None) -> list[tuple[str, int]]:
    """Return (id, answers) of every entity of a kind (agent, ..., organisation, or one split by resolved_by:
    "agent@bot") that counts something (an answer or a sent survey), in id order (idents: every id of the kind,
    when the caller has read them already); of its surveys of one value of another dimension alone when crossed
    names it (rollups.cross_label: "channel=email")."""
    kind_of(kind)
    idents = store.ids(kind) if idents is None else idents
    counts = store.entity_counts(kind, idents) if crossed is None else store.crossed_counts(kind, idents, crossed)
    return [(ident, n) for ident, (n, sent) in zip(idents, counts, strict=True) if n or sent]


def ranked_counts(store: Store, kind: str) -> list[tuple[str, int]]:
    """Return what aggregate_counts does of every entity of a kind, read from the kind's ranked set (kept as
    answers arrive) in one command: most answered first, ties by id."""
    kind_of(kind)
    return store.ranked_counts(kind)


def aggregate_cards(store: Store, kind: str, idents: list[str], now_ms: int,
                    names: Mapping[str, str | None] | None = None, crossed: str | None = None) -> list[ScoreCard]:
    """Return the score cards of these agents, teams, sources or brands in their order, each from its sums and
    the two windows of days its trend compares (never every day it has).

    Agents are named from names when given, else as the newest event that named them did (None when none
    did); the other kinds are named by their id. crossed: the cards of their surveys of one value of another
    dimension alone (aggregate_counts).
    """
    agents = kind.partition("@")[0] == "agent"
    if agents and names is None:
        names = store.agent_names(idents)
    today = datetime.fromtimestamp(now_ms / 1000, tz=UTC).date()
    split = today - timedelta(days=TREND_DAYS - 1)
    cards = []
    first = split - timedelta(days=TREND_DAYS)
    parts = (store.entity_parts(kind, idents, first, split, today) if crossed is None
             else store.crossed_parts(kind, idents, crossed, first, split, today))
    for ident, (sums, earlier, recent) in zip(idents, parts, strict=True):
        # A trend compares two windows' sums; each window's sum stands on one of its days.
        days = {day.isoformat(): window for day, window in ((split - timedelta(days=1), earlier), (today, recent))
                if window != (0, 0)}
        cards.append(score_card(ident, replace(sums, days=days), now_ms,
                                (names or {}).get(ident) if agents else ident))
    return cards


def aggregate_page(store: Store, kind: str, now_ms: int, offset: int = 0, limit: int | None = None,
                   resolved_by: str | None = None, crossed: str | None = None,
                   idents: list[str] | None = None) -> tuple[list[ScoreCard], int]:
    """Return a page of aggregate_list (from offset, at most limit: None for all) and how many rows it has, of the
    tickets resolved by resolved_by ("human", "bot") alone when given, of the surveys of one value of another
    dimension alone when crossed names it (aggregate_counts); of these ids alone when given.

    Unfiltered, the kind's ranked set (keys.entity_rank, kept as answers arrive) gives the page; filtered, every
    entity's counts are read to order them. Their sums, the days behind their trends and the agents' names are
    read for the page only.
    """
    kind = kind_of(kind, resolved_by)
    if crossed is None and idents is None:  # the kind's ranked set holds its order: the page alone is read
        page_ids, total = store.ranked_entities(kind, offset, limit)
        return aggregate_cards(store, kind, page_ids, now_ms), total
    rows = aggregate_counts(store, kind, idents, crossed=crossed)
    rows.sort(key=lambda row: (-row[1], row[0]))
    page = rows[offset:] if limit is None else rows[offset:offset + limit]
    return aggregate_cards(store, kind, [ident for ident, _ in page], now_ms, crossed=crossed), len(rows)


def aggregate_list(store: Store, kind: str, now_ms: int) -> list[ScoreCard]:
    """Return every agent, team, source or brand with its SPEC §6 fields, most responses first.

    Agents' ids are `<source>:<agent id>` and their name is the one on their newest survey (None
    when never given); the other kinds are named by their id.
    """
    return aggregate_page(store, kind, now_ms)[0]


def aggregate_detail(store: Store, kind: str, ident: str, now_ms: int, resolved_by: str | None = None,
                     crossed: str | None = None) -> ScoreCard | None:
    """Return one agent, team, source, brand, channel, tag or organisation as aggregate_list shows it (of the
    tickets resolved_by resolved alone, when given; of one value of another dimension when crossed names it), or
    None when unknown."""
    kind = kind_of(kind, resolved_by)
    (card,) = aggregate_cards(store, kind, [ident], now_ms, crossed=crossed)
    return card if card.responses or card.surveys_sent else None

"""What support leads ask of the scores: ranked customers, per-entity lists, summaries, exports.

The API and the dashboard both call these; each returns plain dicts shaped as the API shows them.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from typing import Any

from tracker.config import Settings
from tracker.scores.cards import customer_card, response_row
from tracker.scores.maths import DAY_MS, aggregate_fields, contribution
from tracker.scores.scales import SCALES
from tracker.store import Store

SORTS = ("score", "value", "recent", "responses")
ORDERS = ("asc", "desc")
KINDS = ("agent", "team", "source", "brand")
FILTERS = ("source", "brand", "team", "agent", "scale")
MAX_SPAN_DAYS = 3660  # a summary covers at most about ten years of days
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
Rank = tuple[Any, ...]
COUNTED = ("value6", "satisfied", "promoter", "detractor", "nps", "weight", "weighted", "day")
SUMMED = ("rating", "scale", "at", "source", "agent_id", "team", "brand", *COUNTED)


def day_start_ms(day: date) -> int:
    """Return the first millisecond of a UTC day (integer maths: no overflow at year 1 or 9999)."""
    return (day.toordinal() - _EPOCH_ORDINAL) * DAY_MS


def day_of_ms(ms: int) -> date:
    return date.fromordinal(ms // DAY_MS + _EPOCH_ORDINAL)


def matches(row: Mapping[str, str], filters: Mapping[str, Any]) -> bool:
    """Tell whether a response or survey record passes the filters (agent is `<source>:<agent id>`)."""
    for name in FILTERS:
        wanted = filters.get(name)
        if wanted in (None, ""):
            continue
        if name == "agent":
            have = f"{row.get('source', '')}:{row['agent_id']}" if row.get("agent_id") else None
        else:
            have = row.get(name)
        if have != wanted:
            return False
    return True


# Ranked customers ---------------------------------------------------------------------------------

def _encode_cursor(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, expect: dict[str, Any], like: Rank) -> Rank:
    """Read a cursor back into the rank it stopped at; ValueError when it is not one of ours for this query."""
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("Not a valid cursor.") from exc
    if not isinstance(state, dict) or any(state.get(k) != v for k, v in expect.items()):
        raise ValueError("The cursor belongs to another query.")
    rank = state.get("k")
    if not isinstance(rank, list) or len(rank) != len(like):
        raise ValueError("Not a valid cursor.")
    for got, want in zip(rank, like, strict=True):
        numeric = isinstance(got, int | float) and not isinstance(got, bool)
        if (isinstance(want, str) and not isinstance(got, str)) or (not isinstance(want, str) and not numeric):
            raise ValueError("Not a valid cursor.")
    return tuple(rank)


def _below(score: float | None, threshold: float) -> bool:
    return score is not None and score < threshold


def ranked_customers(store: Store, settings: Settings, now_ms: int, *, at_risk: bool | None, sort: str,
                     order: str, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Return one page of customers' score cards and the cursor of the next page (None at the end).

    at_risk: True keeps customers whose score is below settings.at_risk_score, False keeps the others
    (those without a score included), None keeps everyone. sort: "score" (nulls last), "responses",
    "recent" (latest answer, nulls last) or "value": lifetime order value (live orders, the main
    currency's total taken as is) with ties broken by the most recent unsatisfied answer, which is
    how the at-risk list ranks what a customer is worth and how recently things went wrong.
    order: "asc" or "desc". cursor: opaque, from a previous page of the same query; a malformed or
    foreign cursor raises ValueError.
    """
    if sort not in SORTS or order not in ORDERS or limit < 1:
        raise ValueError("sort, order or limit is not valid")
    threshold = settings.at_risk_score
    # The score ranking is kept as answers arrive (weighted / weight, exact at any query time); rounded
    # like the card, so the at-risk line falls where the card draws it.
    raw = store.customer_scores(below=threshold + 0.01 if at_risk else None)
    scores: dict[str, float | None] = {email: round(score, 2) for email, score in raw.items()}
    emails = sorted(scores) if at_risk else store.customer_emails()
    if at_risk is not None:
        emails = [e for e in emails if _below(scores.get(e), threshold) is at_risk]
    sign = -1 if order == "desc" else 1
    counts = store.customer_field(emails, "agg", "n") if sort == "responses" else {}
    latest = store.customer_field(emails, "profile", "last_response_at") if sort == "recent" else {}
    values = store.order_values(emails) if sort == "value" else {}
    unhappy = store.last_unsatisfied_at(emails) if sort == "value" else {}

    def rank(email: str) -> Rank:
        if sort == "score":
            score = scores.get(email)
            return (int(score is None), sign * (score or 0.0), email)
        if sort == "responses":
            return (0, sign * int(counts.get(email) or 0), email)
        if sort == "recent":
            last = latest.get(email)
            return (int(not last), sign * int(last or 0), email)
        bad = unhappy.get(email)
        return (0, sign * values[email], int(bad is None), -(bad or 0), email)

    ranked = sorted((rank(e), e) for e in emails)
    expect = {"s": sort, "o": order, "r": at_risk}
    if cursor:
        after = _decode_cursor(cursor, expect, (0, 0, 0, 0, "") if sort == "value" else (0, 0, ""))
        ranked = [item for item in ranked if item[0] > after]
    page, more = ranked[:limit], len(ranked) > limit
    cards = [card for _, email in page if (card := customer_card(store, settings, email, now_ms))]
    next_cursor = _encode_cursor({**expect, "k": list(page[-1][0])}) if more else None
    return cards, next_cursor


# Agents, teams, sources, brands -------------------------------------------------------------------

def _agent_names(store: Store, idents: set[str]) -> dict[str, str | None]:
    """Name agents by the newest sent survey that carries a name for them."""
    names: dict[str, str | None] = dict.fromkeys(idents)
    missing = set(idents)
    if not missing:
        return names
    for survey in store.window("survey", "-inf", "+inf", newest_first=True,
                               fields=("source", "agent_id", "agent_name")):
        ident = f"{survey.get('source', '')}:{survey.get('agent_id', '')}"
        if ident in missing and survey.get("agent_name"):
            names[ident] = survey["agent_name"]
            missing.discard(ident)
            if not missing:
                break
    return names


def aggregate_list(store: Store, kind: str, now_ms: int) -> list[dict[str, Any]]:
    """Return every agent, team, source or brand with its SPEC §6 fields, most responses first.

    Each row: {"id", "name", score, average, csat, responses, surveys_sent, response_rate, trend, nps}.
    Agents' ids are `<source>:<agent id>` and their name is the one on their newest survey (None
    when never given); the other kinds are named by their id.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    rows = [(ident, agg, daily) for ident, agg, daily in store.aggregates(kind, store.ids(kind)) if agg]
    names = _agent_names(store, {ident for ident, _, _ in rows}) if kind == "agent" else {}
    found: list[dict[str, Any]] = [
        {"id": ident, "name": names.get(ident) if kind == "agent" else ident, **aggregate_fields(agg, daily, now_ms)}
        for ident, agg, daily in rows]
    found.sort(key=lambda row: (-(row["responses"] or 0), row["id"]))
    return found


def aggregate_detail(store: Store, kind: str, ident: str, now_ms: int) -> dict[str, Any] | None:
    """Return one agent, team, source or brand as aggregate_list shows it, or None when unknown."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    ((_, agg, daily),) = store.aggregates(kind, [ident])
    if not agg:
        return None
    name = _agent_names(store, {ident})[ident] if kind == "agent" else ident
    return {"id": ident, "name": name, **aggregate_fields(agg, daily, now_ms)}


# Summaries over a date range ----------------------------------------------------------------------

class _Sums:
    """Running sums shaped like a stored aggregate, for answers read one by one."""

    def __init__(self) -> None:
        self.agg: dict[str, float] = {}
        self.daily: dict[str, int] = {}

    def add(self, response: Mapping[str, str], half_life_days: float) -> None:
        """Add an answer as its stored contribution (what the aggregates hold), computed when absent."""
        if response.get("weighted") and response.get("day"):
            part = {name: response[name] for name in COUNTED}
        else:
            made = contribution(response["scale"], int(response["rating"]), int(response["at"]), half_life_days)
            part = {name: str(getattr(made, name)) for name in COUNTED}
        for name in ("value6", "satisfied", "promoter", "detractor", "nps"):
            self.agg[name] = self.agg.get(name, 0) + int(part[name] or 0)
        self.agg["n"] = self.agg.get("n", 0) + 1
        self.agg["weight"] = self.agg.get("weight", 0.0) + float(part["weight"])
        self.agg["weighted"] = self.agg.get("weighted", 0.0) + float(part["weighted"])
        self.daily[f"{part['day']}:n"] = self.daily.get(f"{part['day']}:n", 0) + 1
        self.daily[f"{part['day']}:v"] = self.daily.get(f"{part['day']}:v", 0) + int(part["value6"])

    def fields(self, anchor_ms: int) -> dict[str, Any]:
        return aggregate_fields({k: repr(v) if isinstance(v, float) else str(v) for k, v in self.agg.items()},
                                {k: str(v) for k, v in self.daily.items()}, anchor_ms)


def resolve_range(store: Store, now_ms: int, date_from: date | None, date_to: date | None) -> tuple[date, date]:
    """Fill in an open range: up to today, from the first answer or sent survey; ValueError if reversed."""
    last = date_to or day_of_ms(now_ms)
    if date_from is None:
        first_ms = store.first_activity_ms()
        first = day_of_ms(first_ms) if first_ms is not None else last
        date_from = max(min(first, last), date.fromordinal(max(1, last.toordinal() - MAX_SPAN_DAYS + 1)))
    if date_from > last:
        raise ValueError("from is after to")
    if (last - date_from).days >= MAX_SPAN_DAYS:
        raise ValueError(f"the range is longer than {MAX_SPAN_DAYS} days")
    return date_from, last


def summary(store: Store, settings: Settings, now_ms: int, *, date_from: date | None, date_to: date | None,
            filters: Mapping[str, Any]) -> dict[str, Any]:
    """Return the SPEC §6 fields over the answers of a date range (UTC days, both ends included).

    Shape: {"from", "to", "filters", <fields>, "series": [{date, responses, average, csat}, one per
    day], "by_source": {source: <fields>}, "distribution": {scale: {rating: count}}}. Filters: source,
    brand, team, agent (`<source>:<agent id>`), scale. Trend compares the last 30 days of the range
    with the 30 before. The daily buckets hold no satisfied counts, so the per-day csat and the
    distribution are read from the answers themselves (t:responses by time), which also keeps every
    filter combination exact; open ranges end today and start at the first activity.
    """
    first, last = resolve_range(store, now_ms, date_from, date_to)
    low, high = day_start_ms(first), day_start_ms(last) + DAY_MS - 1
    anchor = min(now_ms, high)
    total, per_source = _Sums(), dict[str, _Sums]()
    days: dict[str, list[int]] = {}
    distribution: dict[str, dict[str, int]] = {}
    for response in store.window("resp", low, high, fields=SUMMED):
        if not matches(response, filters) or response.get("scale") not in SCALES or "rating" not in response:
            continue
        total.add(response, settings.score_half_life_days)
        per_source.setdefault(response.get("source", ""), _Sums()).add(response, settings.score_half_life_days)
        day = days.setdefault(day_of_ms(int(response["at"])).isoformat(), [0, 0, 0])
        day[0] += 1
        day[1] += int(response["value6"])
        day[2] += int(response.get("satisfied") == "1")
        scale = SCALES[response["scale"]]
        counts = distribution.setdefault(scale.name, {str(v): 0 for v in scale.values})
        counts[response["rating"]] = counts.get(response["rating"], 0) + 1
    for survey in store.window("survey", low, high, fields=("status", "source", "agent_id", "team", "brand",
                                                             "scale")):
        if survey.get("status") in ("sent", "answered") and matches(survey, filters):
            total.agg["sent"] = total.agg.get("sent", 0) + 1
            sums = per_source.setdefault(survey.get("source", ""), _Sums())
            sums.agg["sent"] = sums.agg.get("sent", 0) + 1
    series = []
    for offset in range((last - first).days + 1):
        day_iso = (first + timedelta(days=offset)).isoformat()
        n, value6, satisfied = days.get(day_iso, (0, 0, 0))
        series.append({"date": day_iso, "responses": n, "average": round(value6 / 6 / n, 2) if n else None,
                       "csat": round(satisfied * 100 / n, 2) if n else None})
    return {
        "from": first.isoformat(), "to": last.isoformat(),
        "filters": {k: v for k, v in filters.items() if k in FILTERS and v not in (None, "")},
        **total.fields(anchor),
        "series": series,
        "by_source": {source: sums.fields(anchor) for source, sums in sorted(per_source.items())},
        "distribution": dict(sorted(distribution.items())),
    }


# Response rows ------------------------------------------------------------------------------------

def _bounds(date_from: date | None, date_to: date | None) -> tuple[float | str, float | str]:
    return (day_start_ms(date_from) if date_from else "-inf",
            day_start_ms(date_to) + DAY_MS - 1 if date_to else "+inf")


def _row(response: dict[str, str]) -> dict[str, Any]:
    return {**response_row(response), "customer": response.get("customer") or None}


def latest_comments(store: Store, limit: int, filters: Mapping[str, Any], *, date_from: date | None = None,
                    date_to: date | None = None) -> list[dict[str, Any]]:
    """Return up to limit answers that carry a comment, newest first (optionally within a date range)."""
    found: list[dict[str, Any]] = []
    low, high = _bounds(date_from, date_to)
    for response in store.window("resp", low, high, newest_first=True):
        if response.get("comment") and matches(response, filters):
            found.append(_row(response))
            if len(found) >= limit:
                break
    return found


def iter_responses(store: Store, *, date_from: date | None, date_to: date | None,
                   filters: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield every answer in a date range (open ends: all time), oldest first, as response rows with the customer."""
    low, high = _bounds(date_from, date_to)
    for response in store.window("resp", low, high):
        if matches(response, filters):
            yield _row(response)


def customer_responses_page(store: Store, email: str, *, offset: int, limit: int, date_from: date | None,
                            date_to: date | None, filters: Mapping[str, Any],
                            ) -> tuple[list[dict[str, Any]], int | None]:
    """Return a customer's matching answers newest first from a position, and the position to go on from."""
    low = day_start_ms(date_from) if date_from else None
    high = day_start_ms(date_to) + DAY_MS - 1 if date_to else None
    found: list[dict[str, Any]] = []
    while True:
        batch, ended = store.customer_response_slice(email, offset, max(limit + 1, 100))
        for position, response in batch:
            at = int(response.get("at") or 0)
            if (low is not None and at < low) or (high is not None and at > high) or not matches(response, filters):
                continue
            if len(found) == limit:
                return found, position
            found.append(response_row(response))
        if ended:
            return found, None
        offset += max(limit + 1, 100)

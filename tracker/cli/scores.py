"""`tracker score` and `tracker top`: score cards for a terminal."""

from __future__ import annotations

import argparse
import json
import time

from tracker.cli.base import UsageError, open_store, settings_for
from tracker.model import ScoreCard


def cmd_score(args: argparse.Namespace) -> int:
    from tracker.scores.cards import customer_card

    settings = settings_for("store")
    card = customer_card(open_store(settings), settings, args.email, int(time.time() * 1000))
    if card is None:
        raise UsageError(f"no customer {args.email.strip().lower()!r} is known")
    if args.json:
        from tracker.schema_cache import schema
        from tracker.web.api.schemas import ScoreCardSchema

        print(json.dumps(schema(ScoreCardSchema).dump(card), indent=2, ensure_ascii=False))
        return 0
    print(format_card(card))
    return 0


def format_card(card: ScoreCard) -> str:
    """Render a score card for a terminal."""
    from tracker.events import iso_from_ms

    def show(value: float | None, suffix: str = "") -> str:
        return "-" if value is None else f"{value}{suffix}"

    last = card.last_response
    orders = card.orders
    lines = [
        card.id + (f" ({card.name})" if card.name else "") + ("  AT RISK" if card.at_risk else ""),
        f"  score          {show(card.score)}",
        f"  average        {show(card.average)}",
        f"  csat           {show(card.csat, '%')}",
        f"  responses      {card.responses} of {card.surveys_sent} surveys sent"
        f" (response rate {show(card.response_rate, '%')})",
        f"  trend (30d)    {show(card.trend)}",
        f"  nps            {show(card.nps)}",
        "  last response  " + (f"{last.rating} ({last.scale}) at {iso_from_ms(last.at_ms)} on {last.ticket}"
                               if last else "-"),
        f"  orders         {orders.count if orders else 0}"
        + (f", {orders.total} {orders.currency}" if orders and orders.currency else ""),
    ]
    return "\n".join(lines)


def cmd_top(args: argparse.Namespace) -> int:
    from tracker.scores.ranking import ranked_customers

    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    settings = settings_for("store")
    cards, _ = ranked_customers(open_store(settings), settings, int(time.time() * 1000),
                                at_risk=True if args.at_risk else None, sort="score", order="asc",
                                limit=args.limit, cursor=None)
    if not cards:
        print("No customers at risk." if args.at_risk else "No customers yet.")
        return 0
    print(format_top(cards))
    return 0


def format_top(cards: list[ScoreCard]) -> str:
    """Render score cards as a table, one customer a line."""
    from tracker.events import iso_from_ms

    rows = [("customer", "name", "score", "csat", "responses", "last answer", "")]
    for card in cards:
        last = card.last_response
        rows.append((card.id, card.name or "", "-" if card.score is None else f"{card.score:g}",
                     "-" if card.csat is None else f"{card.csat:g}%", str(card.responses),
                     f"{last.rating} ({last.scale}) {iso_from_ms(last.at_ms)[:10]}" if last else "-",
                     "AT RISK" if card.at_risk else ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)

"""Forty customers with answers on several sources, agents, teams and days, and orders (some of equal totals), and
the slow way of ranking them (each one's card and answers, read one by one) that ranked pages are checked against."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from tests.support import drain, tracker
from tracker.config import Settings
from tracker.scores.cards import customer_card
from tracker.store import Store

NOW_MS = 1_764_547_200_000  # 2025-12-01
SOURCES = ("zendesk", "freshdesk", "import")


def order_event(email: str, order_id: str, total: str, kind: str = "order.created") -> dict[str, Any]:
    return {"type": kind, "id": f"evt-{order_id}-{kind}", "occurred_at": "2025-10-01T09:00:00Z",
            "order": {"id": order_id, "total": total, "currency": "NOK"},
            "customer": {"id": f"c-{email}", "email": email, "name": email.split("@")[0].title()}}


def fill_forty(env: dict[str, str], tmp_path: Any, store: Store, settings: Settings, post_event: Any) -> list[str]:
    """Forty customers: answers on several sources, agents, teams and days; orders, some of equal totals."""
    rng = random.Random(20261130)
    rows = ["email,rating,scale,answered_at,ticket,source,agent,team,comment"]
    emails = [f"c{i:02d}@example.no" for i in range(40)]
    for i, email in enumerate(emails):
        for j in range(rng.choice((0, 0, 1, 2, 3, 5))):
            rating = rng.randint(1, 5)
            day = rng.randint(1, 28)
            source = rng.choice(SOURCES)
            agent = rng.choice(("ola", "kari", ""))
            team = rng.choice(("billing", "support", ""))
            rows.append(f"{email},{rating},csat5,2025-{rng.choice((10, 11))}-{day:02d}T09:00:00Z,T-{i}-{j},"
                        f"{source},{agent},{team},{'why' if rating < 3 else ''}")
        if i % 3 == 0:
            body = post_event("standard", order_event(email, f"O-{i}", rng.choice(("100.00", "250.00", "99.50"))))
            assert body.status_code == 202, body.get_data(as_text=True)
        elif i % 7 == 1:
            assert post_event("standard", order_event(email, f"O-{i}", "0.00")).status_code == 202
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert tracker(env, "import-ratings", str(path)).returncode == 0
    while drain(store, settings):
        pass
    return emails


def rank_every_customer(store: Store, settings: Settings, emails: list[str], sort: str, order: str,
            at_risk: bool | None) -> list[str]:
    """Rank every customer the slow way: each one's card and answers, read one by one."""
    sign = -1 if order == "desc" else 1
    ranked = []
    for email in emails:
        card = customer_card(store, settings, email, NOW_MS)
        if card is None:
            continue
        if at_risk is not None and (card.score is not None and card.score < settings.at_risk_score) is not at_risk:
            continue
        answers = store.customer_responses(email, 0, 1000)
        unhappy = max((a.at_ms for a in answers if not a.counted.satisfied), default=None)
        value = int(Decimal(card.orders.total) * 100) if card.orders and card.orders.total else 0
        if sort == "score":
            rank: tuple[Any, ...] = (int(card.score is None), sign * (card.score or 0.0), email)
        elif sort == "responses":
            rank = (0, sign * card.responses, email)
        elif sort == "recent":
            last = card.last_response.at_ms if card.last_response else None
            rank = (int(not last), sign * (last or 0), email)
        else:
            rank = (0, sign * value, int(unhappy is None), -(unhappy or 0), email)
        ranked.append((rank, email))
    return [email for _, email in sorted(ranked)]

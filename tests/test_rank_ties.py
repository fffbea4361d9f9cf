"""Lists by answers and by newest answer, where many customers tie (issue 9: every list costs its page): the pages
come in rank order (value, then email) and a page reads the page, not the whole tie it falls in."""

from __future__ import annotations

import pytest

from tests.test_buckets import monitored
from tracker.config import Settings
from tracker.scores.ranking import BATCH, ORDERS, ranked_emails
from tracker.store import Store, keys

TIED = 1_500  # far more than a batch: a page that read its whole tie would read all of them
RANKED = {"responses": keys.RANK_RESPONSES, "recent": keys.RANK_RECENT}


def tied_customers(store: Store) -> dict[str, dict[str, float]]:
    """Write the ranked sets of customers most of whom tie: by answers, TIED of them at 3 between a few at 5 and at
    1; by newest answer, in groups of 40 at the same millisecond. Emails past ASCII too (Redis orders ties by
    their bytes, the list by code points: the same order in UTF-8)."""
    emails = [f"k{n:04d}@example.no" for n in range(TIED + 60)]
    emails += ["øystein@example.no", "zoë@example.no", "ålesund@example.no", "émile@example.no"]
    values = {"responses": {email: 5.0 if n < 30 else 1.0 if n < 60 else 3.0 for n, email in enumerate(emails)},
              "recent": {email: 1_764_000_000_000.0 + (n // 40) * 1000 for n, email in enumerate(emails)}}
    values["responses"]["zoë@example.no"] = 5.0
    for sort, scored in values.items():
        store.redis.zadd(RANKED[sort], scored)
    store.redis.zadd(keys.CUSTOMERS, dict.fromkeys(emails, 0))
    return values


def expected(values: dict[str, float], order: str) -> list[str]:
    sign = -1 if order == "desc" else 1
    return [email for email, _ in sorted(values.items(), key=lambda item: (sign * item[1], item[0]))]


def read_all(store: Store, settings: Settings, sort: str, order: str, limit: int) -> list[str]:
    got: list[str] = []
    cursor = None
    for _ in range(10_000):
        page, cursor = ranked_emails(store, settings, at_risk=None, sort=sort, order=order, limit=limit,
                                     cursor=cursor)
        got += page
        if cursor is None:
            return got
    raise AssertionError("the pages did not end")


def rows_read(commands: list[list[str]]) -> int:
    """How many members the range reads among the commands asked for at most."""
    total = 0
    for command in commands:
        name = command[0].upper()
        if name in ("ZRANGE", "ZREVRANGE"):
            total += int(command[3]) - int(command[2]) + 1
        elif name in ("ZRANGEBYSCORE", "ZREVRANGEBYSCORE"):
            upper = [arg.upper() for arg in command]
            total += int(command[upper.index("LIMIT") + 2]) if "LIMIT" in upper else TIED * 10
    return total


@pytest.mark.parametrize("sort", sorted(RANKED))
@pytest.mark.parametrize("order", ORDERS)
def test_tied_customers_come_page_after_page_in_rank_order(store: Store, settings: Settings, sort: str,
                                                           order: str) -> None:
    values = tied_customers(store)[sort]
    for limit in (1, 7, 200, 1000):
        assert read_all(store, settings, sort, order, limit) == expected(values, order), limit


@pytest.mark.parametrize("sort", sorted(RANKED))
@pytest.mark.parametrize("order", ORDERS)
def test_a_page_inside_a_big_tie_reads_about_the_page_not_the_tie(store: Store, settings: Settings,
                                                                  redis_url: str, sort: str, order: str) -> None:
    values = tied_customers(store)[sort]
    want = expected(values, order)
    cursor = None
    pages: list[str] = []
    for _ in range(5):  # into the middle of the big tie
        with monitored(redis_url) as commands:
            page, cursor = ranked_emails(store, settings, at_risk=None, sort=sort, order=order, limit=10,
                                         cursor=cursor)
        pages += page
        # At most a batch of what is left of the cursor's tie, one down from it, one of the tie it ends in.
        assert rows_read(commands) <= 3 * BATCH < TIED, (len(pages), rows_read(commands))
    assert pages == want[:50]


@pytest.mark.parametrize("order", ORDERS)
def test_a_cursor_whose_customer_moved_meanwhile_still_resumes_after_its_place(store: Store, settings: Settings,
                                                                              order: str) -> None:
    values = tied_customers(store)["responses"]
    first, cursor = ranked_emails(store, settings, at_risk=None, sort="responses", order=order, limit=45,
                                  cursor=None)
    assert first == expected(values, order)[:45]
    sign = -1 if order == "desc" else 1
    place = (sign * values[first[-1]], first[-1])  # where the cursor points
    store.redis.zadd(keys.RANK_RESPONSES, {first[-1]: 2.0})  # its customer's answers changed meanwhile
    values = {**values, first[-1]: 2.0}
    rest: list[str] = []
    while cursor is not None:
        page, cursor = ranked_emails(store, settings, at_risk=None, sort="responses", order=order, limit=300,
                                     cursor=cursor)
        rest += page
    assert rest == [email for email in expected(values, order) if (sign * values[email], email) > place]


def test_ascending_by_answers_walks_the_customers_without_answers_only_while_some_are_left(
        store: Store, settings: Settings, redis_url: str) -> None:
    values = tied_customers(store)["responses"]
    with monitored(redis_url) as commands:
        page, _ = ranked_emails(store, settings, at_risk=None, sort="responses", order="asc", limit=10, cursor=None)
    assert page == expected(values, "asc")[:10]
    assert not any(command[1] == keys.CUSTOMERS for command in commands if command[0].upper() == "ZRANGEBYLEX")

    store.redis.zadd(keys.CUSTOMERS, {"aaron@example.no": 0})  # one customer without an answer, early by email
    with monitored(redis_url) as commands:
        page, _ = ranked_emails(store, settings, at_risk=None, sort="responses", order="asc", limit=10, cursor=None)
    assert page == ["aaron@example.no", *expected(values, "asc")[:9]]
    walks = [command for command in commands if command[0].upper() == "ZRANGEBYLEX" and command[1] == keys.CUSTOMERS]
    assert len(walks) == 1  # found in the first batch of customers: the walk ends there

"""The dashboard's weekly CSAT sparklines per agent and team, and its channel, tag, organisation and resolved_by
filters, through the real loop (webhooks, surveys mailed, answers on the survey page) and the real app."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests.support import World
from tests.test_dashboard import card, page, section, signed_in  # noqa: F401 - a fixture
from tests.test_outbox import _answered_long_ago
from tracker.scores.summary import Facets
from tracker.web.dashboard.trends import trends


def today() -> date:
    return datetime.now(UTC).date()


def four_weeks() -> dict[str, str]:
    """A range of exactly four calendar weeks: from the Monday three weeks before this week's, to today."""
    monday = today() - timedelta(days=today().weekday()) - timedelta(weeks=3)
    return {"from": monday.isoformat(), "to": today().isoformat()}


def days_ago_in_week(week: int) -> int:
    """How many days ago the Tuesday of week 0-3 of four_weeks() was (today for this week's)."""
    start = date.fromisoformat(four_weeks()["from"]) + timedelta(weeks=week, days=1)
    return max((today() - start).days, 0)


@pytest.fixture
def trended(world: World) -> World:
    """Ola (billing, email, tag vip, acme.no): 0% in week 0, nothing in week 1, 100% in weeks 2 and 3. Per
    (shipping): 100% today. Robo (shipping, chat, tag refund, a bot resolved it, nordic.example): 0% today."""
    for n, (week, rating) in enumerate([(0, 1), (2, 5)]):
        _answered_long_ago(world, f"T-old-{n}", f"old{n}@acme.no", rating, days_ago_in_week(week))
    world.solved_and_answered("T-1", "kari@acme.no", 5)
    world.solved_and_answered("T-2", "per@example.org", 5, team="shipping",
                              agent={"id": "a-8", "name": "Per", "email": "per@acme.test"})
    world.solved_and_answered("T-3", "liv@nordic.example", 1, team="shipping", channel="chat", tags=["refund"],
                              resolved_by="bot", agent={"id": "a-9", "name": "Robo", "email": "robo@acme.test"})
    return world


def row_of(html: str, table: str, name: str) -> str:
    rows = [row for row in section(html, table).split("<tr>") if f'<th scope="row">{name}' in row]
    assert len(rows) == 1, f"{name} is not one row of {table}"
    return rows[0]


def spark_of(row: str) -> dict[str, Any]:
    match = re.search(r'<svg class="spark"[^>]*aria-label="([^"]*)" data-weeks="(\d+)" data-points="(\d+)" '
                      r'data-gaps="(\d+)"', row)
    assert match, f"no sparkline in {row}"
    polylines = re.findall(r"<polyline points=\"([^\"]+)\"", row.split('class="spark"')[1].split("</svg>")[0])
    return {"label": match.group(1), "weeks": int(match.group(2)), "points": int(match.group(3)),
            "gaps": int(match.group(4)), "lines": polylines}


def test_each_agent_and_team_has_a_weekly_csat_sparkline_with_gaps(client, trended, signed_in):  # noqa: F811
    status, html = page(client, **four_weeks())
    assert status == 200
    ola = spark_of(row_of(html, "agents", "Ola"))
    assert (ola["weeks"], ola["points"], ola["gaps"]) == (4, 3, 1)
    # The empty week breaks the line: week 0 stands alone, weeks 2 and 3 are joined.
    assert len(ola["lines"]) == 1 and len(ola["lines"][0].split()) == 2
    assert "0% of 1 answer" in ola["label"] and "no answers" in ola["label"]
    assert "100% of 2 answers" in ola["label"] or "100% of 1 answer" in ola["label"]
    per = spark_of(row_of(html, "agents", "Per"))
    assert (per["weeks"], per["points"], per["gaps"]) == (4, 1, 3) and per["lines"] == []
    shipping = spark_of(row_of(html, "teams", "shipping"))
    assert (shipping["points"], shipping["gaps"]) == (1, 3)
    assert "50% of 2 answers" in shipping["label"]
    billing = spark_of(row_of(html, "teams", "billing"))
    assert (billing["points"], billing["gaps"]) == (3, 1)


def test_a_week_long_range_has_one_point_and_a_year_one_every_week(client, trended, signed_in):  # noqa: F811
    monday = today() - timedelta(days=today().weekday())
    html = page(client, **{"from": monday.isoformat(), "to": today().isoformat()})[1]
    assert spark_of(row_of(html, "agents", "Ola"))["weeks"] == 1
    year = page(client, **{"from": (today() - timedelta(days=365)).isoformat(), "to": today().isoformat()})[1]
    ola = spark_of(row_of(year, "agents", "Ola"))
    assert ola["weeks"] in (53, 54) and ola["points"] == 3


def test_an_agent_without_answers_in_the_period_shows_a_dash_not_a_flat_line(client, trended, signed_in):  # noqa: F811
    long_ago = {"from": "2020-01-01", "to": "2020-01-31"}
    html = page(client, **long_ago)[1]
    row = row_of(html, "agents", "Ola")
    assert 'class="spark"' not in row and "spark-none" in row


def test_a_bot_resolved_answer_counts_under_resolved_by_bot_only(client, trended, signed_in):  # noqa: F811
    everything = page(client, **four_weeks())[1]
    assert card(everything, "responses") == "5"
    status, bot = page(client, resolved_by="bot", **four_weeks())
    assert status == 200
    assert (card(bot, "responses"), card(bot, "csat")) == ("1", "0.0%")
    assert "Robo" in section(bot, "agents") and "Ola" not in section(bot, "agents")
    assert "shipping" in section(bot, "teams") and "billing" not in section(bot, "teams")
    assert spark_of(row_of(bot, "agents", "Robo"))["points"] == 1
    assert "0% of 1 answer" in spark_of(row_of(bot, "teams", "shipping"))["label"]
    human = page(client, resolved_by="human", **four_weeks())[1]
    assert card(human, "responses") == "0"
    assert "No agent has answers under these filters" in section(human, "agents")
    assert 'selected>A bot</option>' in bot


@pytest.mark.parametrize(("query", "answers", "agents"), [
    ({"channel": "chat"}, "1", {"Robo"}),
    ({"tag": "refund"}, "1", {"Robo"}),
    ({"tag": "vip"}, "4", {"Ola", "Per"}),
    ({"organisation": "acme.no"}, "3", {"Ola"}),
    ({"organisation": "nordic.example", "channel": "chat"}, "1", {"Robo"}),
])
def test_dimension_filters_change_the_numbers_the_tables_and_the_csv(client, trended, signed_in,  # noqa: F811
                                                                     query, answers, agents):
    status, html = page(client, **query, **four_weeks())
    assert status == 200
    assert card(html, "responses") == answers
    shown = {name for name in ("Ola", "Per", "Robo") if f'<th scope="row">{name}' in section(html, "agents")}
    assert shown == agents
    for name in agents:  # a crossed filter's sparkline counts the filtered answers only
        spark = spark_of(row_of(html, "agents", name))
        assert spark["weeks"] == 4 and 1 <= spark["points"] <= 3
    href = re.search(r'id="export-csv" href="([^"]+)"', html)
    assert href
    export = client.get(href.group(1).replace("&amp;", "&"))
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert len(rows) == int(answers)
    for name, value in query.items():
        assert all(value in row[name + ("s" if name == "tag" else "")] for row in rows)
    assert f"{next(iter(query))} <strong>{next(iter(query.values()))}</strong>" in html


def test_the_form_offers_channels_resolvers_and_suggests_tags_and_organisations(client, trended, signed_in):  # noqa: F811
    html = page(client)[1]
    form = html.split('id="filters"')[1].split("</form>")[0]
    assert '<option value="chat">chat</option>' in form and '<option value="email">email</option>' in form
    assert '<option value="bot">A bot</option>' in form and '<option value="human">A person</option>' in form
    assert 'name="tag"' in form and 'list="tag-options"' in form
    tags = form.split('id="tag-options"')[1].split("</datalist>")[0]
    assert re.findall(r'value="([^"]+)"', tags) == ["vip", "refund"]  # the most answered first
    organisations = form.split('id="organisation-options"')[1].split("</datalist>")[0]
    assert re.findall(r'value="([^"]+)"', organisations)[0] == "acme.no"


@pytest.mark.parametrize(("query", "message"), [
    ({"resolved_by": "robot"}, "resolved_by: Choose human or bot"),
    ({"channel": "pigeon"}, "channel: No channel by that name"),
    ({"tag": "no-such-tag"}, "tag: No tag by that name"),
    ({"organisation": "nowhere.example"}, "organisation: No organisation by that name"),
    ({"organisation": "x" * 500}, "organisation: Longer than maximum length"),
    ({"tag": "<script>alert(1)</script>"}, "tag: No tag by that name"),
    ({"tag": "no-such-tag", "resolved_by": "robot", "from": "nope"}, "tag: No tag by that name"),
    ({"tag": "no-such-tag", "resolved_by": "robot", "from": "nope"}, "resolved_by: Choose human or bot"),
    ({"tag": "no-such-tag", "resolved_by": "robot", "from": "nope"}, "from: Not a valid date"),
])
def test_a_bad_dimension_filter_gives_a_400_page_with_a_message(client, trended, signed_in, query, message):  # noqa: F811
    status, html = page(client, **query)
    assert status == 400
    errors = html.split('id="filter-errors"')[1].split("</div>")[0]
    assert message in errors
    assert "<script>" not in errors
    assert card(html, "responses") == "5"  # the default view is shown beneath the message
    export = client.get("/dashboard/export.csv", query_string=query)
    assert export.status_code == 400 and "Cannot export" in export.get_data(as_text=True)


def test_the_sparklines_read_the_rows_rollups_in_one_pipeline_however_many_rows_and_answers(world, trended,
                                                                                           round_trips):
    first, last = (date.fromisoformat(day) for day in four_weeks().values())
    rows = {"agent": ["standard:a-7", "standard:a-8", "standard:a-9"], "team": ["billing", "shipping"]}

    def counted(filters: Facets, rows: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        before = round_trips[0]
        read = trends(world.store, first, last, filters, rows)
        return round_trips[0] - before, read

    counted(Facets(), rows)  # redis-py loads the script once
    one, _ = counted(Facets(), {"agent": ["standard:a-7"]})
    assert one <= 2  # the pipeline, and redis-py's check that its script is loaded
    many, read = counted(Facets(), rows)
    assert many == one
    assert [week.responses for week in read["agent"]["standard:a-7"].weeks] == [1, 0, 1, 1]
    for n in range(3):
        world.solved_and_answered(f"T-more-{n}", f"more{n}@acme.no", 4)
    more, read = counted(Facets(), rows)
    assert more == one
    assert [week.responses for week in read["agent"]["standard:a-7"].weeks] == [1, 0, 1, 4]
    split, read = counted(Facets(resolved_by="human"), rows)
    assert split == one
    assert all(week.responses == 0 for trend in read["agent"].values() for week in trend.weeks)

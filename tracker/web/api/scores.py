"""The leads' API for scores beyond one customer: agents, teams, sources, brands, channels, tags, organisations, the
summary and the CSV export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from itertools import chain
from typing import Any

from flask import Blueprint, Response, jsonify, stream_with_context
from marshmallow import ValidationError

from tracker.schema_cache import schema
from tracker.scores.dimensions import filtered_detail, filtered_page
from tracker.scores.ranking import KINDS
from tracker.scores.summary import iter_responses, summary
from tracker.web.api.base import filters_of, load_query, now_ms, require_key, tracker
from tracker.web.api.schemas import (
    AGGREGATE_PAGES,
    AggregateFilterQuerySchema,
    AggregateListQuerySchema,
    AggregateSchema,
    ExportQuerySchema,
    ResponseSchema,
    SummaryQuerySchema,
    SummarySchema,
)
from tracker.web.errors import envelope

bp = Blueprint("api_scores", __name__, url_prefix="/v1")
CSV_COLUMNS = ("at", "survey", "customer", "ticket", "subject", "source", "agent_id", "agent_name", "team",
               "brand", "channel", "tags", "organisation", "resolved_by", "scale", "rating", "value", "satisfied",
               "comment", "reason", "answered_via", "extra")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _list_view(kind: str) -> Any:
    @require_key()
    def listing() -> Any:
        query = load_query(AggregateListQuerySchema)
        offset = int(query["cursor"] or 0)
        rows, total = filtered_page(tracker().store, kind, now_ms(), offset, query["limit"], filters_of(query))
        following = offset + query["limit"]
        page = {f"{kind}s": rows, "next_cursor": str(following) if following < total else None}
        return jsonify(AGGREGATE_PAGES[kind]().dump(page))

    listing.__name__ = f"{kind}s"
    listing.__doc__ = f"Return every {kind} with its scores, most responses first, narrowed by the filters."
    return listing


def _detail_view(kind: str) -> Any:
    @require_key()
    def detail(ident: str) -> Any:
        query = load_query(AggregateFilterQuerySchema)
        row = filtered_detail(tracker().store, kind, ident, now_ms(), filters_of(query))
        if row is None:
            return envelope(404, f"No {kind} with that id has scores.")
        return jsonify(schema(AggregateSchema).dump(row))

    detail.__name__ = kind
    detail.__doc__ = f"Return one {kind} with its scores."
    return detail


for _kind in KINDS:
    bp.add_url_rule(f"/{_kind}s", view_func=_list_view(_kind), methods=["GET"])
    bp.add_url_rule(f"/{_kind}s/<id:ident>", view_func=_detail_view(_kind), methods=["GET"])


@bp.get("/summary")
@require_key()
def summary_view() -> Any:
    """Return the overall scores of a date range with a per-day series, a per-source split and the ratings given."""
    query = load_query(SummaryQuerySchema)
    app = tracker()
    try:
        body = summary(app.store, app.settings, now_ms(), date_from=query["date_from"], date_to=query["date_to"],
                       filters=filters_of(query))
    except ValueError as exc:
        raise ValidationError({"from": [str(exc)]}) from exc
    return jsonify(schema(SummarySchema).dump(body))


def safe_cell(value: Any) -> str:
    """Render a CSV cell that no spreadsheet will run as a formula (a leading ' defuses = + - @)."""
    text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_line(cells: Any) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([safe_cell(c) for c in cells])
    return out.getvalue()


def _csv_cells(row: dict[str, Any]) -> list[Any]:
    agent = row.get("agent") or {}
    extra = row.get("extra")
    # Tags space-separated, as helpdesks show them; extra answers as compact JSON (question id -> answer).
    flat = {**row, "agent_id": agent.get("id"), "agent_name": agent.get("name"),
            "tags": " ".join(row.get("tags") or ()),
            "extra": json.dumps(extra, separators=(",", ":"), ensure_ascii=False, sort_keys=True) if extra else ""}
    return [flat.get(column) for column in CSV_COLUMNS]


@bp.get("/export/responses.csv")
@require_key()
def export_responses() -> Any:
    """Stream every answer of a range (default: all time) as CSV, oldest first."""
    query = load_query(ExportQuerySchema)
    answers = iter_responses(tracker().store, date_from=query["date_from"], date_to=query["date_to"],
                             filters=filters_of(query))
    first = next(answers, None)  # read before answering so an unreachable store still gets its 503
    rows = schema(ResponseSchema)

    def lines() -> Iterator[str]:
        yield csv_line(CSV_COLUMNS)
        for answer in chain([first] if first else [], answers):
            yield csv_line(_csv_cells(rows.dump(answer)))

    name = f"responses-{query['date_from'] or 'start'}-{query['date_to'] or 'now'}.csv"
    return Response(stream_with_context(lines()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})

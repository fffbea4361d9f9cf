"""The leads' API for recovery cases: list them (overdue first), read one, and work it (PATCH)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request
from marshmallow import ValidationError

from tracker.cases.schemas import (
    UNASSIGNED,
    CaseListQuerySchema,
    CasePageSchema,
    CasePatchSchema,
    CaseSchema,
    case_json,
)
from tracker.cases.work import CaseNotFound, InvalidChange, update_case
from tracker.schema_cache import schema
from tracker.store.cases import UNASSIGNED as STORE_UNASSIGNED
from tracker.web.api.base import load_query, now_ms, require_key, tracker
from tracker.web.errors import envelope

bp = Blueprint("api_cases", __name__, url_prefix="/v1")


def _unknown_case() -> Any:
    return envelope(404, "No case with that id.")


@bp.get("/cases")
@require_key()
def cases() -> Any:
    """Return a page of cases: open and contacted ones first (soonest due, so overdue, first), then closed ones."""
    query = load_query(CaseListQuerySchema)
    app, now = tracker(), now_ms()
    owner = STORE_UNASSIGNED if query["owner"] == UNASSIGNED else query["owner"]
    found, following = app.store.case_page(owner, query["status"], now if query["overdue"] else None,
                                           query["limit"], query["cursor"])
    page = {"cases": [case_json(case, now) for case in found], "next_cursor": following}
    return jsonify(schema(CasePageSchema).dump(page))


@bp.get("/cases/<path:case_id>")
@require_key()
def case(case_id: str) -> Any:
    """Return one case."""
    found = tracker().store.case(case_id)
    if found is None:
        return _unknown_case()
    return jsonify(schema(CaseSchema).dump(case_json(found, now_ms())))


@bp.patch("/cases/<path:case_id>")
@require_key("admin")
def patch_case(case_id: str) -> Any:
    """Change a case's status (transitions checked), add a note, set its owner or outcome: a change, so a key of the
    admin scope (a read-only key reads cases, never works them)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return envelope(400, "The body must be a JSON object: {status, note (or notes), owner, outcome}.")
    change = schema(CasePatchSchema).load(body)  # a ValidationError is the API's 422 envelope
    app, now = tracker(), now_ms()
    try:
        updated = update_case(app.store, app.settings, case_id, now, str(g.api_key), **change)
    except CaseNotFound:
        return _unknown_case()
    except InvalidChange as exc:
        raise ValidationError({exc.field: [str(exc)]}) from exc
    return jsonify(schema(CaseSchema).dump(case_json(updated, now)))

"""The OpenAPI document of the leads' API, generated from the marshmallow schemas with apispec."""

from __future__ import annotations

from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from tracker.cases.schemas import CaseListQuerySchema, CasePageSchema, CasePatchSchema, CaseSchema
from tracker.notify.deliveries import DeliveryPageSchema, DeliveryQuerySchema
from tracker.scores.ranking import KINDS
from tracker.web.api.schemas import (
    AGGREGATE_PAGES,
    AggregateFilterQuerySchema,
    AggregateListQuerySchema,
    AggregateSchema,
    CardQuerySchema,
    CustomerExportSchema,
    CustomerListQuerySchema,
    CustomerPageSchema,
    ErasureSchema,
    ErrorSchema,
    ExportQuerySchema,
    ResponseListQuerySchema,
    ResponsePageSchema,
    ScoreCardSchema,
    SummaryQuerySchema,
    SummarySchema,
    TimelineQuerySchema,
    TimelineSchema,
)

ERRORS = {
    400: "The body is not a JSON object.",
    401: "No key, or not a valid one.",
    403: "The key lacks the scope this needs.",
    404: "Nothing with that id.",
    422: "A query parameter is not valid; `errors` names it.",
    429: "Over the key's requests a minute; wait `Retry-After` seconds.",
    503: "Storage unreachable; try again after `Retry-After` seconds.",
}
# Ids in paths: anything without a slash that is not only dots (which a client would resolve away).
PATH_ID = {"type": "string", "minLength": 1, "maxLength": 320, "pattern": r"^[^/]*[^/.][^/]*$"}
DESCRIPTION = (
    "The support leads' API. Every path needs `Authorization: Bearer <api key>`; erasure, a customer's export "
    "and working a case need a key with the `admin` scope. Each key may make `TRACKER_API_RATE_LIMIT` requests "
    "a minute (429 with `Retry-After` "
    "past that). Errors share one envelope: `{code, status, message, errors}`."
)


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"in": "path", "name": name, "required": True, "description": description, "schema": PATH_ID}


def _operation(summary: str, body: type[Schema] | dict[str, Any], query: type[Schema] | None = None,
               path: dict[str, Any] | None = None, errors: tuple[int, ...] = (401, 403, 404, 422, 429, 503),
               content_type: str = "application/json", tag: str = "scores") -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "OK", "content": {content_type: {"schema": body}}}}
    for code in errors:
        entry: dict[str, Any] = {"description": ERRORS[code],
                                 "content": {"application/json": {"schema": "Error"}}}
        if code in (429, 503):
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
        responses[str(code)] = entry
    parameters: list[dict[str, Any]] = [path] if path else []
    if query is not None:
        parameters.append({"in": "query", "schema": query})
    return {"summary": summary, "tags": [tag], "parameters": parameters, "responses": responses}


def build_spec() -> APISpec:
    """Describe every /api/v1 path, its parameters and its answers."""
    spec = APISpec(title="Satisfaction tracker API", version="1", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()], info={"description": DESCRIPTION},
                   security=[{"bearer": []}], servers=[{"url": "/"}])
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", schema=ErrorSchema)
    email = _path_param("email", "the customer's email address (case does not matter)")
    spec.path("/api/v1/customers", operations={"get": _operation(
        "A ranked page of customers' score cards; under filters, the customers with answers that pass them, each "
        "with the card under the same filters (read from the answers kept)", CustomerPageSchema,
        CustomerListQuerySchema, tag="customers")})
    spec.path("/api/v1/customers/{email}", operations={
        "get": _operation("A customer's score card; under filters, of their answers and sent surveys that pass them "
                          "(orders and at_risk stay the whole customer's)", ScoreCardSchema, CardQuerySchema,
                          path=email, tag="customers"),
        "delete": _operation("Erase everything about a customer (GDPR); admin scope", ErasureSchema, path=email,
                             errors=(401, 403, 404, 429, 503), tag="customers")})
    spec.path("/api/v1/customers/{email}/export", operations={"get": _operation(
        "Everything held about a customer (a data-access request); admin scope", CustomerExportSchema,
        path=email, errors=(401, 403, 404, 429, 503), tag="customers")})
    spec.path("/api/v1/customers/{email}/responses", operations={"get": _operation(
        "A customer's answers, newest first, with follow-up reasons and extra answers", ResponsePageSchema,
        ResponseListQuerySchema, email, tag="customers")})
    spec.path("/api/v1/customers/{email}/timeline", operations={"get": _operation(
        "A page of a customer's tickets, orders, surveys and answers in time order", TimelineSchema,
        TimelineQuerySchema, email, tag="customers")})
    for kind in KINDS:
        spec.path(f"/api/v1/{kind}s", operations={"get": _operation(
            f"Every {kind} with its scores, most responses first; resolved_by from the split rollups, another "
            "dimension's filter from the answers", AGGREGATE_PAGES[kind], AggregateListQuerySchema,
            errors=(401, 403, 422, 429, 503))})
        spec.path(f"/api/v1/{kind}s/{{id}}", operations={"get": _operation(
            f"One {kind} with its scores, narrowed by the filters (404 when it counts nothing under them)",
            AggregateSchema, AggregateFilterQuerySchema,
            path=_path_param("id", f"the {kind}'s id" + (" (<source>:<agent id>)" if kind == "agent" else "")
                             + (": the source's organisation, else the address's domain" if kind == "organisation"
                                else "")))})
    spec.path("/api/v1/summary", operations={"get": _operation(
        "Overall scores of a date range, a per-day series, a per-source split and the ratings given",
        SummarySchema, SummaryQuerySchema, errors=(401, 403, 422, 429, 503))})
    spec.path("/api/v1/export/responses.csv", operations={"get": _operation(
        "Every answer of a date range as CSV, oldest first", {"type": "string"}, ExportQuerySchema,
        errors=(401, 403, 422, 429, 503), content_type="text/csv")})
    spec.path("/api/v1/deliveries", operations={"get": _operation(
        "The newest delivery attempts of notices (event URLs, write-back, cases) and how each ended, newest first",
        DeliveryPageSchema, DeliveryQuerySchema, errors=(401, 403, 422, 429, 503), tag="deliveries")})
    _case_paths(spec)
    return spec


def _case_paths(spec: APISpec) -> None:
    """Describe the recovery cases' paths (SPEC.md §11)."""
    spec.path("/api/v1/cases", operations={"get": _operation(
        "A page of recovery cases: open and contacted first (overdue first, then by due time), then closed",
        CasePageSchema, CaseListQuerySchema, errors=(401, 403, 422, 429, 503), tag="cases")})
    case_id = _path_param("id", "the case id (c<bucket>-<survey id>)")
    patch = _operation("Work a case: status (transitions checked), a note, owner (null: none), outcome; admin scope",
                       CaseSchema, path=case_id, errors=(400, 401, 403, 404, 422, 429, 503), tag="cases")
    patch["requestBody"] = {"required": True, "content": {"application/json": {"schema": CasePatchSchema}}}
    spec.path("/api/v1/cases/{id}", operations={
        "get": _operation("One recovery case", CaseSchema, path=case_id, errors=(401, 403, 404, 429, 503),
                          tag="cases"),
        "patch": patch})


def _plain_query(parameter: dict[str, Any]) -> None:
    # An absent query parameter is how a default is asked for; "null" is not a value a query can carry.
    schema = parameter.get("schema", {})
    if parameter.get("in") == "query":
        schema.pop("nullable", None)
        if schema.get("default", 0) is None:
            del schema["default"]
        if "enum" in schema:
            schema["enum"] = [v for v in schema["enum"] if v is not None]


@cache
def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document as a dict (built once per process)."""
    document = build_spec().to_dict()
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                _plain_query(parameter)
    return document

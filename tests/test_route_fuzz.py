"""Every route of the app, with odd and real path values, query strings and bodies, signed in and not.

Schemathesis fuzzes the API from its OpenAPI document and test_adapter_fuzz every source's payloads; this walks
every other door too (the dashboard and its forms, the survey and unsubscribe pages with real tokens, inbound mail,
static files), with values drawn from odd ones and from what the loop made (addresses, agents, survey tokens, cases).
An odd request is a 4xx that says what was wrong, never a 5xx; the slot guard (conftest) fails it for any command
that would cross a cluster's slots: that is how a blank address erased through the API was found sweeping every
customer's logged events.
"""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from tests.support import World, zendesk_body
from tests.test_cases import answer_data, deliver
from tests.test_dashboard import csrf_of, sign_in
from tracker.config import load_settings
from tracker.web.app import create_app

TRIES = 25  # requests a route and method, signed in and not
ODD = ["", "0", "-1", "99999999999999999999999", "1e308", "nan", "x" * 5000, "\x00", "%", "%ff", "é", "\u202e",
       "2026-13-45", "2026-02-30", "9999-12-31", "0001-01-01", "[]", "{}", "null", "true", "<script>", "../..",
       "KARI@EXAMPLE.NO", "zendesk:", ":", "a:b:c", " ", "1,2", "a=b", "csat5", "nps", "open", "closed", "-score",
       "value", "1", "2", "5", "10", "0.5", "on"]
PARAMS = ["from", "to", "team", "agent", "channel", "tag", "source", "brand", "scale", "sort", "order", "limit",
          "offset", "cursor", "q", "status", "owner", "at_risk", "rating", "resolved_by", "organisation", "customer",
          "reason", "overdue", "comment", "skip", "email", "key", "outcome", "note", "name", "extra", "confirm"]
BODIES = ["form", "json", "raw", "none"]
CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=x", "message/rfc822"]


@pytest.fixture
def made(world: World, store: Any, settings: Any, smtp: Any) -> tuple[Any, str, list[str]]:
    """The app over what the loop made: answers (one unhappy, and its case), an order, an unanswered survey; with an
    admin key and the real values its routes take."""
    unhappy = world.solved_and_answered("T-1", "kari@example.no", 1, comment="slow")
    deliver(store, settings, answer_data(unhappy, "kari@example.no", 1, False))  # the notice that opens its case
    world.solved_and_answered("T-2", "per@example.no", 5, scale="nps", agent=None, team="")
    world.event(zendesk_body("901", "liv@example.no"), source="zendesk")
    world.send("ces7")
    world.order("O-1", "per@example.no", "120.50")
    app = create_app(load_settings({**world.env, "TRACKER_API_RATE_LIMIT": "0"}), store, enqueue=lambda task: None)
    key = store.create_key("fuzzer")
    real = ["kari@example.no", "per@example.no", "liv@example.no", "standard:a-7", "billing", "zendesk", "standard"]
    for message in smtp.messages:
        real += re.findall(r"/[su]/([A-Za-z0-9_.-]+)", message.get_body(("plain",)).get_content())
    cases = app.test_client().get("/api/v1/cases", headers={"Authorization": f"Bearer {key}"}).json["cases"]
    assert cases and len(real) > 10  # a case, survey and unsubscribe tokens to reach the pages behind them
    return app, key, real + [case["id"] for case in cases]


def _request(rng: random.Random, path: str, key: str | None, token: str) -> dict[str, Any]:
    kind = rng.choice(BODIES)
    request: dict[str, Any] = {
        "path": path, "query_string": {rng.choice(PARAMS): rng.choice(ODD) for _ in range(rng.randint(0, 4))},
        "headers": {"Authorization": f"Bearer {key}"} if key else {}}
    if kind == "form":
        request["data"] = {rng.choice(PARAMS): rng.choice(ODD) for _ in range(rng.randint(0, 5))}
        if rng.random() < 0.8:
            request["data"]["csrf_token"] = token
    elif kind == "json":
        request["json"] = rng.choice([{}, [], None, 1, "x", {p: rng.choice(ODD) for p in rng.sample(PARAMS, 6)}])
    elif kind == "raw":
        request["data"] = rng.randbytes(rng.randint(0, 300))
        request["content_type"] = rng.choice(CONTENT_TYPES)
    return request


@pytest.mark.timeout(300)
def test_no_route_answers_any_odd_request_with_a_server_error(made: tuple[Any, str, list[str]]) -> None:
    app, key, real = made
    rng = random.Random(20261205)
    problems: list[str] = []
    seen: dict[int, int] = {}
    for signed in (False, True):
        client = app.test_client()
        if signed:
            assert sign_in(client, key).status_code == 303
        token = csrf_of(client.get("/dashboard" if signed else "/dashboard/login"))
        for rule in app.url_map.iter_rules():
            for method in sorted(rule.methods - {"OPTIONS"}):
                values = rng.sample(real + ODD, len(real + ODD))  # each at least once where a path takes one
                for i in range(max(TRIES, len(values)) if rule.arguments else TRIES):
                    path = rule.rule
                    for n, arg in enumerate(rule.arguments):
                        value = (values[i % len(values)] if n == 0 else rng.choice(values)) or "x"
                        path = re.sub(rf"<(?:[a-z]+:)?{arg}>", value.replace("/", "%2F"), path)
                    request = _request(rng, path, key if signed else None, token)
                    response = client.open(method=method, **request)
                    response.close()
                    seen[response.status_code] = seen.get(response.status_code, 0) + 1
                    answer = response.get_json(silent=True) if response.is_json else None
                    if response.status_code >= 500 and response.status_code != 503:
                        problems.append(f"{method} {request!r:.300}: {response.status_code} {response.data[:300]!r}")
                    elif path.startswith("/api/") and method != "HEAD" and response.status_code >= 400 and not (
                            isinstance(answer, dict) and answer.get("code") == response.status_code
                            and answer.get("message")):
                        problems.append(f"{method} {request!r:.300}: {response.status_code} without the envelope")
    assert not problems, "\n".join(problems[:40])
    assert {200, 303, 400, 401, 404, 422} <= set(seen), seen  # the doors were reached, not only knocked at

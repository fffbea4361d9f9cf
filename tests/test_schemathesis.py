"""Schemathesis against /api/openapi.json of the real app: no request gets a 500 or an answer off its schema."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.support import World, zendesk_body
from tracker.config import load_settings
from tracker.web.app import create_app

EXAMPLES = 25


@pytest.fixture
def fuzzed_app(post_event: Any, store: Any, env: dict[str, str], smtp: Any, client: Any) -> Any:
    """The real app over real Redis with a few customers, agents and answers made through the loop."""
    world = World(post_event, store, env, smtp, client)
    world.solved_and_answered("T-1", "kari@example.no", 5, comment="=1+1, fine")
    world.solved_and_answered("T-2", "per@example.no", 1, scale="nps", agent=None, team="")
    world.event(zendesk_body("901", "liv@example.no"), source="zendesk")
    world.send("ces7")
    world.answer("liv@example.no", 3)
    world.order("O-1", "per@example.no", "120.50")
    return create_app(load_settings({**env, "TRACKER_API_RATE_LIMIT": "0"}), store, enqueue=lambda task: None)


@pytest.fixture
def admin_auth(store: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {store.create_key('fuzzer')}"}


# The pytest plugin's lazy loader (`schemathesis.pytest.from_fixture`) breaks on pytest 9, so each
# operation's Hypothesis strategy is driven here directly, positive and negative data alike.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_gets_a_server_error_or_an_answer_off_its_schema(fuzzed_app, admin_auth, mode):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", fuzzed_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 26  # with the channels, tags and organisations (list and detail each)
    calls: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy(mode))
        @hypothesis_settings(max_examples=EXAMPLES, deadline=None, database=None,
                             suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            response = case.call_and_validate(headers=admin_auth,
                                              checks=[not_a_server_error, response_schema_conformance])
            calls.append(response.status_code)

        check()
    assert 200 in calls and 422 in calls and 404 in calls

"""The report dimensions the adapters fill (SPEC §12): the customer's organisation and who resolved the ticket.

Each vendor's documented payloads (tests/fixtures/<source>/) say what comes out; these tests pin the rules
around them: what stays unset, what a bot or a person resolved, and that a wrong-typed organisation field is
a clear 422 or left out, never a 500.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from tests.signing import signed
from tests.support import vendor_fixture, vendor_fixtures
from tracker.config import Settings, load_settings
from tracker.ingest.zendesk import enrich
from tracker.model import Customer, Event, Ticket
from tracker.store import Store
from webhooks.adapters import ADAPTERS
from webhooks.adapters.base import Delivery, IgnoredEvent, Inbound, PayloadError

# The fixtures whose vendor payload names an organisation or says who resolved; every other accepted fixture
# must leave both unset.
CARRYING = {
    "chatwoot/conversation_status_changed__resolved_by_bot",
    "chatwoot/conversation_status_changed__resolved_from_pending",
    "freshdesk/resolved__company", "freshdesk/resolved__simple_mode_company",
    "intercom/conversation.admin.closed__fin_handed_over", "intercom/conversation.admin.closed__fin_resolved",
    "jira/issue_updated__resolved", "jira/issue_updated__resolved_by_automation",
    "jira/issue_updated__resolved_email_hidden", "shopify/orders_create__company",
    "woocommerce/order.created__company", "zendesk/solved__organization",
}


def changed_body(fixture: Any, change: dict[tuple[Any, ...], Any]) -> bytes:
    """Return a recorded delivery's JSON body with the values at the given paths replaced."""
    body = fixture.json()
    for path, value in change.items():
        target = body
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
    return json.dumps(body).encode()


def parse(source: str, name: str, change: dict[tuple[Any, ...], Any] | None = None) -> Delivery:
    """Parse a recorded vendor delivery, with the values at the given paths replaced."""
    fixture = vendor_fixture(source, name)
    raw = changed_body(fixture, change) if change else fixture.body
    headers, query = signed(source, raw, headers=fixture.headers)
    return ADAPTERS[source].parse(Inbound(raw, headers, query, 0.0))


def only_event(delivery: Delivery) -> Event:
    (event,) = delivery.events
    return event


def organisation(delivery: Delivery) -> str | None:
    return only_event(delivery).customer.organisation


def resolved_by(delivery: Delivery) -> str | None:
    ticket = only_event(delivery).ticket
    assert ticket is not None
    return ticket.resolved_by


def accepted(fixture_id: str) -> bool:
    source, name = fixture_id.split("/", 1)
    try:
        parse(source, name)
    except (IgnoredEvent, PayloadError):
        return False
    return True


PLAIN = sorted(f.id for f in vendor_fixtures() if f.id not in CARRYING and accepted(f.id))


@pytest.mark.parametrize("fixture_id", PLAIN)
def test_a_delivery_that_names_no_organisation_and_no_resolver_leaves_both_unset(fixture_id: str) -> None:
    source, name = fixture_id.split("/", 1)
    for event in parse(source, name).events:
        assert event.customer.organisation is None
        assert event.ticket is None or event.ticket.resolved_by is None


# --- organisation -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "name", "path"), [
    ("zendesk", "solved__organization", ("ticket", "organization")),
    ("freshdesk", "resolved__company", ("company", "name")),
    ("freshdesk", "resolved__simple_mode_company", ("freshdesk_webhook", "ticket_company_name")),
    ("intercom", "conversation.admin.closed__fin_resolved", ("data", "item", "company", "name")),
    ("chatwoot", "conversation_status_changed__resolved_by_bot",
     ("meta", "sender", "additional_attributes", "company_name")),
    ("shopify", "orders_create__company", ("billing_address", "company")),
    ("woocommerce", "order.created__company", ("billing", "company")),
])
@pytest.mark.parametrize("blank", ["", "   ", "{{ticket.organization.name}}", None])
def test_a_blank_or_unrendered_organisation_is_no_organisation(source: str, name: str, path: tuple[str, ...],
                                                                blank: str | None) -> None:
    assert organisation(parse(source, name, {path: blank})) is None


def test_an_organisation_name_is_kept_as_the_vendor_spells_it_without_surrounding_space() -> None:
    delivery = parse("zendesk", "solved__organization", {("ticket", "organization"): "  Nordmann & Co. AS \n"})
    assert organisation(delivery) == "Nordmann & Co. AS"


# A wrong-typed organisation field: a declared vendor field is a 422 naming it; a value inside a free-form
# object the adapter only reads from (Intercom's company, Chatwoot's additional attributes) is left out.
WRONG_TYPES: list[tuple[str, str, tuple[Any, ...], Any, dict[str, Any] | None]] = [
    ("zendesk", "solved__organization", ("ticket", "organization"), 42,
     {"ticket": {"organization": ["Not a valid string."]}}),
    ("zendesk", "solved__organization", ("ticket", "organization"), {"name": "Acme"},
     {"ticket": {"organization": ["Not a valid string."]}}),
    ("freshdesk", "resolved__company", ("company", "name"), ["Acme"], {"company": {"name": ["Not a valid string."]}}),
    ("freshdesk", "resolved__company", ("company",), "Acme", {"company": {"_schema": ["Invalid input type."]}}),
    ("freshdesk", "resolved__simple_mode_company", ("freshdesk_webhook", "ticket_company_name"), 7,
     {"company": {"name": ["Not a valid string."]}}),
    ("intercom", "conversation.admin.closed__fin_resolved", ("data", "item", "company", "name"), 7, None),
    ("intercom", "conversation.admin.closed__fin_resolved", ("data", "item", "company"), "Blue Sun",
     {"data": {"item": {"company": ["Not a valid mapping type."]}}}),
    ("chatwoot", "conversation_status_changed__resolved_by_bot",
     ("meta", "sender", "additional_attributes", "company_name"), ["Acme Inc"], None),
    ("chatwoot", "conversation_status_changed__resolved_by_bot", ("meta", "sender", "additional_attributes"),
     "Acme Inc", None),
    ("shopify", "orders_create__company", ("billing_address", "company"), 7,
     {"billing_address": {"company": ["Not a valid string."]}}),
    ("shopify", "orders_create__company", ("billing_address",), "Shipping Company",
     {"billing_address": {"_schema": ["Invalid input type."]}}),
    ("woocommerce", "order.created__company", ("billing", "company"), {"name": "Acme"},
     {"billing": {"company": ["Not a valid string."]}}),
]


@pytest.mark.parametrize(("source", "name", "path", "value", "errors"), WRONG_TYPES)
def test_a_wrong_typed_organisation_is_a_422_naming_the_field_or_is_left_out(
        source: str, name: str, path: tuple[Any, ...], value: Any, errors: dict[str, Any] | None) -> None:
    if errors is None:
        assert organisation(parse(source, name, {path: value})) is None
        return
    with pytest.raises(PayloadError) as raised:
        parse(source, name, {path: value})
    assert (raised.value.status, raised.value.errors) == (422, errors)


@pytest.mark.parametrize(("source", "name", "path", "value", "errors"), WRONG_TYPES)
def test_a_wrong_typed_organisation_over_http_is_accepted_or_a_422_never_a_500(
        client: Any, source: str, name: str, path: tuple[Any, ...], value: Any, errors: dict[str, Any] | None) -> None:
    fixture = vendor_fixture(source, name)
    raw = changed_body(fixture, {path: value})
    headers, query = signed(source, raw, headers=fixture.headers)
    response = client.post(f"/webhooks/{source}", data=raw, query_string=query,
                           headers={"Content-Type": "application/json", **headers})
    if errors is None:
        assert response.status_code == 202, response.data[:300]
    else:
        assert (response.status_code, response.json["errors"]) == (422, errors)


# --- resolved_by --------------------------------------------------------------------------------------------

FIN = ("data", "item")


def fin(change: dict[str, Any]) -> Delivery:
    return parse("intercom", "conversation.admin.closed__fin_resolved", {(*FIN, key): v for key, v in change.items()})


def test_a_conversation_fin_resolved_unassigned_is_resolved_by_a_bot() -> None:
    assert resolved_by(fin({})) == "bot"
    confirmed = {"resolution_state": "confirmed_resolution", "source_type": "workflow"}
    assert resolved_by(fin({"ai_agent": confirmed})) == "bot"


def test_a_conversation_fin_handed_to_the_team_and_closed_by_its_admin_is_resolved_by_a_human() -> None:
    assert resolved_by(parse("intercom", "conversation.admin.closed__fin_handed_over")) == "human"
    escalated = {"resolution_state": "escalated"}  # the newer name of routed_to_team
    assert resolved_by(fin({"ai_agent": escalated, "admin_assignee_id": 991267})) == "human"


@pytest.mark.parametrize("change", [
    {"ai_agent_participated": False},
    {"ai_agent_participated": None, "ai_agent": None},
    {"ai_agent": {"resolution_state": "abandoned"}},
    {"ai_agent": {"resolution_state": None}},
    {"admin_assignee_id": 991267},  # Fin's answer was assumed good, but a teammate holds the conversation
    {"ai_agent": {"resolution_state": "routed_to_team"}},  # handed over, yet no teammate took it
])
def test_an_intercom_conversation_says_nothing_of_its_resolver_unless_fin_plainly_resolved_or_handed_over(
        change: dict[str, Any]) -> None:
    assert resolved_by(fin(change)) is None


def test_an_intercom_ai_agent_that_is_not_an_object_is_a_422() -> None:
    with pytest.raises(PayloadError) as raised:
        fin({"ai_agent": "assumed_resolution"})
    assert raised.value.errors == {"data": {"item": {"ai_agent": ["Not a valid mapping type."]}}}


def test_an_intercom_assignment_never_says_who_resolved() -> None:
    fixture = vendor_fixture("intercom", "conversation.admin.closed__fin_resolved")
    body = fixture.json()
    body["topic"] = "conversation.admin.assigned"
    raw = json.dumps(body).encode()
    headers, query = signed("intercom", raw, headers=fixture.headers)
    event = only_event(ADAPTERS["intercom"].parse(Inbound(raw, headers, query, 0.0)))
    assert event.type == "ticket.updated"
    assert event.ticket is not None and event.ticket.resolved_by is None


def test_a_chatwoot_conversation_resolved_by_its_agent_bot_has_no_agent() -> None:
    event = only_event(parse("chatwoot", "conversation_status_changed__resolved_by_bot"))
    assert event.ticket is not None
    assert (event.ticket.resolved_by, event.ticket.agent) == ("bot", None)


HUMAN = {"id": 1, "name": "John", "type": "user", "email": "john@acme.inc"}


@pytest.mark.parametrize("change", [
    # An agent held it: Chatwoot does not say who pressed resolve.
    {("meta", "assignee"): HUMAN, ("meta", "assignee_type"): "User"},
    # Pending, then resolved, but an agent is assigned (an agent may also mark a conversation pending).
    {("meta", "assignee"): HUMAN, ("meta", "assignee_type"): None},
    # From open, with no one assigned.
    {("meta", "assignee"): None, ("meta", "assignee_type"): None,
     ("changed_attributes",): [{"status": {"previous_value": "open", "current_value": "resolved"}}]},
])
def test_a_chatwoot_conversation_not_held_by_a_bot_says_nothing_of_its_resolver(
        change: dict[tuple[Any, ...], Any]) -> None:
    assert resolved_by(parse("chatwoot", "conversation_status_changed__resolved_by_bot", change)) is None


def test_a_chatwoot_conversation_a_bot_holds_but_that_is_not_resolved_says_nothing_of_a_resolver() -> None:
    reopened = {("status",): "open",
                ("changed_attributes",): [{"status": {"previous_value": "resolved", "current_value": "open"}}]}
    event = only_event(parse("chatwoot", "conversation_status_changed__resolved_by_bot", reopened))
    assert event.type == "ticket.reopened"
    assert event.ticket is not None and event.ticket.resolved_by is None


@pytest.mark.parametrize(("account_type", "expected"), [
    ("app", "bot"), ("atlassian", "human"), ("customer", None), ("unknown", None), (None, None), (7, None),
])
def test_a_jira_resolution_is_a_bots_when_an_app_account_made_it_and_a_humans_when_a_person_did(
        account_type: Any, expected: str | None) -> None:
    delivery = parse("jira", "issue_updated__resolved_by_automation", {("user", "accountType"): account_type})
    assert resolved_by(delivery) == expected


def test_a_jira_reopen_never_says_who_resolved() -> None:
    delivery = parse("jira", "issue_updated__reopened")
    assert only_event(delivery).type == "ticket.reopened"
    assert resolved_by(delivery) is None


def test_a_jira_event_whose_user_is_not_an_object_is_a_422() -> None:
    with pytest.raises(PayloadError) as raised:
        parse("jira", "issue_updated__resolved_by_automation", {("user",): "Automation for Jira"})
    assert raised.value.errors == {"user": ["Not a valid mapping type."]}


# --- the Zendesk API fills the organisation the event subscription names by id only -------------------------

PATH = "/api/v2/users/show_many.json"
KARI = {"id": 381203941, "name": "Kari Nordmann", "email": "kari@example.no", "locale": "nb", "active": True,
        "organization_id": 57542, "role": "end-user"}
PER = {"id": 381203942, "name": "Per Hansen", "email": "per@example.no", "locale": "nn", "active": True,
       "organization_id": None, "role": "end-user"}
# The organization side-load as Zendesk's Organizations API shows an organization.
ORGS = [{"id": 57542, "url": "https://acme.zendesk.com/api/v2/organizations/57542.json", "name": "Nordmann Regnskap AS",
         "shared_tickets": False, "shared_comments": False, "external_id": None, "domain_names": ["nordmann.no"],
         "tags": [], "organization_fields": {}}]


@pytest.fixture
def zendesk(env: dict[str, str], httpserver: HTTPServer) -> Settings:
    return load_settings({**env, "TRACKER_ZENDESK_URL": httpserver.url_for("").rstrip("/"),
                          "TRACKER_ZENDESK_EMAIL": "admin@acme.test", "TRACKER_ZENDESK_TOKEN": "tok"})


def ids_only(customer: str) -> Event:
    """Build an event as the adapter makes it from a ticket.status_changed subscription: the customer by id."""
    return Event("ticket.solved", f"evt-{customer}", "zendesk", 1795860000123, Customer(id=customer),
                 ticket=Ticket("1001", status="solved"))


def test_the_zendesk_look_up_fills_the_customers_organisation_from_the_same_call(
        zendesk: Settings, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, query_string={"ids": "381203941,381203942", "include": "organizations"}) \
        .respond_with_json({"users": [KARI, PER], "organizations": ORGS, "next_page": None, "count": 2})
    kari, per = enrich([ids_only("381203941"), ids_only("381203942")], zendesk, store)
    assert kari.customer.organisation == "Nordmann Regnskap AS"
    assert per.customer == Customer(id="381203942", email="per@example.no", name="Per Hansen", locale="nn")
    assert len(httpserver.log) == 1
    # Cached with the user: a second event needs no call.
    (again,) = enrich([ids_only("381203941")], zendesk, store)
    assert again.customer.organisation == "Nordmann Regnskap AS"
    assert len(httpserver.log) == 1


@pytest.mark.parametrize("organizations", [None, [], "Nordmann", [{"id": 57542}], [{"id": 57542, "name": 7}]])
def test_a_zendesk_answer_without_a_usable_organization_side_load_still_fills_the_rest(
        zendesk: Settings, store: Store, httpserver: HTTPServer, organizations: Any) -> None:
    answer: dict[str, Any] = {"users": [KARI], "next_page": None, "count": 1}
    if organizations is not None:
        answer["organizations"] = organizations
    httpserver.expect_request(PATH).respond_with_json(answer)
    (kari,) = enrich([ids_only("381203941")], zendesk, store)
    assert kari.customer == Customer(id="381203941", email="kari@example.no", name="Kari Nordmann", locale="nb")


def test_an_organisation_the_trigger_body_names_is_not_overwritten_by_the_look_up(
        zendesk: Settings, store: Store, httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json({"users": [KARI], "organizations": ORGS})
    given = replace(ids_only("381203941"), customer=Customer(id="381203941", organisation="Acme Holding"))
    (kari,) = enrich([given], zendesk, store)
    assert (kari.customer.email, kari.customer.organisation) == ("kari@example.no", "Acme Holding")


def test_an_organisation_name_longer_than_any_real_one_is_cut_and_the_delivery_kept() -> None:
    from webhooks.adapters.base import ORGANISATION_MAX, vendor_text

    assert vendor_text("  Nordmann Regnskap AS ") == "Nordmann Regnskap AS"
    assert vendor_text("A" * 5000) == "A" * ORGANISATION_MAX

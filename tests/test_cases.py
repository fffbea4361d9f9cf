"""Recovery cases (SPEC.md §11) through the real store, the cases target, the API, the CLI and the dashboard."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tracker.cases.target import case_targets
from tracker.cases.work import update_case
from tracker.config import load_settings
from tracker.events import iso_from_ms
from tracker.notify.events import Notice, notice_from_entry
from tracker.notify.targets import DispatchContext
from tracker.store import keys

HOUR_MS = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


def answer_data(sid: str, email: str, rating: int, satisfied: bool, *, at_ms: int | None = None,
                agent: str | None = "a-7", team: str | None = "Billing", ticket: str = "T-1",
                comment: str = "Slow") -> dict[str, Any]:
    """The data of a survey.answered notice (CONTRACT.md)."""
    return {
        "survey": {"id": sid, "scale": "csat5", "ticket": ticket, "source": "standard",
                   "ticket_key": f"standard:{ticket}", "agent": {"id": agent, "name": "Ola"} if agent else None,
                   "team": team, "brand": None, "subject": "Where is my order?", "sent_at": iso_from_ms(now_ms())},
        "answer": {"rating": rating, "scale": "csat5", "label": "Bad", "satisfied": satisfied, "comment": comment,
                   "reason": None, "answered_at": iso_from_ms(at_ms or now_ms())},
        "customer": {"email": email, "name": "Kari"},
    }


def deliver(store, settings, data: dict[str, Any], type_: str = "survey.answered", at: int | None = None) -> Any:
    target = case_targets(settings)[0]
    notice = Notice(id=f"{type_}:{data['survey']['id']}:1", type=type_, customer=data["customer"]["email"],
                    at_ms=now_ms(), data=data)
    assert target.name == "cases" and target.wants(notice)
    return target.deliver(notice, DispatchContext(store, settings, at or now_ms(), None))  # type: ignore[arg-type]


def notices(store, email: str) -> list[Notice]:
    entries = store.redis.xrange(keys.notices(keys.bucket_of(email)))
    return [notice_from_entry(entry_id, fields) for entry_id, fields in entries]


SID = "abcdefghijklmnopqrst"
SID2 = "bcdefghijklmnopqrstu"


@pytest.fixture
def owned(env) -> Any:
    return load_settings({**env, "TRACKER_CASE_OWNERS": "billing=lead@acme.test,agent:a-9=kim@acme.test",
                          "TRACKER_CASE_DUE_HOURS": "24"})


@pytest.fixture
def auth(store) -> dict[str, str]:
    return {"Authorization": f"Bearer {store.create_key('lead')}"}


# Opening and recovering through the target ------------------------------------------------------------------

def test_an_unsatisfied_answer_opens_one_case_with_owner_due_time_and_a_case_opened_notice(store, owned):
    answered = now_ms() - HOUR_MS
    outcome = deliver(store, owned, answer_data(SID, "Kari@Example.no", 1, False, at_ms=answered))
    assert outcome.status == "delivered"
    again = deliver(store, owned, answer_data(SID, "kari@example.no", 1, False, at_ms=answered))
    assert again.status == "delivered"
    cid = keys.case_id(SID, "kari@example.no")
    case = store.case(cid)
    assert case is not None and case.status == "open" and case.customer == "kari@example.no"
    assert case.owner == "lead@acme.test" and case.ticket == "standard:T-1" and case.rating == 1
    assert case.due_at_ms == case.opened_at_ms + 24 * HOUR_MS and case.opened_at_ms // 1000 == answered // 1000
    found, _ = store.case_page(None, None, None, 50, None)
    assert [c.id for c in found] == [cid]
    opened = [n for n in notices(store, "kari@example.no") if n.type == "case.opened"]
    assert len(opened) == 1 and opened[0].id == f"case.opened:{cid}"
    assert opened[0].data["case"]["id"] == cid and opened[0].data["customer"]["email"] == "kari@example.no"


def test_owner_is_the_agents_then_the_teams_else_nobody(store, owned):
    deliver(store, owned, answer_data(SID, "a@example.no", 2, False, agent="a-9", team="billing"))
    deliver(store, owned, answer_data(SID2, "b@example.no", 2, False, agent="a-1", team="BILLING"))
    deliver(store, owned, answer_data("cdefghijklmnopqrstuv", "c@example.no", 2, False, agent=None, team="sales"))
    owners = {c.customer: c.owner for c in store.case_page(None, None, None, 50, None)[0]}
    assert owners == {"a@example.no": "kim@acme.test", "b@example.no": "lead@acme.test", "c@example.no": None}


def test_a_later_satisfied_answer_recovers_the_customers_open_cases_once(store, settings):
    opened_at = now_ms() - 2 * HOUR_MS
    deliver(store, settings, answer_data(SID, "kari@example.no", 1, False, at_ms=opened_at))
    deliver(store, settings, answer_data(SID2, "per@example.no", 1, False, at_ms=opened_at))
    happy = answer_data("cdefghijklmnopqrstuv", "kari@example.no", 5, True)
    assert deliver(store, settings, happy).status == "delivered"
    assert deliver(store, settings, happy).status == "skipped"  # nothing open any more
    kari, per = store.case(keys.case_id(SID, "kari@example.no")), store.case(keys.case_id(SID2, "per@example.no"))
    assert kari.status == "recovered" and kari.closed_at_ms is not None and "answered 5" in kari.outcome
    assert per.status == "open"
    updated = [n for n in notices(store, "kari@example.no") if n.type == "case.updated"]
    assert len(updated) == 1 and updated[0].data["changes"][:2] == ["status", "closed_at"]
    counts = store.case_counts(now_ms())
    assert (counts.opened, counts.active, counts.recovered) == (2, 1, 1)


def test_a_satisfied_answer_given_before_the_case_opened_does_not_recover_it(store, settings):
    deliver(store, settings, answer_data(SID, "kari@example.no", 1, False))
    early = answer_data(SID2, "kari@example.no", 5, True, at_ms=now_ms() - 5 * HOUR_MS)
    assert deliver(store, settings, early).status == "skipped"
    assert store.case(keys.case_id(SID, "kari@example.no")).status == "open"


def test_a_notice_without_an_answer_is_refused_not_raised(store, settings):
    data = answer_data(SID, "kari@example.no", 1, False)
    del data["answer"]
    assert deliver(store, settings, data).status == "refused"


def test_the_dispatcher_opens_and_recovers_cases_from_emitted_answer_notices(store, settings):
    from tracker.notify.dispatch import dispatch
    from tracker.notify.events import emit

    earlier = now_ms() - HOUR_MS
    emit(store, "survey.answered", "kari@example.no", answer_data(SID, "kari@example.no", 1, False, at_ms=earlier),
         f"survey.answered:{SID}:1", earlier)
    dispatch(store, settings, "test", now_ms())
    case_id = keys.case_id(SID, "kari@example.no")
    assert store.case(case_id).status == "open"
    emit(store, "survey.answered", "kari@example.no", answer_data(SID2, "kari@example.no", 5, True),
         f"survey.answered:{SID2}:1", now_ms())
    dispatch(store, settings, "test", now_ms())
    assert store.case(case_id).status == "recovered"
    assert [n.type for n in notices(store, "kari@example.no")] == ["survey.answered", "case.opened", "survey.answered",
                                                                  "case.updated"]


# The API ------------------------------------------------------------------------------------------------------

def _open_three(store, settings) -> list[str]:
    now = now_ms()
    deliver(store, settings, answer_data(SID, "late@example.no", 1, False, at_ms=now - 60 * HOUR_MS))
    deliver(store, settings, answer_data(SID2, "soon@example.no", 2, False, at_ms=now - HOUR_MS))
    deliver(store, settings, answer_data("defghijklmnopqrstuvw", "closed@example.no", 2, False,
                                         at_ms=now - 70 * HOUR_MS))
    ids = [keys.case_id(SID, "late@example.no"), keys.case_id(SID2, "soon@example.no"),
           keys.case_id("defghijklmnopqrstuvw", "closed@example.no")]
    update_case(store, settings, ids[2], now, "test", status="not_recovered")
    return ids


def test_the_api_lists_overdue_first_filters_and_pages(client, auth, store, settings):
    late, soon, closed = _open_three(store, settings)
    page = client.get("/api/v1/cases", headers=auth).json
    assert [c["id"] for c in page["cases"]] == [late, soon, closed]
    assert [c["overdue"] for c in page["cases"]] == [True, False, False] and page["next_cursor"] is None
    assert [c["id"] for c in client.get("/api/v1/cases?overdue=true", headers=auth).json["cases"]] == [late]
    assert [c["id"] for c in client.get("/api/v1/cases?status=not_recovered", headers=auth).json["cases"]] == [closed]
    assert [c["id"] for c in client.get("/api/v1/cases?owner=unassigned&status=open", headers=auth).json["cases"]] \
        == [late, soon]
    assert client.get("/api/v1/cases?owner=nobody@acme.test", headers=auth).json["cases"] == []
    first = client.get("/api/v1/cases?limit=2", headers=auth).json
    assert [c["id"] for c in first["cases"]] == [late, soon] and first["next_cursor"]
    rest = client.get("/api/v1/cases", headers=auth, query_string={"limit": 2, "cursor": first["next_cursor"]}).json
    assert [c["id"] for c in rest["cases"]] == [closed] and rest["next_cursor"] is None
    one = client.get(f"/api/v1/cases/{late}", headers=auth).json
    assert one == page["cases"][0]
    assert set(one) >= {"id", "customer", "ticket", "owner", "status", "due_at", "notes", "outcome", "survey",
                        "rating", "scale", "comment", "opened_at", "first_contact_at", "closed_at", "source", "team",
                        "agent"}


def test_the_api_needs_a_key_and_answers_404_and_422_in_the_envelope(client, auth, store, settings):
    _open_three(store, settings)
    assert client.get("/api/v1/cases").status_code == 401
    missing = client.get("/api/v1/cases/c3-zzzzzzzzzzzzzzzzzzzz", headers=auth)
    assert missing.status_code == 404 and missing.json["message"] == "No case with that id."
    assert client.get("/api/v1/cases/not-a-case", headers=auth).status_code == 404
    bad = client.get("/api/v1/cases?status=lost&limit=0&cursor=x", headers=auth)
    assert bad.status_code == 422 and set(bad.json["errors"]) == {"status", "limit", "cursor"}


def test_patch_moves_status_adds_notes_sets_owner_and_outcome(client, auth, store, settings):
    late, *_ = _open_three(store, settings)
    response = client.patch(f"/api/v1/cases/{late}", headers=auth,
                            json={"status": "contacted", "note": "Called, refund offered", "owner": "ola@acme.test"})
    assert response.status_code == 200, response.json
    case = response.json
    assert case["status"] == "contacted" and case["owner"] == "ola@acme.test" and case["first_contact_at"]
    assert [(n["by"], n["text"]) for n in case["notes"]] == [("lead", "Called, refund offered")]
    done = client.patch(f"/api/v1/cases/{late}", headers=auth, json={"status": "recovered", "outcome": "Refunded"})
    assert done.json["status"] == "recovered" and done.json["outcome"] == "Refunded" and done.json["closed_at"]
    assert done.json["first_contact_at"] == case["first_contact_at"]
    unassigned = client.patch(f"/api/v1/cases/{late}", headers=auth, json={"owner": None})
    assert unassigned.json["owner"] is None
    counts = store.case_counts(now_ms())
    assert (counts.active, counts.recovered, counts.not_recovered, counts.contacted) == (1, 1, 1, 1)
    changes = [n.data["changes"] for n in notices(store, "late@example.no") if n.type == "case.updated"]
    assert changes[0] == ["status", "notes", "owner", "first_contact_at"] and changes[-1] == ["owner"]


def test_patch_takes_notes_under_the_name_a_case_shows_them_by_a_text_or_a_list(client, auth, store, settings):
    late, *_ = _open_three(store, settings)
    one = client.patch(f"/api/v1/cases/{late}", headers=auth, json={"notes": "Called her"})
    assert one.status_code == 200, one.json
    both = client.patch(f"/api/v1/cases/{late}", headers=auth,
                        json={"note": "Mailed a refund form", "notes": ["She sent it back", " Refund paid "]})
    assert both.status_code == 200, both.json
    assert [n["text"] for n in both.json["notes"]] == ["Called her", "Mailed a refund form", "She sent it back",
                                                       "Refund paid"]
    assert one.json["first_contact_at"] and both.json["first_contact_at"] == one.json["first_contact_at"]


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"status": "won"}, 422, "status"), ({"note": "   "}, 422, "note"), ({"colour": "red"}, 422, "colour"),
    ({}, 422, "_schema"), ({"note": "x" * 2001}, 422, "note"), ({"owner": 5}, 422, "owner"),
    ({"notes": []}, 422, "notes"), ({"notes": [{"text": "a"}]}, 422, "notes"), ({"notes": ["ok", " "]}, 422, "notes"),
    ({"notes": 5}, 422, "notes"), ({"notes": ["x"] * 21}, 422, "notes"),
])
def test_patch_refuses_bad_bodies_with_the_field_named(client, auth, store, settings, body, status, field):
    late, *_ = _open_three(store, settings)
    response = client.patch(f"/api/v1/cases/{late}", headers=auth, json=body)
    assert response.status_code == status and field in response.json["errors"], response.json
    assert response.json["message"] == "The body is not valid."


def test_patch_refuses_what_is_not_json_a_bad_transition_and_an_unknown_case(client, auth, store, settings):
    late, _, closed = _open_three(store, settings)
    not_json = client.patch(f"/api/v1/cases/{late}", headers=auth, data="status=open",
                            content_type="text/plain")
    assert not_json.status_code == 400 and not_json.json["code"] == 400
    too_deep = client.patch(f"/api/v1/cases/{late}", headers=auth, data="[" * 100_000 + "]" * 100_000,
                            content_type="application/json")  # deeper than the JSON parser's recursion
    assert too_deep.status_code == 400 and "must be a JSON object" in too_deep.json["message"], too_deep.json
    client.patch(f"/api/v1/cases/{late}", headers=auth, json={"status": "contacted"})
    back = client.patch(f"/api/v1/cases/{late}", headers=auth, json={"status": "open"})
    assert back.status_code == 422 and "contacted to open" in back.json["errors"]["status"][0]
    missing = client.patch("/api/v1/cases/c3-zzzzzzzzzzzzzzzzzzzz", headers=auth, json={"note": "hi"})
    assert missing.status_code == 404
    reopened = client.patch(f"/api/v1/cases/{closed}", headers=auth, json={"status": "open"})
    assert reopened.json["status"] == "open" and reopened.json["closed_at"] is None


def test_the_openapi_document_describes_the_case_paths(client):
    paths = client.get("/api/openapi.json").json["paths"]
    assert set(paths["/api/v1/cases/{id}"]) == {"get", "patch"} and "get" in paths["/api/v1/cases"]
    assert "requestBody" in paths["/api/v1/cases/{id}"]["patch"]


# The CLI ------------------------------------------------------------------------------------------------------

def run_cli(env: dict[str, str], monkeypatch, capsys, *argv: str) -> tuple[int, str, str]:
    from tracker.cli.commands import main

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_lists_shows_and_works_a_case(env, store, settings, monkeypatch, capsys):
    late, soon, closed = _open_three(store, settings)
    code, out, _ = run_cli(env, monkeypatch, capsys, "cases")
    lines = out.splitlines()
    assert code == 0 and lines[1].startswith(late) and "OVERDUE" in lines[1] and lines[3].startswith(closed)
    code, out, _ = run_cli(env, monkeypatch, capsys, "cases", "--overdue", "--json")
    assert [c["id"] for c in json.loads(out)] == [late]
    code, out, _ = run_cli(env, monkeypatch, capsys, "case", soon, "--status", "contacted", "--note", "Mailed her",
                           "--by", "ola")
    assert code == 0 and "contacted" in out.splitlines()[0] and "cli:ola: Mailed her" in out
    assert store.case(soon).status == "contacted"


@pytest.mark.parametrize(("argv", "message"), [
    (("case", "nope"), "is not a case id"),
    (("case", "c3-zzzzzzzzzzzzzzzzzzzz"), "no case"),
    (("cases", "--status", "lost"), "--status Must be one of"),
    (("cases", "--limit", "many"), "--limit Not a valid integer"),
])
def test_the_cli_answers_bad_input_in_one_line(env, store, settings, monkeypatch, capsys, argv, message):
    code, _, err = run_cli(env, monkeypatch, capsys, *argv)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_cli_refuses_a_bad_transition_in_one_line(env, store, settings, monkeypatch, capsys):
    late, *_ = _open_three(store, settings)
    run_cli(env, monkeypatch, capsys, "case", late, "--status", "contacted")
    code, _, err = run_cli(env, monkeypatch, capsys, "case", late, "--status", "open")
    assert code == 1 and err.strip() == "tracker: A case cannot go from contacted to open."


# The summary, /metrics and alerts ---------------------------------------------------------------------------

def test_the_summary_and_metrics_show_open_overdue_recovered_rate_and_time_to_first_contact(client, auth, store,
                                                                                              settings):
    late, soon, closed = _open_three(store, settings)
    opened = store.case(late).opened_at_ms
    update_case(store, settings, late, opened + 6 * HOUR_MS, "lead", note="Left a voicemail")
    update_case(store, settings, closed, now_ms(), "lead", note="Closed: she never answered")  # not a contact
    body = client.get("/api/v1/summary", headers=auth).json
    assert (body["cases_open"], body["cases_overdue"]) == (2, 1)
    assert body["recovered_rate"] == 0.0 and body["first_contact_hours"] == 6.0
    update_case(store, settings, soon, now_ms(), "lead", status="recovered")
    body = client.get("/api/v1/summary", headers=auth).json
    assert (body["cases_open"], body["recovered_rate"]) == (1, 50.0)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert "tracker_cases_open 1.0" in metrics and "tracker_cases_overdue 1.0" in metrics
    assert "tracker_cases_recovered_percent 50.0" in metrics and "tracker_cases_first_contact_hours 6.0" in metrics


def test_an_alert_names_the_case_its_answer_opens_and_links_its_dashboard_page(world, store, env):
    from tracker.alerts.payload import alerts_for

    sid = world.solved_and_answered("T-1", "kari@example.no", 1, "Slow")
    settings = load_settings({**env, "TRACKER_ALERT_URLS": "https://alerts.example.com/hook",
                              "TRACKER_PUBLIC_URL": "https://csat.example.com"})
    data = json.loads(alerts_for(store, settings, sid, 1, now_ms())[0][1])["data"]
    case_id = keys.case_id(sid, "kari@example.no")
    assert data["case"] == {"id": case_id, "url": f"https://csat.example.com/dashboard/cases/{case_id}"}
    deliver(store, settings, answer_data(sid, "kari@example.no", 1, False))
    assert store.case(case_id) is not None


# TRACKER_CASE_RESURVEY --------------------------------------------------------------------------------------

def test_a_closed_case_sends_the_customer_one_new_survey_however_often_it_is_closed(world, store, env, smtp):
    from tests.support import send_all

    sid = world.solved_and_answered("T-1", "kari@example.no", 1, "Slow", channel="chat", tags=["vip"],
                                    resolved_by="human")
    settings = load_settings({**env, "TRACKER_CASE_RESURVEY": "1", "TRACKER_SURVEY_THROTTLE_DAYS": "0"})
    deliver(store, settings, answer_data(sid, "kari@example.no", 1, False))
    case_id = keys.case_id(sid, "kari@example.no")
    mails = len(smtp.messages)
    update_case(store, settings, case_id, now_ms(), "lead", status="not_recovered")
    assert [o.status for o in send_all(store, settings)] == ["sent"]
    smtp.wait_for(mails + 1)
    update_case(store, settings, case_id, now_ms(), "lead", status="open")
    update_case(store, settings, case_id, now_ms(), "lead", status="recovered")
    assert [o.status for o in send_all(store, settings)] == []
    assert len(smtp.messages) == mails + 1 and smtp.messages[-1]["To"].addresses[0].addr_spec == "kari@example.no"
    new = store.customer_surveys("kari@example.no")
    assert len({s.sid for s in new}) == 2 and {s.tkey for s in new} == {"standard:T-1"}
    # The new survey counts for the same channel, tags and resolver as the one it follows.
    assert {(s.channel, s.tags, s.resolved_by) for s in new} == {("chat", ("vip",), "human")}
    world.answer("kari@example.no", 5)  # the new survey's link works like any other
    assert store.survey(next(s.sid for s in new if s.sid != sid)).status == "answered"


def test_a_new_survey_waits_for_the_customers_throttle(world, store, env, smtp):
    from tests.support import send_all

    sid = world.solved_and_answered("T-1", "kari@example.no", 1, "Slow")
    settings = load_settings({**env, "TRACKER_CASE_RESURVEY": "1", "TRACKER_SURVEY_THROTTLE_DAYS": "7"})
    store.reserve_throttle("kari@example.no", sid, 7 * 24 * HOUR_MS)  # the answered survey holds the slot
    deliver(store, settings, answer_data(sid, "kari@example.no", 1, False))
    case_id = keys.case_id(sid, "kari@example.no")
    mails = len(smtp.messages)
    update_case(store, settings, case_id, now_ms(), "lead", status="not_recovered")
    outcomes = send_all(store, settings)
    assert [(o.status, o.reason) for o in outcomes] == [("deferred", "throttled")]
    member = f"{keys.CASE_DUE}{case_id}"
    assert store.redis.zscore(keys.due_of(member), member) > now_ms() + 6 * 24 * HOUR_MS
    assert len(smtp.messages) == mails


# The dashboard ----------------------------------------------------------------------------------------------

def _signed_in(client, store) -> None:
    from tests.test_dashboard import sign_in

    assert sign_in(client, store.create_key("lead")).status_code == 303


def test_the_dashboard_lists_cases_overdue_first_with_filters_and_a_nav_link(client, store, settings):
    assert client.get("/dashboard/cases").headers["Location"].endswith("/dashboard/login")
    late, soon, closed = _open_three(store, settings)
    _signed_in(client, store)
    index = client.get("/dashboard").get_data(as_text=True)
    assert 'href="/dashboard/cases"' in index
    page = client.get("/dashboard/cases")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert html.index(f'id="case-{late}"') < html.index(f'id="case-{soon}"') < html.index(f'id="case-{closed}"')
    assert f'<tr class="case overdue" id="case-{late}">' in html
    overdue = client.get("/dashboard/cases?overdue=true&status=&owner=").get_data(as_text=True)
    assert f'id="case-{late}"' in overdue and f'id="case-{soon}"' not in overdue
    bad = client.get("/dashboard/cases?status=lost")
    assert bad.status_code == 400 and "status:" in bad.get_data(as_text=True)


def test_a_lead_adds_a_note_and_moves_the_status_through_the_case_page_form(world, client, store, settings):
    from tests.test_dashboard import csrf_of

    sid = world.solved_and_answered("T-1", "kari@example.no", 1, "Nobody called back")
    deliver(store, settings, answer_data(sid, "kari@example.no", 1, False, comment="Nobody called back"))
    case_id = keys.case_id(sid, "kari@example.no")
    _signed_in(client, store)
    page = client.get(f"/dashboard/cases/{case_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Nobody called back" in html and 'id="timeline"' in html
    assert "answer" in html and "ticket.solved" in html  # the customer's timeline
    token = csrf_of(page)
    saved = client.post(f"/dashboard/cases/{case_id}", data={"csrf_token": token, "note": "Called, <b>sorry</b>",
                                                             "status": "contacted", "owner": "", "outcome": ""})
    assert saved.status_code == 303 and saved.headers["Location"].endswith(f"/dashboard/cases/{case_id}")
    case = store.case(case_id)
    assert case.status == "contacted" and [(n.by, n.text) for n in case.notes] == [("dashboard:lead",
                                                                                  "Called, <b>sorry</b>")]
    shown = client.get(f"/dashboard/cases/{case_id}").get_data(as_text=True)
    assert "Called, &lt;b&gt;sorry&lt;/b&gt;" in shown
    forged = client.post(f"/dashboard/cases/{case_id}", data={"csrf_token": "forged", "note": "x"})
    assert forged.status_code == 400 and len(store.case(case_id).notes) == 1
    back = client.post(f"/dashboard/cases/{case_id}", data={"csrf_token": token, "status": "open"})
    assert back.status_code == 400 and "cannot go from contacted to open" in back.get_data(as_text=True)
    assert client.get("/dashboard/cases/c3-zzzzzzzzzzzzzzzzzzzz").status_code == 404


def test_the_customer_page_shows_the_card_cases_and_timeline_and_the_notes_link_resolves(world, client, store,
                                                                                         settings):
    from tracker.writeback.base import customer_link

    sid = world.solved_and_answered("T-1", "kari@example.no", 1, "Nobody called back")
    deliver(store, settings, answer_data(sid, "kari@example.no", 1, False, comment="Nobody called back"))
    case_id = keys.case_id(sid, "kari@example.no")
    path = customer_link(settings, "kari@example.no").removeprefix(settings.public_url)
    assert client.get(path).headers["Location"].endswith("/dashboard/login")
    _signed_in(client, store)
    page = client.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert f'href="/dashboard/cases/{case_id}"' in html and 'id="timeline"' in html and "ticket.solved" in html
    case_page = client.get(f"/dashboard/cases/{case_id}").get_data(as_text=True)
    assert f'href="{path}" id="customer-link"' in case_page
    assert client.get("/dashboard/customers/nobody@example.no").status_code == 404
    assert client.get("/dashboard/customers/not-an-address").status_code == 400


# Data-access export and erasure -----------------------------------------------------------------------------

def test_a_customers_cases_are_in_their_export_and_go_with_their_erasure(world, client, auth, store, settings):
    sid = world.solved_and_answered("T-1", "kari@example.no", 1, "Slow")
    deliver(store, settings, answer_data(sid, "kari@example.no", 1, False))
    case_id = keys.case_id(sid, "kari@example.no")
    update_case(store, settings, case_id, now_ms(), "lead", note="Called Kari about the refund")
    admin = {"Authorization": f"Bearer {store.create_key('dpo')}"}
    exported = client.get("/api/v1/customers/kari@example.no/export", headers=admin).json
    assert [(c["id"], c["notes"][0]["text"]) for c in exported["cases"]] == [(case_id, "Called Kari about the refund")]
    erased = client.delete("/api/v1/customers/kari@example.no", headers=admin).json["erased"]
    assert erased["cases"] == 1 and store.case(case_id) is None
    assert store.case_page(None, None, None, 50, None)[0] == []
    counts = store.case_counts(now_ms())
    assert (counts.opened, counts.active, counts.contacted, counts.contact_ms) == (0, 0, 0, 0)
    left = [key for key in store.redis.scan_iter(f"{keys.PREFIX}:{{c*") if "kari" in key]
    assert left == []


def test_retention_deletes_closed_cases_past_it_and_keeps_open_ones_and_the_numbers(store, env):
    from tracker.privacy.retention import retire_old_records

    settings = load_settings({**env, "TRACKER_RETENTION_DAYS": "30"})
    long_ago = now_ms() - 60 * 24 * HOUR_MS
    deliver(store, settings, answer_data(SID, "old@example.no", 1, False, at_ms=long_ago))
    deliver(store, settings, answer_data(SID2, "open@example.no", 1, False, at_ms=long_ago))
    deliver(store, settings, answer_data("cdefghijklmnopqrstuv", "new@example.no", 1, False))
    old, still_open, recent = (keys.case_id(SID, "old@example.no"), keys.case_id(SID2, "open@example.no"),
                               keys.case_id("cdefghijklmnopqrstuv", "new@example.no"))
    update_case(store, settings, old, long_ago + HOUR_MS, "lead", status="not_recovered")
    update_case(store, settings, recent, now_ms(), "lead", status="recovered")
    assert retire_old_records(store, settings, now_ms()).cases == 1
    assert store.case(old) is None and store.case(still_open) and store.case(recent)
    assert [c.id for c in store.case_page(None, None, None, 50, None)[0]] == [still_open, recent]
    counts = store.case_counts(now_ms())
    assert (counts.opened, counts.not_recovered, counts.recovered) == (3, 1, 1)


def test_patch_reads_a_lone_surrogate_as_the_replacement_character(client, store, settings) -> None:
    # JSON may escape half an emoji ("\\ud800"), which no store can hold: read as U+FFFD (tracker.text).
    late, *_ = _open_three(store, settings)
    auth = {"Authorization": f"Bearer {store.create_key('lead')}"}
    response = client.patch(f"/api/v1/cases/{late}", headers=auth,
                            data=json.dumps({"note": "Called \ud800", "owner": "ola\ud800@acme.test"}),
                            content_type="application/json")
    assert response.status_code == 200, response.json
    assert response.json["owner"] == "ola\ufffd@acme.test"
    assert [n["text"] for n in response.json["notes"]] == ["Called \ufffd"]


def test_a_read_only_key_reads_cases_but_changes_none_through_the_api_or_the_dashboard(world, client, store,
                                                                                        settings):
    from tests.test_dashboard import csrf_of, sign_in

    sid = world.solved_and_answered("T-1", "kari@example.no", 1, "Nobody called back")
    deliver(store, settings, answer_data(sid, "kari@example.no", 1, False, comment="Nobody called back"))
    case_id = keys.case_id(sid, "kari@example.no")
    reader = {"Authorization": f"Bearer {store.create_key('viewer', scopes=('read',))}"}
    assert client.get(f"/api/v1/cases/{case_id}", headers=reader).status_code == 200
    refused = client.patch(f"/api/v1/cases/{case_id}", json={"status": "contacted", "note": "x"}, headers=reader)
    assert refused.status_code == 403 and "admin" in refused.get_json()["message"]
    assert sign_in(client, store.create_key("viewer-2", scopes=("read",))).status_code == 303
    page = client.get(f"/dashboard/cases/{case_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'id="case-read-only"' in html and 'id="case-form"' not in html
    posted = client.post(f"/dashboard/cases/{case_id}", data={"csrf_token": csrf_of(page), "note": "x",
                                                              "status": "contacted"})
    assert posted.status_code == 403 and "read-only API key" in posted.get_data(as_text=True)
    case = store.case(case_id)
    assert case.status == "open" and not case.notes
    admin = {"Authorization": f"Bearer {store.create_key('lead-2')}"}
    assert client.patch(f"/api/v1/cases/{case_id}", json={"note": "Called"}, headers=admin).status_code == 200
    for key, form_shown in (("viewer-2", False), ("lead-2", True)):  # sessions begun before sign-in kept the scope
        with client.session_transaction("/dashboard/") as held:
            held.pop("key_admin", None)
            held["key_name"] = key
            held["key_created"] = next(row["created_at"] for row in store.list_keys() if row["name"] == key)
            store.start_session(held["session_id"], key, 3600)
        assert ('id="case-form"' in client.get(f"/dashboard/cases/{case_id}").get_data(as_text=True)) is form_shown

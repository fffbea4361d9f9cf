"""The leads' dashboard through the real app: login with an API key, CSRF, the numbers the loop made, filters."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support import wait_until
from tracker.config import load_settings
from tracker.web.app import create_app

CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"


def _iso(offset: float = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))


def csrf_of(page: Any) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert match, page.get_data(as_text=True)
    return match.group(1)


def sign_in(client: Any, key: str) -> Any:
    token = csrf_of(client.get("/dashboard/login"))
    return client.post("/dashboard/login", data={"key": key, "csrf_token": token})


@pytest.fixture
def signed_in(client, store) -> str:
    key = store.create_key("lead")
    response = sign_in(client, key)
    assert response.status_code == 303 and response.headers["Location"].endswith("/dashboard")
    return key


def card(html: str, name: str) -> str:
    match = re.search(rf'id="card-{name}">.*?class="value">(.*?)</span><span class="hint"', html, re.S)
    assert match, f"no {name} card in the page"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def section(html: str, ident: str) -> str:
    match = re.search(rf'<section class="panel" id="{ident}">(.*?)</section>', html, re.S)
    assert match, f"no section {ident}"
    return match.group(1)


def page(client: Any, **query: str) -> tuple[int, str]:
    response = client.get("/dashboard", query_string=query)
    return response.status_code, response.get_data(as_text=True)


def test_a_person_who_is_not_signed_in_is_sent_to_the_login_form(client):
    response = client.get("/dashboard")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/dashboard/login"
    form = client.get("/dashboard/login")
    assert form.status_code == 200
    html = form.get_data(as_text=True)
    assert 'type="password"' in html and 'name="csrf_token"' in html and "Sign in" in html


def test_a_wrong_key_gets_the_form_again_with_401(client, store):
    store.create_key("lead")
    for wrong in ("trk_not-a-real-key", "not even the shape", "x" * 300):
        response = sign_in(client, wrong)
        assert response.status_code == 401
        html = response.get_data(as_text=True)
        assert "That API key is not valid." in html or "Enter an API key." in html
        assert 'id="login-form"' in html
    assert client.get("/dashboard").status_code == 302


@pytest.mark.parametrize("token", [None, "", "0" * 64, "forged"])
def test_a_login_without_the_sessions_csrf_token_is_refused_with_400(client, store, token):
    key = store.create_key("lead")
    client.get("/dashboard/login")
    data = {"key": key} if token is None else {"key": key, "csrf_token": token}
    response = client.post("/dashboard/login", data=data)
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302


def test_a_csrf_token_from_another_browser_does_not_work(app, store):
    key = store.create_key("lead")
    other_token = csrf_of(app.test_client().get("/dashboard/login"))
    victim = app.test_client()
    victim.get("/dashboard/login")
    assert victim.post("/dashboard/login", data={"key": key, "csrf_token": other_token}).status_code == 400


def test_the_session_cookie_names_the_key_but_never_holds_it(app, client, store):
    key = store.create_key("lead")
    response = sign_in(client, key)
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("tracker_dashboard="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # TRACKER_PUBLIC_URL is http in tests
    value = cookie.split(";")[0].split("=", 1)[1]
    session = app.session_interface.get_signing_serializer(app).loads(value)
    assert session["key_name"] == "lead"
    assert key not in value and key not in repr(session) and key[4:] not in repr(session)


def test_the_session_cookie_is_secure_when_the_public_url_is_https(env, store):
    secure = load_settings({**env, "TRACKER_PUBLIC_URL": "https://tracker.acme.test"})
    app = create_app(secure, store, enqueue=lambda t: None)
    client = app.test_client()
    key = store.create_key("lead")
    response = sign_in(client, key)
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("tracker_dashboard="))
    assert "Secure" in cookie


def test_the_dashboard_shows_the_numbers_the_loop_made(client, scored, signed_in):
    status, html = page(client)
    assert status == 200
    assert card(html, "responses") == "2"
    assert card(html, "csat") == "50.0%"
    assert card(html, "rate") == "100.0%"
    assert card(html, "score") == "50.0"  # (100 + 0) / 2, both answered moments apart
    agents = section(html, "agents")
    assert "Ola" in agents and "Per" in agents and "standard:a-7" in agents
    teams = section(html, "teams")
    assert "billing" in teams and "shipping" in teams
    assert html.count('class="point ') >= 2, "the chart has no data points"
    assert "Distribution of answers" in html and "csat5" in section(html, "distribution")


def test_the_unhappy_customer_is_listed_at_risk_with_their_orders(client, scored, signed_in):
    at_risk = section(page(client)[1], "at-risk")
    assert "bjorn@example.no" in at_risk and "Bjørn" in at_risk
    assert "2499.00 NOK" in at_risk
    assert "anna@example.no" not in at_risk


def test_a_comment_with_a_script_tag_is_shown_escaped(client, scored, signed_in):
    html = page(client)[1]
    comments = section(html, "comments")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Nobody answered for a week" in comments
    assert "Quick and kind" in comments
    assert "<script>alert(1)" not in html


def test_filters_narrow_the_numbers(client, scored, signed_in):
    status, html = page(client, team="billing")
    assert status == 200
    assert (card(html, "responses"), card(html, "csat")) == ("1", "100.0%")
    assert "Nobody answered" not in section(html, "comments")
    status, html = page(client, agent="standard:a-8")
    assert (card(html, "responses"), card(html, "csat")) == ("1", "0.0%")
    assert "Per" in section(html, "agents") and "Ola" not in section(html, "agents")
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    month_before = (datetime.now(UTC).date() - timedelta(days=31)).isoformat()
    status, html = page(client, **{"from": month_before, "to": yesterday})
    assert card(html, "responses") == "0" and card(html, "csat") == "–"
    assert "No answers in this period" in html and "No comments in this period" in section(html, "comments")


@pytest.mark.parametrize("query", [
    {"from": "yesterday"}, {"to": "2026-13-45"}, {"from": "2026-06-02", "to": "2026-06-01"},
    {"from": "2020-01-01", "to": "2026-06-01"}, {"team": "no-such-team"}, {"source": "x" * 500},
    {"agent": "\x00"}, {"brand": "<script>"},
])
def test_bad_filter_values_give_a_message_not_a_500(client, scored, signed_in, query):
    status, html = page(client, **query)
    assert status == 400
    assert "Some filters could not be used" in html
    assert card(html, "responses") == "2"  # the default view is shown beneath the message
    assert "<script>" not in html.split('id="filter-errors"')[1].split("</div>")[0]


@pytest.mark.parametrize("query", [
    {"to": "9999-12-31"}, {"from": "9999-12-01", "to": "9999-12-31"}, {"to": "0001-01-01"},
    {"from": "0001-01-01", "to": "0001-01-09"},
])
def test_the_first_and_last_days_a_date_can_name_are_a_range_like_any_other(client, scored, signed_in, query):
    status, html = page(client, **query)  # the default start before year 1, a week past 9999 were a 500
    assert status == 200 and card(html, "responses") == "0" and "No answers in this period" in html
    export = client.get("/dashboard/export.csv", query_string=query)
    assert export.status_code == 200 and export.get_data(as_text=True).count("\n") == 1  # the header alone


def test_a_revoked_key_signs_the_person_out(client, store, signed_in):
    assert page(client)[0] == 200
    store.revoke_key("lead")
    response = client.get("/dashboard")
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/dashboard/login"
    assert "revoked" in client.get("/dashboard/login").get_data(as_text=True)


def test_a_new_key_under_a_revoked_keys_name_does_not_revive_its_sessions(client, store, signed_in):
    assert page(client)[0] == 200
    (old,) = store.list_keys()
    store.revoke_key("lead")
    wait_until(lambda: int(time.time()) > old["created_at"], what="the next second")  # keys carry whole seconds
    store.create_key("lead")
    assert client.get("/dashboard").status_code == 302


def test_signing_out_needs_the_csrf_token_and_ends_the_session(client, signed_in):
    html = page(client)[1]
    assert client.post("/dashboard/logout").status_code == 400
    assert page(client)[0] == 200
    response = client.post("/dashboard/logout", data={"csrf_token": csrf_of_html(html)})
    assert response.status_code == 303
    assert client.get("/dashboard").status_code == 302


def csrf_of_html(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_every_dashboard_page_carries_the_content_security_policy(client, store):
    responses = [client.get("/dashboard/login"), client.post("/dashboard/login", data={})]
    sign_in(client, store.create_key("lead"))
    responses += [client.get("/dashboard"), client.get("/dashboard", query_string={"from": "nope"})]
    for response in responses:
        assert response.headers["Content-Security-Policy"] == CSP, response.status_code
        assert response.headers["Cache-Control"] == "no-store"


def test_nothing_is_loaded_from_another_host_and_nothing_inline_breaks_the_policy(client, scored, signed_in):
    html = page(client)[1]
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', html)
    assert {"/static/dashboard.css", "/static/dashboard.js"} <= set(assets)
    texts = {"html": html}
    for path in assets:
        asset = client.get(path)
        assert asset.status_code == 200, path
        texts[path] = asset.get_data(as_text=True)
        asset.close()  # a static file is streamed from disk; closing the response closes the file
    for name, body in texts.items():
        for url in re.findall(r"https?://[^\s\"'<>)]+", body):
            assert urlsplit(url).hostname in {"localhost", "127.0.0.1"}, f"{name} refers to {url}"
        assert "@import" not in body and "url(http" not in body
    # The policy allows no inline script or style: every script has a src, no element has a style attribute.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert " style=" not in html and "<style" not in html
    assert not re.search(r"\son[a-z]+=", html), "inline event handlers are blocked by the policy"

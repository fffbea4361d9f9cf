"""`tracker check` proves the HTTP APIs' credentials: the mail API (SPEC §10: it "connects to the mail transport"),
each write-back helpdesk and the look-ups, each with one request that changes nothing.

A real HTTP server stands in for each vendor, answering with the vendor's documented examples where it publishes
them (SendGrid's scopes and 403 body from its OpenAPI description, Help Scout's Get Resource Owner, Intercom's
Identify an admin and, its values changed, Retrieve an admin) and otherwise with bodies of the documented shape
(tests/fixtures/mail_api: Postmark's Get the server and its 401, SendGrid's 401, Mailgun's messages error bodies;
tests/fixtures/writeback/<vendor>_*: Zendesk's users/me and its anonymous user, Freshdesk's agents/me, Gorgias's
account, Chatwoot's profile, Jira's myself).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.support import tracker
from tracker.cli import check_apis
from tracker.cli.dev import free_port
from tracker.config import load_settings

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Any:
    folder = "mail_api" if name.split("_")[0] in ("postmark", "sendgrid", "mailgun") else "writeback"
    return json.loads((FIXTURES / folder / f"{name}.response.json").read_text())


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def mail_env(env: dict[str, str], server: HTTPServer, transport: str, **extra: str) -> dict[str, str]:
    return {**env, "TRACKER_MAIL_TRANSPORT": transport, "TRACKER_MAIL_API_KEY": "key-123",
            "TRACKER_MAIL_API_URL": server.url_for("").rstrip("/"), **extra}


# --- the mail API ----------------------------------------------------------------------------------------------

def test_check_proves_a_postmark_token_with_a_read_of_its_server_and_sends_no_mail(env, httpserver):
    httpserver.expect_request("/server", method="GET", headers={"X-Postmark-Server-Token": "key-123"}) \
        .respond_with_json(fixture("postmark_server"))
    result = tracker(mail_env(env, httpserver, "postmark"), "check")
    assert result.returncode == 0, result.stderr
    assert f"  ok  mail: the postmark API: Postmark at {httpserver.url_for('').rstrip('/')} accepts the server " \
           "token (server 'Staging Testing')" in result.stdout.splitlines()
    assert [(request.method, request.path) for request, _ in httpserver.log] == [("GET", "/server")]


def test_check_fails_on_a_mail_api_key_the_provider_refuses_naming_the_variable(env, httpserver):
    httpserver.expect_request("/server").respond_with_json(fixture("postmark_401"), status=401)
    result = tracker(mail_env(env, httpserver, "postmark"), "check")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "tracker check: TRACKER_MAIL_API_KEY: Postmark refused the key: HTTP 401, ErrorCode 10: The Server Token "
        "you provided in the X-Postmark-Server-Token request header was invalid. Please verify that you are using a "
        "valid token."]
    assert "key-123" not in result.stdout + result.stderr
    assert "ok  Redis" in result.stdout and "Enabled:" in result.stdout  # the rest is still checked and shown


@pytest.mark.parametrize(("answer", "status", "ok", "said"), [
    ("sendgrid_scopes", 200, True, "SendGrid at {url} accepts the API key (Mail Send granted)"),
    ("sendgrid_scopes_without_mail_send", 200, False, "TRACKER_MAIL_API_KEY: the SendGrid API key lacks the Mail "
                                                      "Send permission (scope mail.send): SendGrid would refuse "
                                                      "every survey"),
    ("sendgrid_401", 401, False, "TRACKER_MAIL_API_KEY: SendGrid refused the key: HTTP 401: The provided "
                                 "authorization grant is invalid, expired, or revoked"),
    ("sendgrid_403", 403, True, "SendGrid at {url} accepts the API key (it may not list its permissions, so Mail "
                                "Send is not confirmed)"),
])
def test_a_sendgrid_key_is_checked_for_the_mail_send_permission(env, httpserver, answer, status, ok, said):
    httpserver.expect_request("/v3/scopes", method="GET", headers={"Authorization": "Bearer key-123"}) \
        .respond_with_json(fixture(answer), status=status)
    found = check_apis.mail_api(load_settings(mail_env(env, httpserver, "sendgrid")))
    assert (found.ok, found.text) == (ok, said.format(url=httpserver.url_for("").rstrip("/")))


@pytest.mark.parametrize(("status", "body", "content_type"), [
    (403, "<html><body><h1>403 Forbidden</h1></body></html>", "text/html"),
    (403, "", "text/plain"),
    (400, '{"Message": "bad request"}', "application/json"),
])
def test_a_postmark_refusal_without_an_error_code_is_not_postmarks_and_leaves_the_token_unconfirmed(
        env, httpserver, status, body, content_type):
    # Postmark's API names every refusal with an ErrorCode; an HTML 403 is a firewall's or proxy's on the way
    # (Postmark's support article "Getting a 403 that doesn't look like a Postmark error").
    httpserver.expect_request("/server").respond_with_data(body, status=status, content_type=content_type)
    url = httpserver.url_for("").rstrip("/")
    found = check_apis.mail_api(load_settings(mail_env(env, httpserver, "postmark")))
    assert (found.ok, found.confirmed) == (True, False), found
    assert found.text.startswith(f"TRACKER_MAIL_API_URL: {url} answers GET /server with HTTP {status}")
    assert found.text.endswith("not Postmark's own answer (no ErrorCode: a firewall or proxy on the way?): the key is "
                               "not confirmed"), found.text


def test_a_postmark_refusal_with_an_error_code_other_than_a_bad_token_still_fails(env, httpserver):
    httpserver.expect_request("/server").respond_with_json({"ErrorCode": 300, "Message": "Invalid request"}, status=422)
    found = check_apis.mail_api(load_settings(mail_env(env, httpserver, "postmark")))
    assert (found.ok, found.text) == (False, "TRACKER_MAIL_API_KEY: Postmark refused the key: HTTP 422, ErrorCode 300: "
                                             "Invalid request")


def mailgun_answer(status: int, body: Any) -> Any:
    def answer(request: Request) -> Response:
        # Nothing to send: no message, no recipient; Mailgun authenticates the key for the domain first.
        assert request.authorization is not None and request.authorization.password == "key-123"
        assert not request.files and not request.form, (request.files, request.form)
        return Response(body if isinstance(body, str) else json.dumps(body), status=status,
                        content_type="text/plain" if isinstance(body, str) else "application/json")
    return answer


@pytest.mark.parametrize(("status", "body", "ok", "said"), [
    (400, fixture("mailgun_400"), True, "Mailgun at {url} accepts the key for mg.example.com (checked with a request "
                                        "without a message: nothing sent)"),
    (401, "Forbidden", False, "TRACKER_MAIL_API_KEY: Mailgun refused the key: HTTP 401"),
    (404, fixture("mailgun_404"), False, "TRACKER_MAILGUN_DOMAIN: Mailgun at {url} knows no domain 'mg.example.com': "
                                         "Domain not found: mg.example.com (an EU domain needs "
                                         "TRACKER_MAIL_API_URL=https://api.eu.mailgun.net)"),
])
def test_a_mailgun_key_is_checked_with_a_send_that_carries_no_message(env, httpserver, status, body, ok, said):
    httpserver.expect_request("/v3/mg.example.com/messages.mime", method="POST") \
        .respond_with_handler(mailgun_answer(status, body))
    found = check_apis.mail_api(load_settings(mail_env(env, httpserver, "mailgun",
                                                       TRACKER_MAILGUN_DOMAIN="mg.example.com")))
    assert (found.ok, found.text) == (ok, said.format(url=httpserver.url_for("").rstrip("/")))
    assert len(httpserver.log) == 1


def test_a_mail_api_that_cannot_be_reached_names_its_url(env):
    url = f"http://127.0.0.1:{free_port()}"
    found = check_apis.mail_api(load_settings({**env, "TRACKER_MAIL_TRANSPORT": "postmark",
                                               "TRACKER_MAIL_API_KEY": "key-123", "TRACKER_MAIL_API_URL": url}))
    assert not found.ok and found.text == f"TRACKER_MAIL_API_URL: cannot reach Postmark at {url}"


# --- the helpdesks ---------------------------------------------------------------------------------------------

ACCOUNT, ADMIN, TOKEN = "1", "991267596", "tok-123"
WHOAMI = {  # source: (path, the documented answer, the auth the request must carry)
    "zendesk": ("/api/v2/users/me.json", "zendesk_users_me", basic("agent@acme.test/token", TOKEN)),
    "freshdesk": ("/api/v2/agents/me", "freshdesk_agents_me", basic(TOKEN, "X")),
    "gorgias": ("/api/account", "gorgias_account", basic("agent@acme.test", TOKEN)),
    "jira": ("/rest/api/3/myself", "jira_myself", basic("agent@acme.test", TOKEN)),
    "chatwoot": ("/api/v1/profile", "chatwoot_profile", None),
    "intercom": ("/me", "intercom_me", f"Bearer {TOKEN}"),
    "helpscout": ("/v2/users/me", "helpscout_users_me", "Bearer hs-access-token"),
}


def helpdesk_env(env: dict[str, str], server: HTTPServer, *sources: str) -> dict[str, str]:
    found = {**env, "TRACKER_WRITEBACK": ",".join(sources)}
    for source in sources:
        prefix = "TRACKER_JIRA_API_" if source == "jira" else f"TRACKER_{source.upper()}_API_"
        user = {"chatwoot": ACCOUNT, "intercom": ADMIN, "helpscout": "app-id"}.get(source, "agent@acme.test")
        found.update({prefix + "URL": server.url_for("").rstrip("/"), prefix + "USER": user, prefix + "TOKEN": TOKEN})
    return found


def serve_whoami(server: HTTPServer, source: str) -> None:
    path, answer, auth = WHOAMI[source]
    headers = {"Authorization": auth} if auth else {"Api-Access-Token": TOKEN}
    server.expect_request(path, method="GET", headers=headers).respond_with_json(fixture(answer))
    if source == "intercom":
        server.expect_request(f"/admins/{ADMIN}", method="GET", headers={"Intercom-Version": "2.11"}) \
            .respond_with_json(fixture("intercom_admin"))
    if source == "helpscout":
        server.expect_request("/v2/oauth2/token", method="POST").respond_with_json(
            {"token_type": "bearer", "access_token": "hs-access-token", "expires_in": 7200})


def test_every_write_back_helpdesk_is_asked_who_its_credentials_are_and_nothing_is_written(env, httpserver):
    for source in WHOAMI:
        serve_whoami(httpserver, source)
    found = check_apis.helpdesks(load_settings(helpdesk_env(env, httpserver, *WHOAMI)))
    url = httpserver.url_for("").rstrip("/")
    assert [(f.ok, f.name, f.text) for f in found] == [
        (True, f"write-back {source}", f"{url} accepts the credentials") for source in WHOAMI]
    assert all(request.method == "GET" or request.path == "/v2/oauth2/token" for request, _ in httpserver.log)
    assert not [request for request, response in httpserver.log if response.status_code >= 300]


@pytest.mark.parametrize(("source", "path", "status", "answer", "said"), [
    ("zendesk", "/api/v2/users/me.json", 401, "zendesk_401",
     "zendesk credentials check refused: HTTP 401: Couldn't authenticate you"),
    ("zendesk", "/api/v2/users/me.json", 200, "zendesk_users_me_anonymous",
     "zendesk credentials check: Zendesk answered as its anonymous user, so the agent email and API token were not "
     "accepted"),
    ("freshdesk", "/api/v2/agents/me", 401, "freshdesk_401",
     "freshdesk credentials check refused: HTTP 401: You have to be logged in to perform this action."),
    ("chatwoot", "/api/v1/profile", 401, "chatwoot_401", "chatwoot credentials check refused: HTTP 401: "),
])
def test_a_helpdesk_that_refuses_the_credentials_is_a_problem_naming_them(env, httpserver, source, path, status,
                                                                         answer, said):
    httpserver.expect_request(path, method="GET").respond_with_json(fixture(answer), status=status)
    (found,) = check_apis.helpdesks(load_settings(helpdesk_env(env, httpserver, source)))
    prefix = f"TRACKER_{source.upper()}_API_*: write-back {source}: "
    assert not found.ok and found.text.startswith(prefix + said), found.text


def test_a_chatwoot_token_of_another_account_is_a_problem(env, httpserver):
    profile = {**fixture("chatwoot_profile"), "accounts": [{"id": 7, "name": "Elsewhere", "role": "agent"}]}
    httpserver.expect_request("/api/v1/profile").respond_with_json(profile)
    (found,) = check_apis.helpdesks(load_settings(helpdesk_env(env, httpserver, "chatwoot")))
    assert not found.ok and found.text == ("TRACKER_CHATWOOT_API_*: write-back chatwoot: chatwoot: the token's user is "
                                           "not in account 1 (TRACKER_CHATWOOT_API_USER); its accounts: 7")


def test_an_intercom_admin_id_the_workspace_does_not_have_is_a_problem(env, httpserver):
    httpserver.expect_request("/me").respond_with_json(fixture("intercom_me"))
    httpserver.expect_request(f"/admins/{ADMIN}").respond_with_json(fixture("intercom_admin_404"), status=404)
    (found,) = check_apis.helpdesks(load_settings(helpdesk_env(env, httpserver, "intercom")))
    assert not found.ok and found.text.endswith(f"the workspace has no admin {ADMIN} (TRACKER_INTERCOM_API_USER, "
                                                "the admin id notes are written as)")


def test_an_intercom_token_that_may_not_read_admins_still_passes_on_its_own_identity(env, httpserver):
    httpserver.expect_request("/me").respond_with_json(fixture("intercom_me"))
    httpserver.expect_request(f"/admins/{ADMIN}").respond_with_json({"type": "error.list"}, status=403)
    (found,) = check_apis.helpdesks(load_settings(helpdesk_env(env, httpserver, "intercom")))
    assert found.ok, found.text


def test_a_helpdesk_that_cannot_be_reached_is_a_problem(env):
    url = f"http://127.0.0.1:{free_port()}"
    settings = load_settings({**env, "TRACKER_WRITEBACK": "gorgias", "TRACKER_GORGIAS_API_URL": url,
                              "TRACKER_GORGIAS_API_USER": "agent@acme.test", "TRACKER_GORGIAS_API_TOKEN": TOKEN})
    (found,) = check_apis.helpdesks(settings)
    assert not found.ok and found.text == ("TRACKER_GORGIAS_API_*: write-back gorgias: gorgias credentials check: "
                                           "ConnectionError")


def test_look_ups_are_checked_once_with_the_write_backs_credentials_and_apart_with_their_own(env, httpserver):
    serve_whoami(httpserver, "zendesk")
    url = httpserver.url_for("").rstrip("/")
    same = {"TRACKER_ZENDESK_URL": url, "TRACKER_ZENDESK_EMAIL": "agent@acme.test", "TRACKER_ZENDESK_TOKEN": TOKEN}
    found = check_apis.helpdesks(load_settings({**helpdesk_env(env, httpserver, "zendesk"), **same}))
    assert [f.name for f in found] == ["write-back zendesk"] and len(httpserver.log) == 1
    other = {**same, "TRACKER_ZENDESK_TOKEN": "lookup-token"}
    httpserver.expect_request("/api/v2/users/me.json", headers={"Authorization": basic("agent@acme.test/token",
                                                                                        "lookup-token")}) \
        .respond_with_json(fixture("zendesk_401"), status=401)
    found = check_apis.helpdesks(load_settings({**helpdesk_env(env, httpserver, "zendesk"), **other}))
    assert [(f.ok, f.name) for f in found] == [(True, "write-back zendesk"), (False, "zendesk look-ups")]
    assert found[1].text.startswith("TRACKER_ZENDESK_URL, _EMAIL, _TOKEN: zendesk look-ups: zendesk credentials "
                                    "check refused: HTTP 401")


def test_check_runs_the_helpdesk_probes_and_notes_a_look_up_left_half_set(env, httpserver):
    httpserver.expect_request("/api/v2/agents/me").respond_with_json(fixture("freshdesk_401"), status=401)
    result = tracker({**helpdesk_env(env, httpserver, "freshdesk"), "TRACKER_ZENDESK_URL": "https://acme.zendesk.com",
                      "TRACKER_ZENDESK_EMAIL": "agent@acme.test"}, "check")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "tracker check: TRACKER_FRESHDESK_API_*: write-back freshdesk: freshdesk credentials check refused: HTTP 401: "
        "You have to be logged in to perform this action."]
    assert "  note  Zendesk look-ups of id-only deliveries are off: TRACKER_ZENDESK_TOKEN is unset" \
        in result.stdout.splitlines()
    assert TOKEN not in result.stdout + result.stderr


def test_an_api_answering_the_check_as_the_vendor_does_not_is_a_note_not_a_problem(env, httpserver):
    # A stand-in that knows only the calls it stands in for answers the checks' reads 500 ("No handler found"):
    # that neither proves nor refuses a key, as a provider's outage would not, so check says so and passes.
    httpserver.expect_request("/email", method="POST").respond_with_json({"ErrorCode": 0})
    httpserver.expect_request("/api/v2/tickets/1.json", method="PUT").respond_with_json({})
    result = tracker({**mail_env(env, httpserver, "postmark"), **helpdesk_env(env, httpserver, "zendesk")}, "check")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    url = httpserver.url_for("").rstrip("/")
    notes = [line for line in result.stdout.splitlines()
             if line.startswith("  note  TRACKER_") and "TRACKER_PUBLIC_URL" not in line]
    assert notes == [
        f"  note  TRACKER_MAIL_API_URL: {url} answers GET /server with HTTP 500, busy or down for now: the key is "
        "not confirmed",
        f"  note  TRACKER_ZENDESK_API_*: write-back zendesk: {url} answers GET /api/v2/users/me.json with HTTP 500, "
        "busy or down for now: the credentials are not confirmed"], notes
    assert [(r.method, r.path) for r, _ in httpserver.log] == [("GET", "/server"), ("GET", "/api/v2/users/me.json")]


@pytest.mark.parametrize("status", [404, 405])
def test_a_404_or_405_to_the_check_leaves_the_credentials_unconfirmed(env, httpserver, status):
    httpserver.expect_request("/server").respond_with_data("Not Found", status=status)
    httpserver.expect_request("/api/v2/users/me.json").respond_with_data("Not Found", status=status)
    url = httpserver.url_for("").rstrip("/")
    mail = check_apis.mail_api(load_settings(mail_env(env, httpserver, "postmark")))
    assert (mail.ok, mail.confirmed, mail.text) == (
        True, False, f"TRACKER_MAIL_API_URL: {url} answers GET /server with HTTP {status}, which Postmark does not: "
                     "the key is not confirmed (is TRACKER_MAIL_API_URL Postmark's API?)")
    (desk,) = check_apis.helpdesks(load_settings(helpdesk_env(env, httpserver, "zendesk")))
    assert (desk.ok, desk.confirmed, desk.text) == (
        True, False, f"TRACKER_ZENDESK_API_*: write-back zendesk: {url} answers GET /api/v2/users/me.json with "
                     f"HTTP {status}, which zendesk does not: the credentials are not confirmed (is it the zendesk "
                     "API's URL?)")


# --- the alert and event URLs: judged as their deliveries judge them, never called -----------------------------

def test_an_alert_or_event_url_whose_host_every_delivery_would_refuse_is_a_problem(env):
    settings = load_settings({**env, "TRACKER_ALERT_URLS": "http://127.0.0.1:9/hook,https://hooks.invalid/x",
                              "TRACKER_EVENT_URLS": "http://10.1.2.3/events,http://169.254.169.254/latest"})
    found = check_apis.webhook_hosts(settings)
    assert [(f.ok, f.confirmed, f.text) for f in found] == [
        (False, True, "TRACKER_ALERT_URLS: the alert host '127.0.0.1' resolves to a loopback address (127.0.0.1); set "
                      "TRACKER_ALERT_ALLOW_PRIVATE=1 to allow private addresses: every alert sent there would be "
                      "refused"),
        (True, False, "TRACKER_ALERT_URLS: cannot resolve the alert host 'hooks.invalid': gaierror from here; alerts "
                      "sent there are retried until it does"),
        (False, True, "TRACKER_EVENT_URLS: the event URL host '10.1.2.3' resolves to a private address (10.1.2.3); "
                      "set TRACKER_ALERT_ALLOW_PRIVATE=1 to allow private addresses: every event sent there would be "
                      "refused"),
        (False, True, "TRACKER_EVENT_URLS: the event URL host '169.254.169.254' resolves to a cloud metadata address "
                      "(169.254.169.254): every event sent there would be refused")]
    allowed = check_apis.webhook_hosts(load_settings({**env, "TRACKER_ALERT_ALLOW_PRIVATE": "1",
                                                      "TRACKER_ALERT_URLS": "http://127.0.0.1:9/hook",
                                                      "TRACKER_EVENT_URLS": "http://10.1.2.3/events"}))
    assert allowed == []


def test_check_names_an_alert_url_on_a_private_network_and_calls_none(env, httpserver):
    hook = httpserver.url_for("/alerts/secret-path")
    result = tracker({**env, "TRACKER_ALERT_URLS": hook}, "check")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()  # localhost is 127.0.0.1 or ::1, whichever the resolver names first
    assert line.startswith("tracker check: TRACKER_ALERT_URLS: the alert host 'localhost' resolves to a loopback "
                           "address (") and line.endswith("); set TRACKER_ALERT_ALLOW_PRIVATE=1 to allow private "
                                                        "addresses: every alert sent there would be refused"), line
    assert "secret-path" not in result.stdout + result.stderr
    assert tracker({**env, "TRACKER_ALERT_URLS": hook, "TRACKER_ALERT_ALLOW_PRIVATE": "1"}, "check").returncode == 0
    assert list(httpserver.log) == []


@pytest.mark.parametrize(("public_url", "said"), [
    ("http://127.0.0.1:8000", "every link of a survey mail (rating, page, unsubscribe) points there"),
    ("https://localhost", "every link of a survey mail"),
    ("https://10.0.4.2:8443", "every link of a survey mail"),
    ("http://csat.example.com", "over plain http"),
    ("https://csat.example.com", None),
])
def test_check_notes_a_public_url_customers_cannot_open_or_only_over_http(env, public_url, said):
    from tracker.cli.check import public_url_note

    note = public_url_note(load_settings({**env, "TRACKER_PUBLIC_URL": public_url}))
    assert (note is None) if said is None else (note is not None and note.startswith(
        f"TRACKER_PUBLIC_URL is {public_url}: ") and said in note), note

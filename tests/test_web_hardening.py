"""The web process under stalled and overlong requests (a real gunicorn), sessions, headers, the App URL."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.signing import signed
from tests.support import ROOT, World, make_env, solved_event, survey_link, wait_until
from tracker.cli.dev import free_port
from tracker.web.limits import READ_IDLE_S

STALLED = 16  # twice the threads the web process used to have
DEADLINE_S = 20  # /healthz must answer within this, stalled uploads or not; it used to wait for minutes


def _healthy(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=2).ok
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def web(redis_server: str) -> Iterator[str]:
    """Run `tracker web` (gunicorn, as deployed) on a free port; yield its base URL."""
    port = free_port()
    env = {**os.environ, **make_env(f"{redis_server}/0", 1, TRACKER_BIND=f"127.0.0.1:{port}")}
    process = subprocess.Popen([sys.executable, "-m", "tracker", "web"], env=env, cwd=ROOT, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: process.poll() is not None or _healthy(base), timeout=30, what="tracker web")
        assert process.poll() is None, "tracker web exited at start"
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _status_line(connection: socket.socket) -> bytes:
    connection.settimeout(DEADLINE_S)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(4096)
        if not chunk:
            break
        received += chunk
    return received.split(b"\r\n", 1)[0]


def test_uploads_that_stall_mid_body_neither_keep_healthz_waiting_nor_hang_forever(web):
    port = int(web.rsplit(":", 1)[1])
    stalled: list[socket.socket] = []
    try:
        for _ in range(STALLED):
            connection = socket.create_connection(("127.0.0.1", port), timeout=5)
            connection.sendall(b"POST /webhooks/standard HTTP/1.1\r\nHost: tracker\r\n"
                               b"Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n" + b"[" * 5000)
            stalled.append(connection)
        assert requests.get(f"{web}/healthz", timeout=DEADLINE_S).json() == {"status": "ok"}
        # Each stalled upload is answered (the body stopped arriving) and closed, not held open.
        assert {_status_line(connection).split(b" ")[1] for connection in stalled} == {b"408"}
        # Closed at once, though these clients never close their side: gunicorn's graceful close waited for each
        # of them, 2 s a connection, in the loop that accepts and dispatches every request (/healthz too).
        started = time.monotonic()
        assert all(_closed_by_the_server(connection) for connection in stalled)
        assert requests.get(f"{web}/healthz", timeout=DEADLINE_S).ok
        assert time.monotonic() - started < 4
    finally:
        for connection in stalled:
            connection.close()


def _response(connection: socket.socket) -> bytes:
    """Read one whole response (its body by Content-Length)."""
    connection.settimeout(DEADLINE_S)
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(4096)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?im)^content-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += connection.recv(4096)
    return head + b"\r\n\r\n" + body


def _closed_by_the_server(connection: socket.socket) -> bool:
    """Read what is left of the server's answer, if any, until the server ends the connection."""
    connection.settimeout(DEADLINE_S)  # a connection the server holds times out here instead: the test fails
    while connection.recv(4096):
        pass
    return True


def test_clients_that_stop_sending_their_request_line_or_headers_lose_the_connection(web):
    # Slowloris: a half-sent request used to hold its thread for as long as its client kept the connection open,
    # and as many of them as the web process has threads (64) kept /healthz waiting for ever.
    port = int(web.rsplit(":", 1)[1])
    halves = [b"GET /heal", b"GET /healthz HTTP/1.1\r\nHost: tracker\r\nX-Stalled: ",
              b"POST /webhooks/standard HTTP/1.1\r\nHost: tracker\r\nContent-Length: 2\r\n"]
    stalled = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(len(halves) + 1)]
    try:
        # A kept-alive connection's next request is held to the same bound; a request sent in parts in time is
        # served.
        kept = stalled[-1]
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: tracker\r\n")
        kept.sendall(b"\r\n")
        assert _response(kept).startswith(b"HTTP/1.1 200 ")
        for connection, half in zip(stalled, [*halves, b"GET /healthz HTTP/1.1\r\nHost: tra"], strict=True):
            connection.sendall(half)
        started = time.monotonic()
        assert all(_closed_by_the_server(connection) for connection in stalled)
        # At once, each of them: a close that waited for the client's side used to hold the web process's main loop
        # (its accepts and dispatches) 2 s a connection.
        assert time.monotonic() - started < READ_IDLE_S + 4
    finally:
        for connection in stalled:
            connection.close()


def test_clients_that_asked_to_close_but_keep_their_side_open_hold_nobody_else(web):
    # gunicorn's graceful close waited up to 2 s for each of them to close its side, in the loop that accepts and
    # dispatches every connection: a dozen kept /healthz waiting 24 s.
    port = int(web.rsplit(":", 1)[1])
    requests_sent = [b"GET /healthz HTTP/1.1\r\nHost: tracker\r\nConnection: close\r\n\r\n",
                     b"GET /healthz HTTP/1.0\r\n\r\n"] * 6
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in requests_sent]
    try:
        for connection, sent in zip(held, requests_sent, strict=True):
            connection.sendall(sent)
        started = time.monotonic()
        assert all(_response(connection).split(b" ")[1] == b"200" for connection in held)
        assert all(_closed_by_the_server(connection) for connection in held)  # the server's side, at once
        assert requests.get(f"{web}/healthz", timeout=DEADLINE_S).ok
        assert time.monotonic() - started < 3
    finally:
        for connection in held:
            connection.close()


def test_a_whole_upload_still_gets_through_the_body_reader(web):
    raw = json.dumps(solved_event(ticket="W-1")).encode()
    headers, query = signed("standard", raw)
    response = requests.post(f"{web}/webhooks/standard", data=raw, params=query, timeout=DEADLINE_S,
                             headers={"Content-Type": "application/json", **headers})
    assert response.status_code == 202, response.text


def _answer(port: int, raw: bytes) -> tuple[bytes, bytes]:
    """Send one raw request, stop sending, and return the status line and the body of the first answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S) as connection:
        connection.sendall(raw)
        connection.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?im)^content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    return head.split(b"\r\n", 1)[0], rest[:length]


MALFORMED_CHUNKS = {  # what gunicorn's chunked reader raises on, each once an error of the app's (500)
    "size": b"zz\r\n{}\r\n0\r\n\r\n",
    "terminator": b"2\r\n{}XX0\r\n\r\n",
    "extension": b"2;\x01\r\n{}\r\n0\r\n\r\n",
    "trailer": b"2\r\n{}\r\n0\r\nNo Colon Here\r\n\r\n",
}


@pytest.mark.parametrize("fault", sorted(MALFORMED_CHUNKS))
def test_a_chunked_body_that_does_not_decode_is_a_400_that_says_so(web, fault):
    port = int(web.rsplit(":", 1)[1])
    raw = json.dumps(solved_event(ticket="W-2")).encode()
    headers, _ = signed("standard", raw)
    request = (b"POST /webhooks/standard HTTP/1.1\r\nHost: tracker\r\nContent-Type: application/json\r\n"
               + b"".join(f"{name}: {value}\r\n".encode() for name, value in headers.items())
               + b"Transfer-Encoding: chunked\r\n\r\n" + MALFORMED_CHUNKS[fault])
    status, body = _answer(port, request)
    assert status.split(b" ")[1] == b"400", (status, body)
    answer = json.loads(body)
    assert answer["code"] == 400 and "chunked transfer encoding is malformed" in answer["message"], answer
    page_status, page = _answer(port, b"POST /dashboard/login HTTP/1.1\r\nHost: tracker\r\n"
                                      b"Content-Type: application/x-www-form-urlencoded\r\n"
                                      b"Transfer-Encoding: chunked\r\n\r\n" + MALFORMED_CHUNKS[fault])
    assert page_status.split(b" ")[1] == b"400" and b"<html" in page.lower(), page_status
    assert _healthy(web)


@pytest.mark.parametrize("length", [5000, 8000])
def test_a_url_longer_than_the_limit_gets_the_json_envelope_not_gunicorns_html(web, length):
    response = requests.get(f"{web}/api/v1/customers", params={"q": "x" * length}, timeout=DEADLINE_S)
    assert response.status_code == 414
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == 414 and body["message"] == "The URL is longer than 4096 bytes.", body


class StalledBody:
    """A request body whose next bytes never come: every read outlasts the socket's timeout."""

    def read(self, size: int = -1) -> bytes:
        raise TimeoutError("timed out")

    readline = read


@pytest.mark.parametrize(("path", "content_type", "json_answer"), [
    ("/webhooks/standard", "application/json", True),
    ("/dashboard/login", "application/x-www-form-urlencoded", False),
])
def test_a_body_that_stops_arriving_is_a_408_in_the_envelope_or_a_page(app, path, content_type, json_answer):
    response = app.test_client().post(path, headers={"Content-Type": content_type},
                                      environ_overrides={"wsgi.input": StalledBody(), "CONTENT_LENGTH": "100"})
    assert response.status_code == 408
    assert (response.json["code"] == 408) if json_answer else response.mimetype == "text/html"


# --- sessions ---------------------------------------------------------------------------------------------

def _csrf(page: Any) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert match
    return match.group(1)


def test_a_copied_dashboard_cookie_stops_working_once_its_owner_signs_out(app, store):
    owner = app.test_client()
    owner.post("/dashboard/login", data={"key": store.create_key("lead"), "csrf_token": _csrf(
        owner.get("/dashboard/login"))})
    page = owner.get("/dashboard")
    assert page.status_code == 200
    cookie = owner.get_cookie("tracker_dashboard", path="/dashboard")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("tracker_dashboard", cookie.value, path="/dashboard")
    assert thief.get("/dashboard").status_code == 200
    assert owner.post("/dashboard/logout", data={"csrf_token": _csrf(page)}).status_code == 303
    assert thief.get("/dashboard").status_code == 302


# --- headers, the App URL, the survey page ----------------------------------------------------------------

@pytest.fixture
def world(post_event, store, env, smtp, client) -> World:
    return World(post_event, store, env, smtp, client)


def test_every_html_page_carries_the_security_headers_and_no_inline_style(world, client):
    world.solve("T-1", "kari@example.no")
    assert world.send() == ["sent"]
    mail = world.smtp.wait_for(1)[0]
    question = survey_link(mail, 4)
    unsubscribe = re.search(r"/u/[a-z2-7-]+", mail["List-Unsubscribe"]).group(0)
    pages = {path: client.get(path) for path in
             (question, unsubscribe, "/s/nope-nope", "/u/nope-nope", "/nowhere", "/", "/dashboard/login")}
    for path, response in pages.items():
        assert response.mimetype == "text/html", path
        assert "frame-ancestors 'none'" in response.headers.get("Content-Security-Policy", ""), path
        assert "style-src 'self'" in response.headers["Content-Security-Policy"], path
        assert response.headers.get("X-Content-Type-Options") == "nosniff", path
        assert response.headers.get("Referrer-Policy") == "same-origin", path
        html = response.get_data(as_text=True)
        assert " style=" not in html and "<style" not in html, f"{path} has inline style the policy refuses"
    assert client.get("/healthz").headers["X-Content-Type-Options"] == "nosniff"


def test_the_app_url_opens_a_page_that_leads_to_the_dashboard_the_api_and_the_probes(client):
    response = client.get("/")
    assert response.status_code == 200
    links = set(re.findall(r'<a href="([^"]+)"', response.get_data(as_text=True)))
    assert {"/dashboard", "/api/openapi.json", "/healthz", "/readyz", "/metrics"} <= links
    for link in links - {"/dashboard"}:
        assert client.get(link).status_code == 200, link
    assert client.get("/dashboard").status_code == 302  # to the login form


def test_reopening_a_rating_link_after_answering_keeps_the_comment_already_given(world, client):
    world.solve("T-1", "kari@example.no")
    assert world.send() == ["sent"]
    world.smtp.wait_for(1)
    world.answer("kari@example.no", 2, "The parcel came broken")
    link = survey_link(world.mail_to("kari@example.no"), 4)
    page = client.get(link, query_string={"rating": "4"}).get_data(as_text=True)
    assert re.search(r"<textarea[^>]*>The parcel came broken</textarea>", page), page
    assert re.search(r'value="4"[^>]* checked', page)

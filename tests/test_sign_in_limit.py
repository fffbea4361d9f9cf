"""Failed dashboard sign-ins limited per client (TRACKER_SIGN_IN_FAILURES), and the client's own address behind the
proxies FORWARDED_ALLOW_IPS trusts (tracker.web.clients): through the real app on a real Redis."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.test import EnvironBuilder

from tests.support import wait_until
from tests.test_dashboard import csrf_of
from tracker.config import ConfigError, load_settings
from tracker.store import Store
from tracker.web.app import create_app
from tracker.web.clients import PEER, Proxies, limited_as
from tracker.web.dashboard import views

LIMIT = 3


def app_with(env: dict[str, str], store: Store, **settings: str) -> Any:
    return create_app(load_settings({**env, **settings}), store, enqueue=lambda *task: None)


@pytest.fixture
def limited(env: dict[str, str], store: Store) -> Any:
    return app_with(env, store, TRACKER_SIGN_IN_FAILURES=str(LIMIT)).test_client()


def sign_in(client: Any, key: str, peer: str = "127.0.0.1", forwarded: str | None = None) -> Any:
    """POST the login form with key, from peer, through a proxy naming forwarded when given."""
    environ = {"REMOTE_ADDR": peer}
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    token = csrf_of(client.get("/dashboard/login", environ_base=environ, headers=headers))
    return client.post("/dashboard/login", data={"key": key, "csrf_token": token}, environ_base=environ,
                       headers=headers)


def refused(response: Any) -> bool:
    """The login form again, saying the client is over its limit, with Retry-After."""
    return (response.status_code == 429 and "Too many sign-ins" in response.get_data(as_text=True)
            and 0 < int(response.headers["Retry-After"]) <= views.SIGN_IN_WINDOW_S)


def test_past_the_limit_a_client_is_refused_before_its_key_is_checked_and_others_are_not(limited, store):
    key = store.create_key("lead")
    for _ in range(LIMIT):
        assert sign_in(limited, "trk_not-a-key", peer="198.51.100.7").status_code == 401
    # Even the right key: guessing stops at the limit, whatever the guess.
    over = sign_in(limited, key, peer="198.51.100.7")
    assert refused(over), (over.status_code, over.headers)
    assert "Try again in 15 minutes" in over.get_data(as_text=True)
    assert limited.get("/dashboard").status_code == 302  # no session was started
    assert sign_in(limited, key, peer="198.51.100.8").status_code == 303  # another client signs in


def test_a_forged_forwarded_header_from_an_untrusted_peer_changes_nothing(limited, store):
    key = store.create_key("lead")
    for n in range(LIMIT):
        assert sign_in(limited, "trk_wrong", peer="198.51.100.7", forwarded=f"203.0.113.{n}").status_code == 401
    assert refused(sign_in(limited, key, peer="198.51.100.7", forwarded="203.0.113.99"))


def test_behind_a_trusted_proxy_each_client_is_counted_on_its_own(limited, store):
    key = store.create_key("lead")
    # The proxy (127.0.0.1, trusted by default) appends the address it was reached from; what the client wrote
    # before it is its own word.
    for _ in range(LIMIT):
        assert sign_in(limited, "trk_wrong", forwarded="10.9.9.9, 203.0.113.5").status_code == 401
    assert refused(sign_in(limited, key, forwarded="203.0.113.5"))
    assert refused(sign_in(limited, key, forwarded="1.1.1.1, 203.0.113.5"))  # a forged entry to its left
    assert sign_in(limited, key, forwarded="203.0.113.6").status_code == 303


def test_one_ipv6_site_is_counted_as_one_client(limited, store):
    key = store.create_key("lead")
    for n in range(LIMIT):
        assert sign_in(limited, "trk_wrong", forwarded=f"2001:db8:1:2::{n + 1}").status_code == 401
    assert refused(sign_in(limited, key, forwarded="2001:db8:1:2:aaaa::7"))
    assert sign_in(limited, key, forwarded="2001:db8:1:3::1").status_code == 303


def test_the_window_ends_and_the_client_may_try_again(limited, store, monkeypatch):
    monkeypatch.setattr(views, "SIGN_IN_WINDOW_S", 1)
    key = store.create_key("lead")
    for _ in range(LIMIT):
        assert sign_in(limited, "trk_wrong").status_code == 401
    assert refused(sign_in(limited, key))
    assert 0 < store.sign_in_failures(limited_as("127.0.0.1"))[1] <= 1000
    assert wait_until(lambda: sign_in(limited, key).status_code == 303, timeout=10, what="the window to end")


def test_no_limit_when_set_to_zero_and_an_empty_form_is_not_a_failure(env, store):
    unlimited = app_with(env, store, TRACKER_SIGN_IN_FAILURES="0").test_client()
    for _ in range(12):
        assert sign_in(unlimited, "trk_wrong").status_code == 401
    assert store.sign_in_failures(limited_as("127.0.0.1")) == (0, 0)
    default = app_with(env, store).test_client()
    for _ in range(12):
        assert sign_in(default, " ").status_code == 401  # "Enter an API key.": no key was tried
    assert store.sign_in_failures(limited_as("127.0.0.1")) == (0, 0)


def test_the_access_log_reads_the_forwarded_client(env, store):
    """gunicorn logs the environ the app was given: a trusted proxy's request names its client there."""
    app = app_with(env, store, FORWARDED_ALLOW_IPS="10.0.0.0/8")

    def served(peer: str, forwarded: str) -> dict[str, Any]:
        environ = EnvironBuilder(path="/healthz", environ_base={"REMOTE_ADDR": peer},
                                 headers={"X-Forwarded-For": forwarded}).get_environ()
        b"".join(app.wsgi_app(environ, lambda *args: None))
        return environ

    through = served("10.1.2.3", "203.0.113.9, 10.0.0.2")  # two proxies, both trusted
    assert (through["REMOTE_ADDR"], through[PEER]) == ("203.0.113.9", "10.1.2.3")
    direct = served("127.0.0.1", "203.0.113.9")  # not named by FORWARDED_ALLOW_IPS here
    assert direct["REMOTE_ADDR"] == "127.0.0.1" and PEER not in direct


@pytest.mark.parametrize(("allowed", "peer", "forwarded", "client"), [
    (("127.0.0.1",), "127.0.0.1", "203.0.113.9", "203.0.113.9"),
    (("127.0.0.1",), "127.0.0.2", "203.0.113.9", None),  # the peer is not trusted
    (("127.0.0.1",), "::ffff:127.0.0.1", "203.0.113.9", "203.0.113.9"),  # a dual-stack socket's IPv4 peer
    (("::1",), "::1", "[2001:db8::5]:4431", "2001:db8::5"),  # an entry with its port
    (("127.0.0.1",), "127.0.0.1", "203.0.113.9:80", "203.0.113.9"),
    (("127.0.0.1", "10.0.0.0/8"), "127.0.0.1", "10.0.0.4, 10.0.0.5", "10.0.0.4"),  # all trusted: the leftmost
    (("127.0.0.1",), "127.0.0.1", "unknown, 203.0.113.9", "203.0.113.9"),  # read from the right, stops there
    (("127.0.0.1",), "127.0.0.1", "203.0.113.9, not-an-address", None),
    (("127.0.0.1",), "127.0.0.1", " , ", None),
    (("*",), "198.51.100.1", "203.0.113.9", "203.0.113.9"),
    (("127.0.0.1",), "", "203.0.113.9", None),  # no peer address (a Unix socket)
])
def test_the_client_a_forwarded_header_names(allowed, peer, forwarded, client):
    assert Proxies(allowed).client(peer, forwarded) == client


def test_a_malformed_forwarded_allow_ips_or_limit_is_one_line_naming_it(env):
    with pytest.raises(ConfigError, match=r"^FORWARDED_ALLOW_IPS must list addresses or networks \(or be \*\), "
                                          r"got 'proxy\.internal'$"):
        load_settings({**env, "FORWARDED_ALLOW_IPS": "127.0.0.1, proxy.internal"})
    with pytest.raises(ConfigError, match=r"^TRACKER_SIGN_IN_FAILURES must be at least 0, got '-1'$"):
        load_settings({**env, "TRACKER_SIGN_IN_FAILURES": "-1"})
    assert load_settings({**env, "FORWARDED_ALLOW_IPS": "*"}).forwarded_allow_ips == ("*",)
    assert load_settings({**env, "FORWARDED_ALLOW_IPS": ""}).forwarded_allow_ips == ()

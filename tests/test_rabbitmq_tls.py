"""RabbitMQ over TLS (amqps://) as the Celery broker, as hosted RabbitMQ (CloudAMQP, Amazon MQ) requires it.

The local RabbitMQ listens without TLS, so each test puts a real TLS hop in front of it: a relay on a free loopback
port that ends TLS with a certificate the test made (tests.support.make_tls_files) and pipes the bytes to RabbitMQ's
plain port. The real processes (`tracker web` under gunicorn, `tracker worker`, `tracker beat`, `tracker check`) run
through it: the whole loop with the CA named, and, each in one line without a traceback or the password, a CA that
did not sign the certificate, a certificate made for another host name, a plain AMQP port under amqps:// and a
refused login.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from tests.support import TlsFiles, make_env, make_tls_files, tracker, wait_until
from tests.test_operator_errors import all_at_once, check_naming, one_line_naming
from tests.test_rabbitmq import own_vhost
from tests.test_redis_credentials import Loop, leaks

pytestmark = pytest.mark.e2e

HOST, PORT = "127.0.0.1", 5672
PASSWORD = "rabbit/tls-pw-4c1e"
WRONG_PASSWORD = "rabbit/wrong-pw-77b0"
EMAIL = "kari@example.no"


class TlsRelay:
    """A TLS-terminating TCP relay on a free loopback port: it ends each connection's TLS with the certificate given
    and pipes the bytes, both ways, to RabbitMQ's plain port. One thread accepts; each connection has a thread of its
    own, the only one that touches its TLS socket."""

    def __init__(self, certificate: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certificate, key)
        self.listener = socket.create_server((HOST, 0))
        self.listener.settimeout(0.2)  # how soon the accepting thread sees stop()
        self.port: int = self.listener.getsockname()[1]
        self.relayed: list[tuple[str, int]] = []  # the client address of each connection whose handshake completed
        self.refused: list[str] = []  # handshakes that failed (a client that did not trust the certificate)
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                raw, client = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._relay, args=(raw, client), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _relay(self, raw: socket.socket, client: tuple[str, int]) -> None:
        raw.settimeout(10)
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.refused.append(str(exc))
            raw.close()
            return
        self.relayed.append(client)
        with tls, socket.create_connection((HOST, PORT), timeout=10) as plain:
            plain.settimeout(30)
            tls.settimeout(30)
            while not self._stopping.is_set():
                ready = [tls] if tls.pending() else select.select([tls, plain], [], [], 0.2)[0]
                for source in ready:
                    try:
                        data = source.recv(65536)
                        if not data:
                            return
                        (plain if source is tls else tls).sendall(data)
                    except OSError:  # ssl.SSLError among them: one side went away mid-record
                        return

    def stop(self) -> None:
        self._stopping.set()
        self.listener.close()
        for thread in self._threads:
            thread.join(timeout=5)


@pytest.fixture
def relay(tls_files: TlsFiles) -> Iterator[TlsRelay]:
    """A relay whose certificate the test's CA signed for 127.0.0.1 and localhost."""
    started = TlsRelay(tls_files.server_cert, tls_files.server_key)
    yield started
    started.stop()


@pytest.fixture
def rabbit() -> Iterator[tuple[str, str]]:
    """A vhost and a user with a password, of this test's own, on the local RabbitMQ; yield (user, vhost), the user's
    name and the vhost's the same, then delete both."""
    with own_vhost("tracker-tls", PASSWORD) as (vhost, user):
        yield user, vhost


def amqps(user: str, vhost: str, port: int, password: str = PASSWORD, **query: str) -> str:
    """The broker's URL as an operator writes it: the password percent-encoded, the TLS options in the query."""
    options = f"?{urlencode(query)}" if query else ""
    return f"amqps://{user}:{quote(password, safe='')}@{HOST}:{port}/{vhost}{options}"


def test_the_whole_loop_runs_over_amqps_with_the_ca_given(redis_url, smtp, tls_files, relay, rabbit, tmp_path):
    user, vhost = rabbit
    broker = amqps(user, vhost, relay.port, ssl_ca_certs=str(tls_files.ca))
    env = make_env(redis_url, smtp.port, TRACKER_BROKER_URL=broker)  # type: ignore[attr-defined]
    checked = tracker(env, "check")
    assert checked.returncode == 0, checked.stderr
    shown = f"amqps://{user}:***@{HOST}:{relay.port}/{vhost}?{urlencode({'ssl_ca_certs': tls_files.ca})}"
    assert (f"ok  broker: {shown} accepts connections (amqp over TLS, its certificate and host name checked)"
            in checked.stdout), checked.stdout
    with Loop(env, tmp_path) as loop:
        web, worker, _beat = loop.processes
        assert f"amqps://{user}:**@{HOST}:{relay.port}/{vhost}" in worker.output()
        # The web enqueues the drain through the relay, the worker runs it, beat's sweep sends the survey; the answer
        # on the survey page is counted in the card.
        card = loop.run(smtp, rating=5)
        assert card["score"] == 100.0
        # The drain's kick is the web's own task (beat sends drain-events): the web's enqueue went over TLS.
        assert "Task tracker.drain_kicked[" in worker.output() and "could not enqueue" not in web.output()
        # The queue gauge reads RabbitMQ's count over TLS: once the work is done nothing waits.
        wait_until(lambda: "tracker_celery_queue_length 0.0" in loop.get("/metrics").text, 15,
                   what="the queue gauge to read an empty RabbitMQ queue")
        alive = tracker(loop.env, "check", "--process", "worker")  # the container healthcheck pings over TLS too
        assert alive.returncode == 0 and "is alive" in alive.stdout, alive.stderr
        loop.seen += [alive.stdout, alive.stderr]
    assert len(relay.relayed) >= 3 and not relay.refused, relay.refused  # web, worker and beat each over TLS
    outputs = [*loop.outputs(), checked.stdout, checked.stderr]
    assert not leaks(outputs, PASSWORD)
    assert not any("Traceback" in text for text in outputs[:3]), outputs[:3]


def test_a_broker_amqps_cannot_use_stops_each_process_at_start_in_one_line_without_the_password(
        redis_url, smtp, tls_files, relay, rabbit, tmp_path):
    user, vhost = rabbit
    ca = str(tls_files.ca)
    stranger = make_tls_files(tmp_path / "another-ca")  # a CA that signed nothing the relay shows
    # The relay shows a certificate the test's CA signed for another name (the client's: CN=tracker-client).
    misnamed = TlsRelay(tls_files.client_cert, tls_files.client_key)
    try:
        env = make_env(redis_url, smtp.port)  # type: ignore[attr-defined]
        untrusted = amqps(user, vhost, relay.port, ssl_ca_certs=str(stranger.ca))
        runs = [
            ({**env, "TRACKER_BROKER_URL": untrusted}, ("worker",)),
            ({**env, "TRACKER_BROKER_URL": untrusted}, ("web",)),
            ({**env, "TRACKER_BROKER_URL": untrusted}, ("check",)),
            # no CA named: the system's CAs, which did not sign it either
            ({**env, "TRACKER_BROKER_URL": amqps(user, vhost, relay.port)}, ("beat",)),
            ({**env, "TRACKER_BROKER_URL": amqps(user, vhost, misnamed.port, ssl_ca_certs=ca)}, ("worker",)),
            # ... which the operator may take knowingly: the chain is still checked
            ({**env, "TRACKER_BROKER_URL": amqps(user, vhost, misnamed.port, ssl_ca_certs=ca,
                                                 ssl_check_hostname="false")}, ("check",)),
            # RabbitMQ's plain port under amqps://
            ({**env, "TRACKER_BROKER_URL": amqps(user, vhost, PORT, ssl_ca_certs=ca)}, ("web",)),
            ({**env, "TRACKER_BROKER_URL": amqps(user, vhost, PORT, ssl_ca_certs=ca)}, ("check",)),
            # the login refused over TLS
            ({**env, "TRACKER_BROKER_URL": amqps(user, vhost, relay.port, WRONG_PASSWORD, ssl_ca_certs=ca)},
             ("worker",)),
        ]
        results = [result for result, _ in all_at_once(*runs)]
    finally:
        misnamed.stop()
    (untrusted_worker, untrusted_web, untrusted_check, system_beat, misnamed_worker, unnamed_check, plain_web,
     plain_check, refused_worker) = results
    not_trusted = f"TRACKER_BROKER_URL: the TLS certificate of the RabbitMQ at {HOST}:{relay.port} is not trusted"
    for result in (untrusted_worker, untrusted_web, system_beat):
        assert one_line_naming(result, not_trusted + " (unable to get local issuer certificate)"), result.stderr
        assert "name the CA that signed it with ?ssl_ca_certs=" in result.stderr
    assert check_naming(untrusted_check, f"TRACKER_BROKER_URL: cannot reach the broker: the TLS certificate of the "
                                         f"RabbitMQ at {HOST}:{relay.port} is not trusted"), untrusted_check.stderr
    assert one_line_naming(misnamed_worker, f"TRACKER_BROKER_URL: the TLS certificate of the RabbitMQ at {HOST}:"
                                            f"{misnamed.port} is not trusted (IP address mismatch, certificate is not "
                                            f"valid for '{HOST}'"), misnamed_worker.stderr
    assert unnamed_check.returncode == 0, unnamed_check.stderr
    assert "(amqp over TLS, its certificate checked but not its host name: ssl_check_hostname=false)" in \
        unnamed_check.stdout
    plain = (f"TRACKER_BROKER_URL: RabbitMQ at {HOST}:{PORT} speaks plain AMQP, not TLS: amqps:// needs its TLS "
             "listener")
    assert one_line_naming(plain_web, plain), plain_web.stderr
    assert check_naming(plain_check, "TRACKER_BROKER_URL: cannot reach the broker: " + plain.split(": ", 1)[1]), \
        plain_check.stderr
    assert one_line_naming(refused_worker, f"TRACKER_BROKER_URL: RabbitMQ at {HOST}:{relay.port} refused the login "
                                           f"of user '{user}'"), refused_worker.stderr
    # Each refusal of the certificate ended the relay's handshake: nothing was sent over a connection it did not trust.
    assert len(relay.refused) >= 4 and len(misnamed.refused) >= 1
    said = [text for result in results for text in (result.stdout, result.stderr)]
    assert not leaks(said, PASSWORD, WRONG_PASSWORD)

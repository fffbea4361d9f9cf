"""A Redis behind Sentinel (the store's or the Celery broker's): what refuses the tracker, asked of its Sentinels and
their master."""

from __future__ import annotations

import ssl
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tracker.config import SentinelUrl, hide_secrets, read_sentinel_url
from tracker.errors import lasting_cause

TIMEOUT = 3.0  # seconds for each connection and reply, one try: a silent Sentinel holds up no start for long
MASTER_HINT = ("give it in the URL's user part: sentinel://:PASSWORD@s1:26379;sentinel://s2:26379/0?master_name=..., "
               "or sentinel://USER:PASSWORD@... for an ACL user")
SENTINEL_HINT = ("give it in the query: ...?master_name=...&sentinel_password=PASSWORD, with sentinel_username=USER "
                 "for an ACL user (the user part is the master's)")
# Why a broker behind Sentinel refuses the tracker (None: nothing refused), and what did not answer ("": all did).
Findings = tuple[str | None, str]


def sentinel_refusal(url: str, variable: str = "TRACKER_BROKER_URL") -> str | None:
    """Say in one line naming the variable why a Redis behind Sentinel will not let the tracker in until an
    operator acts: a Sentinel that refuses the URL's Sentinel credentials (or wants some), a server that is no
    Sentinel, Sentinels that all answer and watch no master of that name, a master that refuses the URL's
    credentials (or wants some) or its database, and over TLS a certificate not trusted or a handshake ended for the
    lack of a client certificate. None when the master lets the tracker in, and when no Sentinel or no master
    answers: down, the processes wait for them. Celery would try a refused one again for ever."""
    return sentinel_findings(url, variable)[0]


def sentinel_findings(url: str, variable: str = "TRACKER_BROKER_URL") -> Findings:
    """Ask the Sentinels for the master and log in to it, as kombu (or the store) will: why it refuses the tracker
    (sentinel_refusal, None when nothing refused), and in a few words what did not answer ("" when everything did),
    for `tracker check`: kombu's own error sums up every Sentinel's answer with the whole of its client's
    settings."""
    sentinel = read_sentinel_url(url, variable)
    answered, unanswered = 0, []
    for host, port in sentinel.sentinels:
        where = f"the Sentinel at {host}:{port}"
        client = _client(sentinel, host, port, sentinel.sentinel_username, sentinel.sentinel_password)
        try:
            address = client.sentinel_get_master_addr_by_name(sentinel.master_name)
        except redis.AuthenticationError as exc:
            return _refused(variable, where, exc, url, sentinel.sentinel_username, sentinel.sentinel_password,
                            "of sentinel_password", SENTINEL_HINT), ""
        except redis.ResponseError as exc:  # a Redis that is no Sentinel: "unknown command 'SENTINEL'"
            return f"{variable}: the server at {host}:{port} is no Sentinel ({_first_line(exc, url)})", ""
        except redis.RedisError as exc:
            if (problem := _tls_refusal(variable, where, exc, url)) is not None:
                return problem, ""
            # down or slow: another Sentinel may answer, or Celery waits for them
            unanswered.append(f"{host}:{port} does not answer ({_first_line(exc, url).rstrip('.')})")
            continue
        finally:
            client.close()
        answered += 1
        if address:
            return _master_findings(variable, sentinel, url, where, (_text(address[0]), int(address[1])))
        unanswered.append(f"{host}:{port} watches no such master")
    if answered and answered == len(sentinel.sentinels):
        return (f"{variable}: no Sentinel of the URL watches a master named {sentinel.master_name!r} (the "
                "name of its `sentinel monitor` line goes in master_name)"), ""
    return None, f"no Sentinel of the URL names the master {sentinel.master_name!r}: {'; '.join(unanswered)}"


def _master_findings(variable: str, sentinel: SentinelUrl, url: str, named_by: str,
                     address: tuple[str, int]) -> Findings:
    """Log in to the master a Sentinel named, as kombu (or the store) will: why it refuses the tracker, and whether
    it answered."""
    user, password = sentinel.master_credentials
    where = f"the Redis master {sentinel.master_name!r} at {address[0]}:{address[1]} (as {named_by} names it)"
    client = _client(sentinel, *address, user, password, db=int(sentinel.database or 0))
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        return _refused(variable, where, exc, url, user, password, "in the URL's user part", MASTER_HINT), ""
    except redis.ResponseError as exc:  # SELECT of a database the master does not have
        return f"{variable}: {where} refused the database: {_first_line(exc, url)}", ""
    except redis.RedisError as exc:  # down, unless TLS failed for good: the Sentinels fail over, or Celery waits
        return _tls_refusal(variable, where, exc, url), f"{where} does not answer ({_first_line(exc, url).rstrip('.')})"
    finally:
        client.close()
    return None, ""


def _refused(variable: str, where: str, error: BaseException, url: str, user: str | None, password: str | None,
             given: str, hint: str) -> str:
    if password is None:  # Redis's reason (NOAUTH, or HELLO's long one) says no more than this
        return f"{variable}: {where} wants a password, and the URL gives none: {hint}"
    whose = f"the ACL user {user!r}" if user else "the default user"
    return f"{variable}: {where} refused the credentials {given} ({whose} and its password): " \
           f"{_first_line(error, url)}"


def _tls_refusal(variable: str, where: str, error: BaseException, url: str) -> str | None:
    """Say in one line why a TLS handshake with a Sentinel or the master failed for good (a certificate not trusted,
    a client certificate wanted or refused), None when it did not."""
    cause = lasting_cause(error)
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = hide_secrets(str(cause.verify_message or cause.reason or cause).rstrip("."), url)
        return (f"{variable}: the TLS certificate of {where} is not trusted ({reason}): name the CA that signed"
                f" it with ssl_ca_certs=/path/to/ca.pem (ssl_check_hostname=false if it was made for another name than"
                f" the URL's, or the address the Sentinels give; ssl_cert_reqs=none checks nothing)")
    if isinstance(cause, ssl.SSLError):  # an alert of tracker.errors.CERTIFICATE_ALERTS
        return (f"{variable}: {where} ended the TLS handshake ({_first_line(cause, url)}): it wants a client "
                f"certificate it trusts: give ssl_certfile and ssl_keyfile in the URL")
    return None


def _client(sentinel: SentinelUrl, host: str, port: int, user: str | None, password: str | None,
            db: int = 0) -> Any:
    tls = sentinel.tls_options
    options: dict[str, Any] = {"ssl": True, **tls} if tls is not None else {}
    return redis.Redis(host=host, port=port, db=db, username=user, password=password, socket_timeout=TIMEOUT,
                       socket_connect_timeout=TIMEOUT, retry=Retry(NoBackoff(), 0), **options)


def _first_line(error: BaseException, url: str) -> str:
    return hide_secrets((str(error).strip().splitlines() or [type(error).__name__])[0], url)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

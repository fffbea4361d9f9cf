"""A broker URL as Celery and kombu are given it: what TRACKER_BROKER_URL says (read and checked by tracker.config),
written the way kombu reads each transport, with the transport options and TLS settings it takes only apart from the
URL (a Redis's socket, pool and TLS options; a Sentinel's master and its own credentials; a RabbitMQ's TLS)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from tracker.config import FLAG_VALUES, ConfigError, SentinelUrl, read_sentinel_url, redact_url


def _flag_value(value: str) -> bool:
    """A query option's truth as redis-py reads it (to_bool): 0, f, false, n and no, in any case, are false."""
    return value.upper() not in ("0", "F", "FALSE", "N", "NO")


# Query options of a redis-py URL that kombu's Redis transport takes as transport options of the same names, each read
# as redis-py reads it. Other options that only tune redis-py's client (protocol, socket_read_size, ...) are left out
# of the broker's URL: kombu fails on any option it does not know.
BROKER_TRANSPORT_OPTIONS: dict[str, Callable[[str], object]] = {
    "socket_timeout": float, "socket_connect_timeout": float, "socket_keepalive": _flag_value,
    "health_check_interval": int, "retry_on_timeout": _flag_value, "max_connections": int, "client_name": str,
}


def broker_connection(url: str) -> tuple[str, dict[str, object]]:
    """Split a broker URL into what Celery connects to and the transport options it names.

    A Sentinel broker names its master in the query (`sentinel://s1:26379;sentinel://s2:26379/0?master_name=mymaster`,
    each Sentinel a `;`-separated URL): kombu takes the master's name, and the Sentinels' own credentials
    (`sentinel_password=`, `sentinel_username=`), only as transport options (read_sentinel_url says what kombu is
    given of the rest).

    A unix:// URL (a Redis's socket) is written as kombu names a socket (redis+socket://), which it reads the same.
    A redis:// or rediss:// URL (TRACKER_BROKER_URL, or TRACKER_REDIS_URL when it is unset) is written as redis-py
    reads it, and kombu reads it otherwise: a user and password given as query options (`?password=`, which kombu
    fails on) move into the URL's user part, where kombu also masks them in what Celery logs; redis-py's socket and
    pool options become the transport options of the same names, `?db=` the database in the path; the TLS options
    (`ssl_*`) stay, for kombu to hand to redis-py; what only tunes redis-py's own client is left out. A rediss:// URL
    that does not say `ssl_cert_reqs` gets `required`, as redis-py reads it for the store: kombu would otherwise
    take the server's certificate unchecked (and log a warning on every connection). An amqps:// URL loses its TLS
    options, which kombu would hand to py-amqp under names it fails on: Celery gets them as broker_tls makes them.
    Other URLs pass as they are.
    """
    if url.startswith(("redis://", "rediss://")):
        return _redis_broker(url)
    if url.startswith("amqps://"):
        return _without_tls_options(url), {}
    if url.startswith("unix://"):
        return _socket_broker(url), {}
    if not url.startswith("sentinel://"):
        return url, {}
    return _sentinel_broker(read_sentinel_url(url))


def _sentinel_broker(sentinel: SentinelUrl) -> tuple[str, dict[str, object]]:
    """broker_connection for a sentinel:// URL: each Sentinel's URL with the master's credentials and database, the
    master's name and the Sentinels' credentials and TLS as transport options (with_sentinel_sockets completes those).
    The master's TLS options are Celery's broker_use_ssl (broker_tls), which kombu keeps from one URL to the next."""
    auth = f"{sentinel.user_part}@" if sentinel.user_part else ""
    path = f"/{sentinel.database}" if sentinel.database else ""
    options: dict[str, object] = {"master_name": sentinel.master_name} if sentinel.master_name else {}
    if own := sentinel.sentinel_kwargs:
        options["sentinel_kwargs"] = own
    return ";".join(f"sentinel://{auth}{host}{path}" for host in sentinel.hosts), options


def with_sentinel_sockets(options: dict[str, object]) -> dict[str, object]:
    """Return a broker's transport options with the socket options (socket_timeout, ...) also in the Sentinels' own
    connection options (sentinel_kwargs), when the URL gives those: redis-py gives the Sentinels the socket options
    only when it is given no sentinel_kwargs, and a Sentinel that accepts and never answers would hold a process."""
    own = options.get("sentinel_kwargs")
    if not isinstance(own, Mapping):
        return options
    sockets = {key: value for key, value in options.items() if key.startswith("socket_")}
    return {**options, "sentinel_kwargs": {**sockets, **own}}


def _without_tls_options(url: str) -> str:
    """Return url without its TLS options (`ssl_*`), the others kept as they are."""
    parts = urlsplit(url)
    kept = [(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True)
            if not name.startswith("ssl_")]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def broker_tls(url: str) -> dict[str, object] | None:
    """Return the TLS settings of an amqps:// broker URL as py-amqp takes them (Celery's broker_use_ssl, kombu's
    `ssl`), of a sentinel:// one with TLS options as redis-py takes them for the master (SentinelUrl.tls_options),
    None for any other URL.

    py-amqp checks the certificate's chain with a bare `ssl=True` (which is all an amqps:// URL gives it), but its
    host name only when it is given server_hostname: it is given the URL's host name unless the URL says
    ssl_check_hostname=false or ssl_cert_reqs=none (py-amqp cannot check a name with no certificate checked). Without
    ssl_ca_certs, the system's CAs are trusted.
    """
    import ssl

    if url.startswith("sentinel://"):
        return read_sentinel_url(url).tls_options
    if not url.startswith("amqps://"):
        return None
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    modes = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
    checked = modes[query.get("ssl_cert_reqs") or "required"]
    options: dict[str, object] = {"cert_reqs": checked}
    for option, name in (("ssl_ca_certs", "ca_certs"), ("ssl_certfile", "certfile"), ("ssl_keyfile", "keyfile")):
        if query.get(option):
            options[name] = query[option]
    if checked != ssl.CERT_NONE and FLAG_VALUES[(query.get("ssl_check_hostname") or "true").lower()]:
        options["server_hostname"] = parts.hostname
    return options


def _socket_broker(url: str) -> str:
    """Write a Redis socket's unix:// URL (redis-py's: `unix://[user[:password]@]/path?db=N[&password=...]`) as kombu,
    which has no unix:// transport, names the same socket: `redis+socket://[user]:password@/path?virtual_host=N`."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    user = query.get("username", unquote(parts.username or ""))
    password = query.get("password", unquote(parts.password or ""))
    auth = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user or password else ""
    db = query.get("db", "")
    return f"redis+socket://{auth}{parts.path}" + (f"?virtual_host={db}" if db.isdigit() else "")


def _redis_broker(url: str) -> tuple[str, dict[str, object]]:
    """broker_connection for a redis:// or rediss:// URL."""
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:  # refused with its reason where the URL is read (_url); nothing to change here
        return url, {}
    given = parse_qsl(parts.query, keep_blank_values=True)
    tls = parts.scheme == "rediss"
    if not given and not tls:
        return url, {}
    query = dict(given)
    options: dict[str, object] = {}
    kept: list[tuple[str, str]] = []
    for name, value in given:
        if name.startswith("ssl_"):
            kept.append((name, value))
        elif name in BROKER_TRANSPORT_OPTIONS and value != "":
            try:
                options[name] = BROKER_TRANSPORT_OPTIONS[name](value)
            except ValueError:
                raise ConfigError(f"TRACKER_BROKER_URL: invalid value for {name!r} in {redact_url(url)!r}") from None
    if tls and "ssl_cert_reqs" not in query:
        kept.append(("ssl_cert_reqs", "required"))
    netloc = parts.netloc
    user, password = query.get("username"), query.get("password")
    if (user or password) and not has_password:  # as redis-py reads it: the user part wins over the query
        host = netloc.rpartition("@")[2]
        name = quote(user if user is not None else (parts.username or ""), safe="")
        netloc = f"{name}:{quote(password or '', safe='')}@{host}"
    path = f"/{query['db']}" if query.get("db", "").isdigit() else parts.path
    return urlunsplit((parts.scheme, netloc, path, urlencode(kept), parts.fragment)), options

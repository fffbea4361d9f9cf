"""Alert delivery: Slack's message form, and a signed, SSRF-guarded POST of the alert's payload.

Every request goes to an address checked before connecting: the host is resolved once, every
address it resolves to must be public (unless TRACKER_ALERT_ALLOW_PRIVATE), and the connection is
pinned to the checked address so a second DNS answer cannot point it elsewhere (DNS rebinding). The
URL is rewritten to the IP, the Host header keeps the name, and for HTTPS the TLS layer is given the
name for SNI and certificate checks, so certificates are verified against the name as usual.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import socket
import time
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from tracker import signing
from tracker.alerts.payload import message_id
from tracker.backoff import Backoff
from tracker.config import Settings
from tracker.scales import SCALES
from tracker.surveys.tokens import derive_key

if TYPE_CHECKING:  # requests loads only when an alert is delivered
    import requests
    from requests.adapters import HTTPAdapter

log = logging.getLogger(__name__)
TIMEOUT = (3.0, 10.0)  # connect, read (seconds)
# A receiver that fails (timeouts, unreachable, 408, 429, 5xx) is tried again 1 s, 2 s, 4 s … 512 s, then every 10
# minutes apart (each wait ±50 %), 16 attempts in all: about an hour of a receiver's outage, then the alert is given up
# with one error line. Well under the broker's visibility timeout (an hour) at every step.
ALERT_RETRY = Backoff(first_s=1.0, cap_s=600.0, attempts=16)
SLACK_HOST = "hooks.slack.com"
# Cloud metadata services: never a place for an alert, whatever the settings say.
METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AlertRetryable(Exception):
    """The endpoint may take the alert later: timeout, connection error, 429 or 5xx."""


class AlertRefused(Exception):
    """The alert must not be sent again: a refused address, a redirect or a 4xx answer."""


def alert_key(settings: Settings) -> bytes:
    return alert_keys(settings)[0]


def alert_keys(settings: Settings) -> list[bytes]:
    """Return the keys alerts are signed with: the secret key's, then each earlier key's still accepted."""
    return [derive_key(secret, "alerts") for secret in settings.secret_keys]


def alert_secret(settings: Settings) -> str:
    """Return the alerts' signing secret in the Standard Webhooks `whsec_` form receivers configure."""
    return "whsec_" + base64.b64encode(alert_key(settings)).decode("ascii")


def is_slack(url: str) -> bool:
    """Say whether a URL is a Slack incoming webhook (or marked as one with a `#slack` fragment)."""
    parts = urlsplit(url)
    return (parts.hostname == SLACK_HOST and parts.path.startswith("/services/")) or parts.fragment == "slack"


def _slack_escape(value: Any) -> str:
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(payload: dict[str, Any]) -> dict[str, Any]:
    """Render an alert in Slack's incoming-webhook format: a fallback `text` and `blocks`."""
    data = payload["data"]
    customer = data["customer"]
    who = _slack_escape(customer["email"])
    if customer.get("name"):
        who = f"{_slack_escape(customer['name'])} ({who})"
    high = SCALES[data["scale"]].high if data["scale"] in SCALES else "?"
    about = f" on {_slack_escape(data['ticket'])}" if data.get("ticket") else ""
    headline = f"Unhappy customer: {who} rated {data['rating']}/{high}{about}"
    lines = [f":warning: *{headline}*"]
    if data.get("subject"):
        lines.append(f"Subject: {_slack_escape(data['subject'])}")
    if data.get("comment"):
        lines.append("> " + _slack_escape(data["comment"])[:2500].replace("\n", "\n> "))
    context = [f"{label}: {_slack_escape(value)}" for label, value in (
        ("agent", (data.get("agent") or {}).get("name") or (data.get("agent") or {}).get("id")),
        ("team", data.get("team")), ("brand", data.get("brand")), ("source", data.get("source")),
        ("customer score", customer.get("score"))) if value is not None]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]
    if context:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    return {"text": headline, "blocks": blocks}


def refused_reason(address: IpAddress) -> str | None:
    """Say why an address must not be contacted (loopback, private, ...), or None when it is public."""
    candidates: list[IpAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 addresses wrapped in IPv6 reach the IPv4 host: judge the host they reach.
        embedded = [address.ipv4_mapped, address.sixtofour, address.teredo[1] if address.teredo else None]
        candidates += [a for a in embedded if a is not None]
    if any(candidate in METADATA for candidate in candidates):
        return "metadata"
    for candidate in candidates:
        for reason in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
            if getattr(candidate, f"is_{reason}"):
                return reason
        if not candidate.is_global:
            return "not_global"
    return None


def resolve_checked(host: str, port: int, allow_private: bool) -> list[IpAddress]:
    """Resolve host and return its addresses; raise AlertRefused if any one of them is refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise AlertRetryable(f"cannot resolve the alert host {host!r}: {type(exc).__name__}") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos))
    if not addresses:
        raise AlertRetryable(f"the alert host {host!r} resolves to no address")
    for address in addresses:
        reason = refused_reason(address)
        if reason == "metadata":
            raise AlertRefused(f"the alert host {host!r} resolves to a cloud metadata address ({address})")
        if reason and not allow_private:
            raise AlertRefused(f"the alert host {host!r} resolves to a {reason.replace('_', '-')} address "
                               f"({address}); set TRACKER_ALERT_ALLOW_PRIVATE=1 to allow private addresses")
    return addresses


@cache
def _pinned_tls() -> Callable[[str], HTTPAdapter]:
    from requests.adapters import HTTPAdapter

    class PinnedTLS(HTTPAdapter):
        """Connect to the pinned IP but speak TLS to the host name: SNI and certificate checks use the name."""

        def __init__(self, hostname: str):
            self._hostname = hostname
            super().__init__(max_retries=0)

        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["server_hostname"] = self._hostname
            super().init_poolmanager(*args, **kwargs)

    return PinnedTLS


def _adapter(url: str, hostname: str) -> HTTPAdapter:
    from requests.adapters import HTTPAdapter

    return _pinned_tls()(hostname) if url.startswith("https:") else HTTPAdapter(max_retries=0)


def _pinned(url: str, address: IpAddress) -> tuple[str, str, str]:
    """Return (URL with the IP as host, Host header value, the prefix an adapter mounts on)."""
    parts = urlsplit(url)
    ip = f"[{address}]" if address.version == 6 else str(address)
    port = f":{parts.port}" if parts.port else ""
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{ip}{port}" if userinfo else f"{ip}{port}"
    host = parts.hostname or ""
    host_header = (f"[{host}]" if ":" in host else host) + port
    target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return target, host_header, f"{parts.scheme}://{ip}{port}/"


def deliver_alert(url: str, payload: dict[str, Any], settings: Settings, session: requests.Session | None = None,
                  timeout: tuple[float, float] = TIMEOUT) -> int:
    """POST one alert, signed, to a checked address; return the status, or raise AlertRetryable / AlertRefused."""
    import requests

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AlertRefused("alert URLs must be http:// or https:// URLs")
    host = parts.hostname
    addresses = resolve_checked(host, parts.port or (443 if parts.scheme == "https" else 80),
                                settings.alert_allow_private)
    body = json.dumps(slack_message(payload) if is_slack(url) else payload, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")
    msg_id, stamp = message_id(payload), int(time.time())
    headers = {"Content-Type": "application/json", "User-Agent": "satisfaction-tracker",
               "webhook-id": msg_id, "webhook-timestamp": str(stamp),
               "webhook-signature": signing.sign_each(alert_keys(settings), msg_id, stamp, body)}
    http = session or requests.Session()
    if session is None:
        http.trust_env = False  # a proxy from the environment would resolve the name again
    try:
        status = _post_pinned(http, url, addresses, body, headers, timeout)
    finally:
        if session is None:
            http.close()
    if status == 429 or status >= 500 or status == 408:
        raise AlertRetryable(f"the alert host {host!r} answered {status}")
    if status >= 300:
        raise AlertRefused(f"the alert host {host!r} answered {status}; not retried"
                           + (" (redirects are not followed)" if status < 400 else ""))
    log.info("alert delivered", extra={"host": host, "status": status, "alert": msg_id})
    return status


def _post_pinned(http: requests.Session, url: str, addresses: list[IpAddress], body: bytes,
                 headers: dict[str, str], timeout: tuple[float, float]) -> int:
    return post_pinned(http, url, addresses, body, headers, timeout)[0]


def post_pinned(http: requests.Session, url: str, addresses: list[IpAddress], body: bytes,
                headers: dict[str, str], timeout: tuple[float, float]) -> tuple[int, dict[str, str]]:
    """POST to the checked addresses in turn (the next only when one cannot be connected to); return the status
    and the answer's headers (the event stream reads Retry-After)."""
    import requests

    host = urlsplit(url).hostname or ""
    for i, address in enumerate(addresses):
        target, host_header, prefix = _pinned(url, address)
        http.mount(prefix, _adapter(url, host))
        try:
            with http.post(target, data=body, headers={**headers, "Host": host_header}, timeout=timeout,
                           allow_redirects=False, stream=True) as answer:
                return answer.status_code, dict(answer.headers)
        except requests.ConnectionError as exc:
            if i + 1 < len(addresses) and not isinstance(exc, requests.exceptions.SSLError):
                continue
            if isinstance(exc, requests.ConnectTimeout):
                raise AlertRetryable(f"the alert host {host!r} timed out") from None
            raise AlertRetryable(f"cannot reach the alert host {host!r}: {type(exc).__name__}") from None
        except requests.Timeout:
            raise AlertRetryable(f"the alert host {host!r} timed out") from None
        except requests.RequestException as exc:
            raise AlertRetryable(f"cannot reach the alert host {host!r}: {type(exc).__name__}") from None
    raise AlertRetryable(f"cannot reach the alert host {host!r}")

"""Event URLs (TRACKER_EVENT_URLS): each notice POSTed as its Standard Webhooks body, signed, to a checked address.

The `webhook-id` is the notice's id, the same on every attempt, so receivers deduplicate retries and redeliveries.
The secret is derived from TRACKER_SECRET_KEY (`tracker event-secret` prints it); the addresses are checked and
pinned as for alerts (tracker.alerts.delivery: no loopback, private or link-local address unless
TRACKER_ALERT_ALLOW_PRIVATE).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from tracker import signing
from tracker.alerts.delivery import TIMEOUT, AlertRefused, AlertRetryable, post_pinned, resolve_checked
from tracker.backoff import retry_after_s
from tracker.config import EventUrl, Settings
from tracker.notice_types import PUBLIC_TYPES
from tracker.notify.events import Notice
from tracker.notify.targets import DispatchContext, Outcome
from tracker.surveys.tokens import derive_key

RETRY_CODES = frozenset({408, 429})  # beside every 5xx


def event_key(settings: Settings) -> bytes:
    return event_keys(settings)[0]


def event_keys(settings: Settings) -> list[bytes]:
    """Return the keys events are signed with: the secret key's, then each earlier key's still accepted."""
    return [derive_key(secret, "events") for secret in settings.secret_keys]


def event_secret(settings: Settings) -> str:
    """Return the event URLs' signing secret in the Standard Webhooks `whsec_` form receivers configure."""
    return "whsec_" + base64.b64encode(event_key(settings)).decode("ascii")


def url_target_name(url: str) -> str:
    """Name an event URL's target for good: `url:` and the first 12 hex digits of the URL's SHA-256."""
    return "url:" + hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]


def redacted(url: str) -> str:
    """Show an event URL without what may be a secret in it (credentials, path, query): scheme, host and port."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}/…" if parts.path.strip("/") or parts.query \
        else f"{parts.scheme}://{parts.hostname or '?'}{port}"


def host_words(error: Exception) -> str:
    """Say what the shared address guard found about an event URL's host (the guard speaks of "the alert host")."""
    return str(error).replace("the alert host", "the event URL host")


@dataclass(frozen=True)
class UrlTarget:
    """One TRACKER_EVENT_URLS entry as a target: the public notice types it asked for, signed POSTs."""

    url: str
    types: frozenset[str] | None
    name: str

    @classmethod
    def of(cls, entry: EventUrl) -> UrlTarget:
        return cls(entry.url, entry.types, url_target_name(entry.url))

    def wants(self, notice: Notice) -> bool:
        return notice.type in PUBLIC_TYPES and (self.types is None or notice.type in self.types)

    def deliver(self, notice: Notice, ctx: DispatchContext) -> Outcome:
        """POST the notice's body, signed; say how the URL took it (never raise)."""
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return Outcome("refused", None, "event URLs must be http:// or https:// URLs")
        try:
            addresses = resolve_checked(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                                        ctx.settings.alert_allow_private)
        except AlertRefused as exc:
            return Outcome("refused", None, host_words(exc))
        except AlertRetryable as exc:
            return Outcome("retry", None, host_words(exc))
        body = json.dumps(notice.body(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        stamp = int(time.time())  # when it is sent (receivers judge it against their clock), not the notice's time
        headers = {"Content-Type": "application/json", "User-Agent": "satisfaction-tracker",
                   "webhook-id": notice.id, "webhook-timestamp": str(stamp),
                   "webhook-signature": signing.sign_each(event_keys(ctx.settings), notice.id, stamp, body)}
        try:
            status, answer = post_pinned(ctx.session, self.url, addresses, body, headers, TIMEOUT)
        except AlertRetryable as exc:
            return Outcome("retry", None, host_words(exc))
        return _outcome(status, answer, ctx.now_ms)


def _outcome(status: int, answer: Mapping[str, str], now_ms: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome("delivered", status, f"answered {status}")
    if status in RETRY_CODES or status >= 500:
        wait = retry_after_s(next((v for k, v in answer.items() if k.lower() == "retry-after"), None), now_ms / 1000)
        return Outcome("retry", status, f"answered {status}", wait)
    if 300 <= status < 400:
        return Outcome("refused", status, f"answered {status}: redirects are not followed")
    return Outcome("refused", status, f"answered {status}; not retried")


def url_targets(settings: Settings) -> list[UrlTarget]:
    """Return a target per TRACKER_EVENT_URLS entry, in the order configured."""
    return [UrlTarget.of(entry) for entry in settings.event_urls]

"""Sign test requests the way each vendor does, independently of the adapters that verify them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from standardwebhooks import Webhook

Signed = tuple[dict[str, str], dict[str, str]]

SECRETS: dict[str, str] = {
    "standard": "whsec_" + base64.b64encode(b"standard-webhooks-test-key-32byt").decode(),
    "zendesk": "dGVzdC16ZW5kZXNrLXNpZ25pbmctc2VjcmV0",
    "freshdesk": "fd-shared-token-6c1f0b",
    "helpscout": "helpscout-test-secret",
    "intercom": "intercom-client-secret-7d2a",
    "chatwoot": "chatwoot-webhook-secret-1e9f",
    "jira": "jira-webhook-secret-4b8c",
    "gorgias": "gorgias-shared-token-93ad",
    "shopify": "shpss_test_0123456789abcdef",
    "woocommerce": "woocommerce-webhook-secret",
}
# Where each source carries its signature and signed timestamp (None: a shared token, or no timestamp).
SIGNATURE_HEADERS: dict[str, str | None] = {
    "standard": "webhook-signature", "zendesk": "x-zendesk-webhook-signature", "freshdesk": None,
    "helpscout": "x-helpscout-signature", "intercom": "x-hub-signature", "chatwoot": "x-chatwoot-signature",
    "jira": "x-hub-signature", "gorgias": None, "shopify": "x-shopify-hmac-sha256",
    "woocommerce": "x-wc-webhook-signature",
}
TIMESTAMP_HEADERS: dict[str, str | None] = {
    "standard": "webhook-timestamp", "zendesk": "x-zendesk-webhook-signature-timestamp",
    "chatwoot": "x-chatwoot-timestamp",
}


def _mac(secret: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(secret, message, getattr(hashlib, algorithm)).digest()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def sign_standard(body: bytes, secret: str, now: float, headers: Mapping[str, str]) -> Signed:
    """Sign with the Standard Webhooks reference library (the raw bytes when a body is not UTF-8 text)."""
    # Without a given id, the same body gets the same id (a redelivery), another body another id.
    msg_id = headers.get("webhook-id") or "msg_" + hashlib.sha256(body).hexdigest()[:24]
    webhook = Webhook(secret)
    stamp = str(int(now))
    try:
        signature = webhook.sign(msg_id, datetime.fromtimestamp(int(now), tz=UTC), body.decode("utf-8"))
    except UnicodeDecodeError:  # the library signs text only; the spec signs the body's bytes
        signature = "v1," + _b64(_mac(webhook._whsecret, f"{msg_id}.{stamp}.".encode() + body))
    return {"webhook-id": msg_id, "webhook-timestamp": stamp, "webhook-signature": signature}, {}


def sign_zendesk(body: bytes, secret: str, now: float, headers: Mapping[str, str]) -> Signed:
    """Sign like Zendesk: base64 HMAC-SHA256 of the ISO timestamp header followed by the body."""
    stamp = datetime.fromtimestamp(int(now), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = _b64(_mac(secret.encode(), stamp.encode() + body))
    return {"x-zendesk-webhook-signature": signature, "x-zendesk-webhook-signature-timestamp": stamp}, {}


def sign_token(body: bytes, secret: str, now: float, headers: Mapping[str, str]) -> Signed:
    """Authenticate like a vendor that signs nothing: the shared token in the URL query."""
    return {}, {"token": secret}


def sign_helpscout(body: bytes, secret: str, now: float, headers: Mapping[str, str]) -> Signed:
    """Sign like Help Scout: base64 HMAC-SHA1 of the body."""
    return {"x-helpscout-signature": _b64(_mac(secret.encode(), body, "sha1"))}, {}


def sign_intercom(body: bytes, secret: str, now: float, headers: Mapping[str, str]) -> Signed:
    """Sign like Intercom: `sha1=<hex HMAC-SHA1 of the body>` keyed with the app's client secret."""
    return {"x-hub-signature": "sha1=" + _mac(secret.encode(), body, "sha1").hex()}, {}


def sign_chatwoot(body: bytes, secret: str, now: float, headers: Mapping[str, str]) -> Signed:
    """Sign like Chatwoot: `sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`."""
    stamp = str(int(now))
    signature = _mac(secret.encode(), stamp.encode() + b"." + body).hex()
    return {"x-chatwoot-signature": f"sha256={signature}", "x-chatwoot-timestamp": stamp}, {}


def sign_jira(body: bytes, secret: str, now: float, headers: Mapping[str, str]) -> Signed:
    """Sign like Jira's secured admin webhooks: `sha256=<hex HMAC-SHA256 of the body>`."""
    return {"x-hub-signature": "sha256=" + _mac(secret.encode(), body).hex()}, {}


def sign_shopify(body: bytes, secret: str, now: float, headers: Mapping[str, str]) -> Signed:
    """Sign like Shopify: base64 HMAC-SHA256 of the body keyed with the app's client secret."""
    return {"x-shopify-hmac-sha256": _b64(_mac(secret.encode(), body))}, {}


def sign_woocommerce(body: bytes, secret: str, now: float, headers: Mapping[str, str]) -> Signed:
    """Sign like WooCommerce: base64 HMAC-SHA256 of the body keyed with the webhook's secret."""
    return {"x-wc-webhook-signature": _b64(_mac(secret.encode(), body))}, {}


SIGNERS: dict[str, Callable[[bytes, str, float, Mapping[str, str]], Signed]] = {
    "standard": sign_standard, "zendesk": sign_zendesk, "freshdesk": sign_token,
    "helpscout": sign_helpscout, "intercom": sign_intercom, "chatwoot": sign_chatwoot, "jira": sign_jira,
    "gorgias": sign_token, "shopify": sign_shopify, "woocommerce": sign_woocommerce,
}


def signed(source: str, body_bytes: bytes, secret: str | None = None, now: float | None = None,
           headers: Mapping[str, str] | None = None) -> Signed:
    """Return (headers, query) that authenticate body_bytes for source, merged over the given headers."""
    given = {name.lower(): value for name, value in (headers or {}).items()}
    extra, query = SIGNERS[source](body_bytes, secret or SECRETS[source], time.time() if now is None else now,
                                   given)
    return {**given, **extra}, query

"""The address a request comes from, behind the reverse proxies FORWARDED_ALLOW_IPS trusts.

gunicorn keeps the connection's peer as REMOTE_ADDR. Behind a proxy that peer is the proxy, for every client: the
access log named no one, and a limit per client (failed sign-ins, tracker.web.dashboard.views) would have held
everyone behind the proxy together. So a request whose peer FORWARDED_ALLOW_IPS names (gunicorn's own setting,
which it reads for X-Forwarded-Proto; default 127.0.0.1 and ::1) takes its client from X-Forwarded-For, read from
the right, since each proxy appends the address it was reached from: the first address no trusted proxy holds. A
request from any other peer keeps its peer as it is, so a header a client wrote itself decides nothing; an entry
that is not an address leaves the peer too. The peer stays in the environ as PEER.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

PEER = "tracker.peer"  # environ key: the connection's own peer, when X-Forwarded-For named the client
MOST_HOPS = 16  # the X-Forwarded-For entries read, from the right: more proxies than any deployment chains

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    """Read one address as a peer or an X-Forwarded-For entry gives it (bare, or with a port: "[::1]:80",
    "10.0.0.1:80"); an IPv4 address mapped into IPv6 reads as the IPv4 one. None: not an address."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        found = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = found.ipv4_mapped if isinstance(found, ipaddress.IPv6Address) else None
    return mapped or found


class Proxies:
    """The trusted proxies: FORWARDED_ALLOW_IPS's addresses and networks, or every peer ("*")."""

    def __init__(self, allowed: Iterable[str]):
        entries = tuple(allowed)
        self.everyone = "*" in entries
        self.networks = tuple(ipaddress.ip_network(entry, strict=False) for entry in entries if entry != "*")

    def trusts(self, address: Address) -> bool:
        return self.everyone or any(address.version == net.version and address in net for net in self.networks)

    def client(self, peer: str, forwarded: str) -> str | None:
        """Return the client a trusted peer's X-Forwarded-For names, or None: the peer is not trusted, or the header
        holds something that is not an address where it is read."""
        found = _address(peer)
        if found is None or not self.trusts(found):
            return None
        client = None
        for entry in reversed(forwarded.split(",")[-MOST_HOPS:]):
            client = _address(entry)
            if client is None:
                return None
            if not self.trusts(client):
                break
        return str(client) if client is not None else None


class ClientAddresses:
    """WSGI middleware: REMOTE_ADDR is the client's own address for every request a trusted proxy forwards (the
    access log and request.remote_addr read it), before anything else of the app (the webhooks' fast path too)."""

    def __init__(self, app: Callable[..., Any], allowed: Iterable[str]):
        self.app, self.proxies = app, Proxies(allowed)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded:
            peer = str(environ.get("REMOTE_ADDR", ""))
            client = self.proxies.client(peer, forwarded)
            if client is not None:
                environ[PEER], environ["REMOTE_ADDR"] = peer, client
        return self.app(environ, start_response)


def install_client_addresses(app: Flask, allowed: Iterable[str]) -> None:
    """Wrap the app's WSGI callable in ClientAddresses: call it last, so that it is the outermost."""
    app.wsgi_app = ClientAddresses(app.wsgi_app, allowed)  # type: ignore[method-assign]


def limited_as(address: str) -> str:
    """Name the client a per-client limit counts: its address, or for IPv6 its /64 (one site's, which hands its
    hosts addresses within it at will)."""
    found = _address(address)
    if isinstance(found, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{found}/64", strict=False))
    return str(found) if found is not None else (address[:64] or "-")

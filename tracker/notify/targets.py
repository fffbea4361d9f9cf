"""Where notices go: the Target protocol every destination implements, and the outcome of a delivery.

A target is named for good (its cursor and its delivery records carry the name): `url:<first 12 hex of the URL's
SHA-256>`, `writeback:<source>`, `cases`. It raises nothing: every way a delivery can end is an Outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from tracker.config import Settings
from tracker.notify.events import Notice

if TYPE_CHECKING:
    import requests

    from tracker.store import Store

Status = Literal["delivered", "retry", "refused", "skipped"]


@dataclass(frozen=True)
class Outcome:
    """How one delivery attempt ended: delivered, retry (later), refused (for good) or skipped (nothing to do)."""

    status: Status
    code: int | None = None  # the HTTP status the target answered, when it answered
    detail: str = ""
    retry_after_s: float | None = None  # what the target asked for (Retry-After), when it did
    # The target may have taken it though no answer said so: the answer timed out or the connection was lost after
    # the request went, or a gateway's 504. A write-back then looks on the ticket before it writes again.
    unsure: bool = False


@dataclass(frozen=True)
class DispatchContext:
    """What a delivery may use: the store, the settings, the dispatch run's time and its one HTTP session."""

    store: Store
    settings: Settings
    now_ms: int
    session: requests.Session


class Target(Protocol):
    """A destination of notices: which it wants, and how it takes one."""

    @property
    def name(self) -> str:
        """The target's stable name (a plain `name: str` attribute satisfies this, frozen or not)."""

    def wants(self, notice: Notice) -> bool:
        """Say whether this notice is for this target (one it does not want is passed without a record)."""

    def deliver(self, notice: Notice, ctx: DispatchContext) -> Outcome:
        """Deliver one notice; never raise."""

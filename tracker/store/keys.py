"""Every Redis key name the product uses; no other module spells one out."""

from __future__ import annotations

PREFIX = "t"
# The event log and its dedupe keys share one hash tag so the append script stays single-slot.
STREAM = f"{PREFIX}:{{log}}:events"
DEAD = f"{PREFIX}:{{log}}:dead"
KICK = f"{PREFIX}:{{log}}:kick"
GROUP = "appliers"
DUE = f"{PREFIX}:due"
RESPONSES = f"{PREFIX}:responses"
SENT = f"{PREFIX}:sent"
CUSTOMERS = f"{PREFIX}:customers"
STATS = f"{PREFIX}:stats"
API_KEYS = f"{PREFIX}:apikeys"
SUPPRESSED = f"{PREFIX}:suppressed"
RANK_SCORE = f"{PREFIX}:rank:score"  # customers by decayed score, for the at-risk listing
# Webhook deliveries by "<source>|<status>"; in the log's hash tag so the append script counts its own.
RECEIVED = f"{PREFIX}:{{log}}:received"
ERASED = f"{PREFIX}:metrics:erased"  # sent surveys and answers erased or retired, so /metrics totals never go back
# Opt-outs by keyed hash of the address (HMAC, tracker.surveys.optout): erasure keeps these, not the address.
OPT_OUTS = {"unsubscribed": f"{PREFIX}:optout:unsubscribed", "suppressed": f"{PREFIX}:optout:suppressed"}
RETIRED_INDEX = f"{PREFIX}:retired:idx"  # "<kind>|<id>" of every entity with a retired aggregate
RETENTION_LEASE = f"{PREFIX}:retention:lease"  # one retention sweep at a time, whichever worker runs it
RETENTION_CURSOR = f"{PREFIX}:retention:cursor"  # where the sweep over customers stands
AGGREGATE_KINDS = ("customer", "agent", "team", "source", "brand", "overall")


def seen(delivery_id: str) -> str:
    return f"{PREFIX}:{{log}}:seen:{delivery_id}"


def ticket(tkey: str) -> str:
    return f"{PREFIX}:ticket:{tkey}"


def ticket_history(tkey: str) -> str:
    return f"{PREFIX}:ticket:{tkey}:history"


def order(okey: str) -> str:
    return f"{PREFIX}:order:{okey}"


ORDER_DUE = "o|"  # due members for post-purchase surveys: "o|<source>:<order id>"


def surveyed(due_member: str) -> str:
    """Name the ticket or order hash a due member stands for."""
    if due_member.startswith(ORDER_DUE):
        return order(due_member[len(ORDER_DUE):])
    return ticket(due_member)


def alias(source: str, customer_id: str) -> str:
    return f"{PREFIX}:alias:{source}:{customer_id}"


def survey(sid: str) -> str:
    return f"{PREFIX}:survey:{sid}"


def response(sid: str) -> str:
    return f"{PREFIX}:resp:{sid}"


def api_key_hash(digest: str) -> str:
    return f"{PREFIX}:apikey:{digest}"


def customer(email: str, part: str) -> str:
    """Name one of a customer's keys; all share the hash tag {email} so erasure is one sweep."""
    return f"{PREFIX}:cust:{{{email}}}:{part}"


def aggregate(kind: str, ident: str) -> str:
    if kind == "customer":
        return customer(ident, "agg")
    return f"{PREFIX}:agg:{kind}:{ident}"


def daily(kind: str, ident: str) -> str:
    if kind == "customer":
        return customer(ident, "daily")
    return f"{PREFIX}:daily:{kind}:{ident}"


def index(kind: str) -> str:
    """Name the set of every id that has an aggregate of this kind."""
    return f"{PREFIX}:idx:{kind}"


def rate_counter(key_name: str, window: int) -> str:
    """Name the short-lived counter of one API key's requests in one rate-limit window."""
    return f"{PREFIX}:rate:{key_name}:{window}"


def person_cache(source: str, person_id: str) -> str:
    """Name a cached vendor user (name, email, locale) looked up over the vendor's API."""
    return f"{PREFIX}:person:{source}:{person_id}"


def retired(kind: str, ident: str) -> str:
    """Name the sums of an entity's answers and surveys deleted by retention, which a rebuild adds back."""
    if kind == "customer":
        return customer(ident, "retired")
    return f"{PREFIX}:retired:{kind}:{ident}"


def retired_daily(kind: str, ident: str) -> str:
    if kind == "customer":
        return customer(ident, "retired_daily")
    return f"{PREFIX}:retired_daily:{kind}:{ident}"


def dashboard_session(digest: str) -> str:
    """Name a signed-in dashboard session by the SHA-256 of its id; it lives as long as the sign-in may."""
    return f"{PREFIX}:session:{digest}"

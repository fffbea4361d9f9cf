"""Which organisation a customer belongs to (SPEC §12): the source's word, else the address's company domain."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

FREE_MAIL_FILE = "free_mail_domains.txt"  # in tracker/data: one domain a line, "name.*" for any top-level domain
MAX_LENGTH = 200  # an organisation id longer than this is cut (ids end up in URLs and Redis key names)


@cache
def free_mail_domains() -> tuple[frozenset[str], frozenset[str]]:
    """Return the free-mail list as (exact domains, names that are free mail under any top-level domain)."""
    exact: set[str] = set()
    any_tld: set[str] = set()
    for line in files("tracker.data").joinpath(FREE_MAIL_FILE).read_text(encoding="utf-8").splitlines():
        domain = line.strip().lower()
        if not domain or domain.startswith("#"):
            continue
        if domain.endswith(".*"):
            any_tld.add(domain[:-2])
        else:
            exact.add(domain)
    return frozenset(exact), frozenset(any_tld)


def is_free_mail(domain: str) -> bool:
    """Say whether a mail domain is a free-mail provider's (yahoo.co.uk counts as yahoo.*)."""
    exact, any_tld = free_mail_domains()
    domain = domain.lower().rstrip(".")
    if domain in exact:
        return True
    labels = domain.split(".")
    # "yahoo.*" covers yahoo.no and yahoo.co.uk: the name followed by one or two short labels.
    return any(".".join(labels[:cut]) in any_tld for cut in (len(labels) - 1, len(labels) - 2) if cut >= 1
               and all(len(label) <= 3 for label in labels[cut:]))


def organisation_of(given: str | None, email: str | None) -> str | None:
    """Return the customer's organisation id: the source's organisation where it named one, else the domain of
    the address unless that is free mail (None: no organisation)."""
    named = " ".join((given or "").split())[:MAX_LENGTH]
    if named:
        return named
    _, at, domain = (email or "").rpartition("@")
    domain = domain.strip().lower().rstrip(".")
    if not at or not domain or "." not in domain or is_free_mail(domain):
        return None
    return domain[:MAX_LENGTH]

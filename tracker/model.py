"""The domain's nouns: small frozen dataclasses that every layer passes to the next.

Plain dicts live only at the boundaries: JSON in and out (marshmallow) and Redis hashes in and
out (the store). Everything between them takes and returns these types. This module imports
nothing of the product, so every package may import it.
"""

from __future__ import annotations

from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------
# Events: what adapters produce, what the event log holds, what ingest applies.
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Surveys and answers.
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Scores: the running sums behind every aggregate, and what leads read.
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Recovery cases (SPEC §11): the noun the case workflow will be built on.
# ---------------------------------------------------------------------------------------------

CASE_STATUSES = ("open", "contacted", "recovered", "not_recovered")


@dataclass(frozen=True)
class Case:
    """A follow-up on an unsatisfied answer, worked by a lead until the customer is won back or not."""

    id: str
    customer: str
    ticket: str | None
    owner: str | None
    status: str
    opened_at_ms: int
    due_at_ms: int
    notes: tuple[str, ...] = ()
    outcome: str | None = None

    @property
    def closed(self) -> bool:
        return self.status in ("recovered", "not_recovered")

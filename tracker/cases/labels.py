"""Recovery cases' labels: the filter values of the survey whose answer opened a case ("team=billing", "tag=vip").

A case counts under each of its labels beside the bucket's own counters, and lists under each while it is open or
contacted (tracker.store.cases), all in its case bucket's slot and in the one script that writes it. So the summary's
case numbers under one filter read that label's counters in one round trip, whatever the number of cases, as the
unfiltered ones do. A case opened before labels has none: beat labels those once (keep_case_labels) and marks the
labelling complete; until then a filtered summary counts the cases kept, as it did before. A case a version before
labels opens later (a rolling upgrade) counts opened and not labelled, which undoes the mark until beat labels it.
A lead's change labels such a case itself (tracker.cases.work): a reopened case lists before the place the walk has
reached, which would pass it.
"""

from __future__ import annotations

import logging
import secrets

from tracker.model import Case, Survey
from tracker.scores.summary import case_facets
from tracker.store import Store, keys
from tracker.store.cases import labels_of

log = logging.getLogger(__name__)
LEASE_MS = 120_000  # renewed every batch: a labelling that died lets another begin after this
ATTEMPTS = 5  # a case a lead changes meanwhile is read again, at most this often


def case_labels(case: Case, survey: Survey | None) -> tuple[str, ...]:
    """Return the labels a case counts under: its survey's filter values (tracker.scores.summary.case_facets)."""
    return labels_of(case_facets(case, survey).pairs())


def keep_case_labels(store: Store) -> int | None:
    """Label every case opened before labels, unless they all are (beat, every 30 s); return how many it labelled,
    None when the labelling was complete already or another process is at it."""
    if store.cases_labelled():
        return None
    mark = store.labelled_mark()
    token = secrets.token_hex(8)
    if not store.redis.set(keys.CASES_LABEL_LEASE, token, nx=True, px=LEASE_MS):
        return None
    labelled = missed = 0
    try:
        for batch in store.cases_with_surveys():
            if not int(store.script("renew_if")(keys=[keys.CASES_LABEL_LEASE], args=[token, LEASE_MS])):
                return None
            for case, survey in batch:
                if case.labels is None:
                    done = _label(store, case, survey)
                    labelled, missed = labelled + (done is True), missed + (done is None)
        if not missed and store.mark_cases_labelled(mark):
            log.info("recovery cases labelled", extra={"cases": labelled})
        return labelled
    finally:
        store.script("release_if")(keys=[keys.CASES_LABEL_LEASE], args=[token])


def _label(store: Store, case: Case, survey: Survey | None) -> bool | None:
    """Label one case, read again while a lead's change races it: True when this labelled it, False when it needs
    no labelling any more (gone, or labelled by another writer), None when it is still unlabelled."""
    for _ in range(ATTEMPTS):
        if store.label_case(case, case_labels(case, survey)):
            return True
        fresh = store.case(case.id)
        if fresh is None or fresh.labels is not None:
            return False
        case = fresh
    log.warning("a recovery case changed while it was labelled; the next pass labels it", extra={"case": case.id})
    return None

"""survey.expired: a periodic pass over the sent surveys, in send order, behind a stored cursor.

A survey sent at t stops taking answers at its expires_at (t + TRACKER_SURVEY_EXPIRY_DAYS when it was sent), so
the surveys whose expiry passed since the last run are those sent in (cursor, now - expiry]: each run reads that
range of the SENT index (by send time) a page at a time, at most `limit` surveys, emits survey.expired for each
still unanswered, and then moves the cursor. A run that dies before moving it is done again by the next, and the
notice's id (survey.expired:<sid>) keeps each one notice. The cursor names the last survey decided (a run that
finds none writes nothing); until there is one, a run starts LOOKBACK before the edge, so a new install does not
tell of every survey that ever expired.

The pass also settles each survey it decides that can no longer be answered, sent or answered (Store.settle:
its fields packed into one, about a third of its bytes), before the cursor moves past it. An answered survey
whose expiry is still ahead (sent with a longer TRACKER_SURVEY_EXPIRY_DAYS than today's) is passed over unsettled;
`tracker upgrade-store` settles whatever the pass has not.
"""

from __future__ import annotations

from tracker.answers.record import expires_at
from tracker.config import Settings
from tracker.model import DAY_MS
from tracker.notify.events import emit
from tracker.store import Store
from tracker.store.notice_data import EXPIRED, customer_data, survey_data
from tracker.store.surveys import survey_from_hash

LIMIT = 500  # surveys looked at per run (beat runs the pass every minute)
PAGE = 100
LOOKBACK_MS = DAY_MS


def emit_expired(store: Store, settings: Settings, now_ms: int, limit: int = LIMIT) -> int:
    """Emit survey.expired for the unanswered surveys whose expiry passed since the last run, and settle those
    and the answered ones whose answers can no longer change; return how many notices were emitted."""
    edge = now_ms - settings.survey_expiry_days * DAY_MS  # sent no later than this: expired by now
    cursor = store.expiry_cursor() or (edge - LOOKBACK_MS, "")
    told = looked = 0
    while looked < limit:
        page = store.sent_after(cursor, edge, min(PAGE, limit - looked))
        if not page:
            break
        closed: list[str] = []  # decided and past their expiry: settled before the cursor passes them
        for (sent_ms, sid), (record, name) in zip(page, store.surveys_with_names([sid for _, sid in page]),
                                                  strict=True):
            survey = survey_from_hash(record)
            if survey is not None and survey.status == "sent" and survey.customer:
                expiry = expires_at(survey, settings)
                if expiry > now_ms:
                    # Sent with a longer expiry than today's setting: its turn comes when that passes.
                    store.settle(closed)
                    store.set_expiry_cursor(cursor)
                    return told
                data = {"survey": survey_data(record), "customer": customer_data(survey.customer, name)}
                told += emit(store, EXPIRED, survey.customer, data, f"{EXPIRED}:{sid}", expiry)
            if survey is not None and expires_at(survey, settings) <= now_ms:  # the script settles sent or answered
                closed.append(sid)
            cursor = (sent_ms, sid)
        looked += len(page)
        store.settle(closed)
        store.set_expiry_cursor(cursor)  # after its notices: a run that dies before tells them again
    return told


def settle_expired(store: Store, settings: Settings, now_ms: int) -> int:
    """Settle every survey that can no longer be answered (sent or answered, its expiry passed at now_ms), also
    those the expiry pass has not seen (`tracker upgrade-store`); return how many were settled now."""
    settled = 0
    for page in store.survey_pages():
        settled += store.settle([sid for sid, record in page if (survey := survey_from_hash(record)) is not None
                                 and expires_at(survey, settings) <= now_ms])  # the script settles sent or answered
    return settled

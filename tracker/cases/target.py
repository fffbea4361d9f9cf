"""The `cases` notice target: an unsatisfied answer opens a case, a satisfied one recovers the customer's cases."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tracker.cases.work import open_for_answer, recover_for_answer
from tracker.config import Settings
from tracker.errors import StorageUnavailable
from tracker.notify.events import Notice
from tracker.notify.targets import DispatchContext, Outcome, Target

log = logging.getLogger(__name__)
ANSWER_TYPES = ("survey.answered", "survey.changed")
RETRY_S = 5.0


@dataclass(frozen=True)
class CaseTarget:
    """Opens and recovers cases from survey.answered and survey.changed notices (data.answer.satisfied decides)."""

    settings: Settings
    name: str = "cases"

    def wants(self, notice: Notice) -> bool:
        return notice.type in ANSWER_TYPES

    def deliver(self, notice: Notice, ctx: DispatchContext) -> Outcome:
        try:
            answer = notice.data["answer"]
            if answer.get("satisfied"):
                recovered = recover_for_answer(ctx.store, self.settings, notice.data, ctx.now_ms)
                if not recovered:
                    return Outcome("skipped", detail="no open case to recover")
                return Outcome("delivered", detail="recovered " + ", ".join(case.id for case in recovered))
            case = open_for_answer(ctx.store, self.settings, notice.data, ctx.now_ms)
            return Outcome("delivered", detail=f"case {case.id}")
        except StorageUnavailable as exc:
            return Outcome("retry", detail=f"storage unavailable ({exc})", retry_after_s=RETRY_S)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # A notice that does not carry what an answer's notice must: retrying cannot mend it.
            log.error("case notice refused", extra={"notice": notice.id, "error": type(exc).__name__})
            return Outcome("refused", detail=f"not an answer notice the cases can read ({type(exc).__name__}: {exc})")
        except Exception as exc:  # a target raises nothing: whatever else happened is worth another try
            log.exception("case notice failed", extra={"notice": notice.id})
            return Outcome("retry", detail=f"{type(exc).__name__}: {exc}", retry_after_s=RETRY_S)


def case_targets(settings: Settings) -> list[Target]:
    """Return the one `cases` target (always on: every unsatisfied answer opens a case)."""
    return [CaseTarget(settings)]

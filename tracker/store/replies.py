"""What emailed replies did to surveys: reply status, the kept comment, and how an answer arrived."""

from __future__ import annotations

from typing import Any

from tracker.store import keys
from tracker.store.base import RedisBase


class Replies(RedisBase):
    """Note a reply on its survey record."""

    def note_reply(self, sid: str, status: str, at_ms: int, comment: str | None = None,
                   via: str | None = None) -> bool:
        """Note what a reply did on an existing survey (never recreate an erased one); return whether it existed.

        comment None keeps the reply comment already kept; via names how an answer arrived ("email"). On a filed
        survey the fields are written beside its filed value, which they win over (tracker.store.filed).
        """
        key, filing = keys.survey(sid), keys.survey_filed(sid)
        fields = {"reply_status": status, "replied_at": str(at_ms)}
        if comment is not None:
            fields["reply_comment"] = comment
        if via is not None:
            fields["answered_via"] = via

        def write(pipe: Any) -> bool:
            if not pipe.exists(key) and not pipe.hexists(filing, sid):
                return False
            pipe.multi()
            pipe.hset(key, mapping=fields)
            return True

        # WATCH makes the existence check and the write one step (transaction() retries on a race).
        return bool(self.redis.transaction(write, key, filing, value_from_callable=True))

"""Sifting a stream in Redis for an erasure: pages of entries read where they are, only the candidates sent back.

stream_sift.lua keeps the entries whose values hold one of the needles in lower case (Lua's string.lower folds
ASCII only; the event log is JSON in ASCII, and the fields tested elsewhere are stored folded already); the
caller's exact test then decides. Every entry the test takes must hold a needle, or it stays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from tracker.store.base import RedisBase

PAGE = 500  # entries a call reads: about 2.5 ms of Redis


def sifted(base: RedisBase, stream: str, needles: Sequence[str], matches: Callable[[dict[str, str]], bool],
           page: int = PAGE) -> Iterator[list[str]]:
    """Yield, a page at a time, the ids of a stream's entries that hold a needle and match."""
    start = "-"
    while True:
        reply = base.script("stream_sift")(keys=[stream], args=[start, page, *needles])
        if not reply:
            return
        start = reply[0]
        doomed = [entry_id for entry_id, fields in zip(reply[1::2], reply[2::2], strict=True)
                  if matches(dict(zip(fields[::2], fields[1::2], strict=True)))]
        if doomed:
            yield doomed

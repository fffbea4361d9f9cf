"""Settled surveys filed in shared hashes (key layout 9) against a key each (layout 8), at the density N customers give.

    .venv/bin/python bench/filed.py [--customers 1000000] [--share 64]

A filing hash holds the settled surveys of its bucket whose sid falls in it: 5 surveys a customer spread over the
65,536 filing hashes, so how compact they are depends on how many customers the store holds, and the scale run's
20,000 customers (1.5 surveys a filing hash) say little of a million (76). This fills the sids of N customers' 5N
surveys that fall in 1/share of the filing hashes (all of a million customers' surveys there, at a sixty-fourth of
the memory), each a settled survey as the scale run settles them (its packed field and status), and prints Redis's
bytes per survey (used_memory after minus before) kept as a key each and filed, on a redis-server of its own set as
compose sets it (hash-max-listpack-value 512), both in the same run.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import git_commit, redis_server

from tracker.config import load_settings
from tracker.notify.expiry import settle_expired
from tracker.store import Store, keys
from tracker.store.filed import lua_filing
from tracker.store.survey_codes import PACKED_FIELD

# One settled survey as the scale run leaves it (an answered ticket survey with an agent, team, brand, channel and
# two tags), before its sid and customer are set: what settle_survey.lua packs it from.
SURVEY = {"st": "answered", "tk": "zendesk:{n}", "kd": "ticket", "sc": "csat5", "cu": "customer{n}@example{d}.com",
          "so": "zendesk", "ti": "{n}", "sj": "Order {n} arrived damaged, need a replacement", "ag": "agent-{a}",
          "an": "Agent {a}", "tm": "billing", "br": "acme", "ch": "email", "tg": '["refund","shipping"]',
          "og": "example{d}.com", "rb": "human", "lg": "en", "sv": "1790618366972", "ca": "1790621966975",
          "sn": "1790621966975", "ex": "1791831566975", "aa": "1790622966975", "fa": "1790622966975", "ra": "4",
          "cg": "0", "v6": "4.75", "sf": "1", "pr": "0", "dt": "0", "np": "0", "wt": "0.9438743126816935",
          "wd": "4.483402985237944", "dy": "2026-09-28"}


def sids_in_share(customers: int, share: int) -> list[str]:
    """Return the sids (20 base32 characters, as tracker.surveys.tokens makes them) of 5 surveys per customer that
    fall in the first 1/share of every bucket's filing hashes."""
    wanted = keys.FILED_PER_BUCKET // share
    raw = base64.b32encode(os.urandom(5 * customers * 13)).decode().lower()
    found = []
    for at in range(0, 5 * customers * 20, 20):
        sid = raw[at:at + 20]
        if keys.filing_number(sid) < wanted:
            found.append(sid)
    return found


def fill(store: Store, sids: list[str]) -> None:
    """Write each survey's hash as the scale run's answered surveys hold it, then settle them as beat's expiry pass
    does (packed and filed)."""
    pipe = store.redis.pipeline(transaction=False)
    for n, sid in enumerate(sids):
        pipe.hset(keys.survey(sid), mapping={"sid": sid, **{code: value.format(n=n, a=n % 200, d=n % 50)
                                                            for code, value in SURVEY.items()}})
        if len(pipe) >= 2000:
            pipe.execute()
    pipe.execute()
    for start in range(0, len(sids), 2000):
        store.settle(sids[start:start + 2000])


def unfile_all(store: Store, sids: list[str]) -> None:
    """Move every filed survey back into a key of its own, as layout 8 kept it (filing's own `unfile`)."""
    unfile = lua_filing() + "return unfile(KEYS[1], KEYS[2]) and 1 or 0"
    for start in range(0, len(sids), 2000):
        pipe = store.redis.pipeline(transaction=False)
        for sid in sids[start:start + 2000]:
            pipe.eval(unfile, 2, keys.survey(sid), keys.survey_filed(sid))
        pipe.execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--share", type=int, default=64, help="fill 1/share of the filing hashes (a power of 2)")
    args = parser.parse_args()
    sids = sids_in_share(args.customers, args.share)
    with tempfile.TemporaryDirectory() as folder, redis_server(Path(folder)) as url:
        store = Store.from_url(url)
        empty = int(store.redis.info("memory")["used_memory"])
        fill(store, sids)
        filed_bytes = int(store.redis.info("memory")["used_memory"]) - empty
        hashes = list(store.redis.scan_iter(match=keys.FILED_MATCH, count=5000))
        sizes = [store.redis.hlen(name) for name in hashes]
        encodings = {store.redis.object("encoding", name) for name in hashes}
        unfile_all(store, sids)
        assert all(PACKED_FIELD in store.redis.hgetall(keys.survey(sid)) for sid in sids[:100])
        as_keys = int(store.redis.info("memory")["used_memory"]) - empty
        # What `tracker upgrade-store` does to a layout 8 Redis: every survey's hash read, each past its expiry
        # settled, which files the settled ones.
        started = time.perf_counter()
        refiled = settle_expired(store, load_settings({"TRACKER_REDIS_URL": url}, needs="store"),
                                 int(time.time() * 1000))
        upgrade_s = time.perf_counter() - started
        assert refiled == len(sids) and not any(store.redis.exists(keys.survey(sid)) for sid in sids[:100])
    print(f"commit {git_commit()}  {args.customers:,} customers' surveys in 1/{args.share} of the filing hashes: "
          f"{len(sids):,} settled surveys in {len(hashes):,} filing hashes ({min(sizes)}-{max(sizes)} a hash, "
          f"{sum(sizes) / len(sizes):.0f} on average, {'/'.join(sorted(encodings))})")
    print(f"a key each (layout 8) {as_keys / len(sids):,.0f} bytes a survey, filed (layout 9) "
          f"{filed_bytes / len(sids):,.0f} -> filed take {filed_bytes / as_keys:.2f}x the bytes, "
          f"{(as_keys - filed_bytes) / len(sids) * 5:,.0f} bytes less a customer (5 surveys)")
    print(f"upgrade from layout 8 (settle_expired, as tracker upgrade-store runs it): {refiled:,} surveys filed in "
          f"{upgrade_s:.1f} s, {refiled / upgrade_s:,.0f} a second")


if __name__ == "__main__":
    main()

"""Every Redis key name the product uses; no other module spells one out.

Cluster layout: every script and transaction touches keys of one hash slot. Keys are grouped by the
`{...}` hash tag in their name:

- `{log<k>}`   one shard k of the event log: its stream, dedupe ids, counters, cursor and lease
- `{k<b>}`     ticket/order bucket b: tickets, orders, status histories and the bucket's due set
- `{s<b>}`     survey bucket b: surveys (each with its answer, in the same hash), the bucket's reminder due
               set and its outbox of aggregate deltas (applied per entity behind a high-water mark)
- `{<email>}`  one customer: profile, indexes, aggregate, daily rollup, throttle
- `{a:<kind>:<id>}` one aggregate entity (agent, team, source, brand, channel, tag, organisation, overall, and
               each of those split by resolved_by: kind "<kind>@human" or "<kind>@bot"): sums, rollup, marks
- everything else is a single key of its own, only ever touched by single-key commands.

BUCKETS is fixed: changing it renames keys.
"""

from __future__ import annotations

import zlib

PREFIX = "t"
BUCKETS = 16  # shards of the event log, ticket buckets and survey buckets


def bucket_of(text: str) -> int:
    """Return the bucket (0..BUCKETS-1) a ticket key, survey id or log routing key falls in, stable forever."""
    return zlib.crc32(text.encode("utf-8")) % BUCKETS


# Event log (one stream per shard) ---------------------------------------------------------------

def stream(shard: int) -> str:
    return f"{PREFIX}:{{log{shard}}}:events"


def seen(shard: int, delivery_id: str) -> str:
    """Name a delivery's dedupe mark, in shard bucket_of(delivery_id): written once every portion is appended."""
    return f"{PREFIX}:{{log{shard}}}:seen:{delivery_id}"


def received(shard: int) -> str:
    """Name the shard's webhook delivery counters by "<source>|<status>" (summed over shards on read)."""
    return f"{PREFIX}:{{log{shard}}}:received"


def log_kick(shard: int) -> str:
    return f"{PREFIX}:{{log{shard}}}:kick"


def log_kick_group(group: int) -> str:
    """Name a group of shards' pending drain task: set by the web that sends it, taken by the task when it starts."""
    return f"{PREFIX}:kick:{group}"


def log_part(shard: int, delivery_id: str) -> str:
    """Name the mark of a delivery's portion appended to a shard (its events routed there), so it is appended once."""
    return f"{PREFIX}:{{log{shard}}}:part:{delivery_id}"


def log_cursor(shard: int) -> str:
    """Name a shard's progress: "id" of the newest entry applied, parked or set waiting, "appended" and "passed"."""
    return f"{PREFIX}:{{log{shard}}}:cursor"


def log_waiting(shard: int) -> str:
    """Name the entries of a shard waiting for their customer (alias or look-up), by when they are tried next (ms)."""
    return f"{PREFIX}:{{log{shard}}}:waiting"


def log_tries(shard: int) -> str:
    """Name what the waiting entries of a shard wait for: entry id -> "<tries>|<reason>|<source>|<customer id>"."""
    return f"{PREFIX}:{{log{shard}}}:tries"


def log_lease(shard: int) -> str:
    """Name the lease of the one applier a shard has at a time."""
    return f"{PREFIX}:{{log{shard}}}:lease"


DEAD = f"{PREFIX}:{{log}}:dead"  # parked entries of every shard, each with its origin and reason

# Tickets and orders, by bucket -----------------------------------------------------------------

ORDER_DUE = "o|"  # due members for post-purchase surveys: "o|<source>:<order id>"
REMINDER_DUE = "r|"  # due members for reminders: "r|<survey id>"


def ticket(tkey: str) -> str:
    return f"{PREFIX}:{{k{bucket_of(tkey)}}}:ticket:{tkey}"


def ticket_history(tkey: str) -> str:
    return f"{PREFIX}:{{k{bucket_of(tkey)}}}:history:{tkey}"


def order(okey: str) -> str:
    return f"{PREFIX}:{{k{bucket_of(okey)}}}:order:{okey}"


def ticket_due(bucket: int) -> str:
    """Name the due set of one ticket bucket: solved tickets and fulfilled orders by when their survey is due."""
    return f"{PREFIX}:{{k{bucket}}}:due"


def survey_due(bucket: int) -> str:
    """Name the due set of one survey bucket: reminders by when they are due."""
    return f"{PREFIX}:{{s{bucket}}}:due"


def due_sets() -> list[str]:
    """Every due set the sweep claims from."""
    return [ticket_due(b) for b in range(BUCKETS)] + [survey_due(b) for b in range(BUCKETS)]


def due_of(member: str) -> str:
    """Name the due set a due member ("<tkey>", "o|<okey>" or "r|<sid>") lives in."""
    if member.startswith(REMINDER_DUE):
        return survey_due(bucket_of(member[len(REMINDER_DUE):]))
    return ticket_due(bucket_of(member.removeprefix(ORDER_DUE)))


def surveyed(due_member: str) -> str:
    """Name the ticket or order hash a due member stands for."""
    if due_member.startswith(ORDER_DUE):
        return order(due_member[len(ORDER_DUE):])
    return ticket(due_member)


# Surveys, answers and the outbox, by survey bucket ---------------------------------------------

def survey(sid: str) -> str:
    """Name a survey's hash: the survey and, once given, its answer (a hash with a rating holds one); its fields by
    the codes of tracker.store.survey_codes, packed into one once it is settled."""
    return f"{PREFIX}:{{s{bucket_of(sid)}}}:survey:{sid}"


SURVEYS_MATCH = f"{PREFIX}:{{s*}}:survey:*"  # a SCAN pattern matching every survey's hash
FILED_PER_BUCKET = 4096  # filing hashes of settled surveys a survey bucket has (tracker.store.filed); fixed forever
FILED_MATCH = f"{PREFIX}:{{s*}}:filed:*"  # a SCAN pattern matching every filing hash


def survey_filed(sid: str) -> str:
    """Name the filing hash a settled survey is filed in (tracker.store.filed): one of its bucket's, in its slot,
    picked by other bits of the same checksum than the bucket's."""
    return filing_hash(bucket_of(sid), filing_number(sid))


def filing_number(sid: str) -> int:
    """Return which of its bucket's filing hashes (0..FILED_PER_BUCKET-1) a sid falls in, stable forever."""
    return (zlib.crc32(sid.encode("utf-8")) >> 4) % FILED_PER_BUCKET


def filing_hash(bucket: int, number: int) -> str:
    """Name filing hash number (0..FILED_PER_BUCKET-1) of a survey bucket."""
    return f"{PREFIX}:{{s{bucket}}}:filed:{number}"


def survey_sid(key: str) -> str:
    """Return the sid a survey's hash is named by (keys.survey)."""
    return key.rpartition(":survey:")[2]


def outbox(bucket: int) -> str:
    """Name a survey bucket's outbox: aggregate deltas by sequence number, waiting to reach their entities."""
    return f"{PREFIX}:{{s{bucket}}}:outbox"


def alerts_held(bucket: int) -> str:
    """Name a survey bucket's held alerts: those its answers called for, until a worker has sent them on (held by
    record_answer.lua with the answer, so none is lost between the two; tracker.alerts.held)."""
    return f"{PREFIX}:{{s{bucket}}}:alerts:held"


def alert_claim(bucket: int, member: str) -> str:
    """Name the claim of the one task queueing a held alert's deliveries ("<sid>|<rating>", in its survey bucket);
    it expires on its own."""
    return f"{PREFIX}:{{s{bucket}}}:alerts:claim:{member}"


def outbox_seq(bucket: int) -> str:
    return f"{PREFIX}:{{s{bucket}}}:outbox:seq"


def outbox_lease(bucket: int) -> str:
    return f"{PREFIX}:{{s{bucket}}}:outbox:lease"


# Customers -------------------------------------------------------------------------------------

# Every key a customer can have, by its part: erasure deletes exactly these, without a walk of the keyspace, so
# customer() names no other. "people" indexes the vendor users cached under the address (person_cache); "agg" and
# "marks" are layout 9's, which upgrade-store folds into the profile (an erasure still deletes any left).
CUSTOMER_PARTS = ("profile", "tickets", "surveys", "responses", "timeline", "throttle", "unhappy", "daily", "rollup",
                  "retired", "retired_daily", "people", "agg", "marks")
_CUSTOMER_PARTS = frozenset(CUSTOMER_PARTS)


def customer(email: str, part: str) -> str:
    """Name one of a customer's keys (a part of CUSTOMER_PARTS); all share the hash tag {email}, one slot.

    An address may begin with "}" (RFC 5322 allows it): its tag would be empty, Redis would then hash each whole
    name, and the customer's keys would fall in different slots, which a cluster refuses in one script. Such an
    address, and one beginning with "@" (no address does), is named with "@" before it: the tag is never empty,
    and no two addresses share a name (only these names begin "{@")."""
    if part not in _CUSTOMER_PARTS:
        raise ValueError(f"a customer has no key part {part!r}: name it in CUSTOMER_PARTS, so erasure deletes it")
    tag = f"@{email}" if email[:1] in ("}", "@") else email
    return f"{PREFIX}:cust:{{{tag}}}:{part}"


# Layout 10 named a customer whose address begins with "}" with an empty tag; upgrade-store moves their keys.
LAYOUT10_EMPTY_TAG_MATCH = f"{PREFIX}:cust:{{}}*"


def layout10_moved(name: str) -> str:
    """Name a key of LAYOUT10_EMPTY_TAG_MATCH as customer() names it now."""
    stem = f"{PREFIX}:cust:{{"
    return f"{stem}@{name[len(stem):]}"


def alias(source: str, customer_id: str) -> str:
    return f"{PREFIX}:alias:{source}:{customer_id}"


# Aggregates ------------------------------------------------------------------------------------

# What a survey counts for beside its customer (tracker.store.surveys.aggregate_ids says which ones of each).
ENTITY_KINDS = ("agent", "team", "source", "brand", "channel", "tag", "organisation", "overall")
RESOLVERS = ("human", "bot")  # who resolved the ticket (SPEC §12): every entity but the customer is split by it


def split_kind(kind: str, resolved_by: str) -> str:
    """Name the kind that counts only the surveys of tickets resolved by a human or a bot: "agent@bot"; its keys
    are `{a:agent@bot:<id>}`, an entity of its own."""
    return f"{kind}@{resolved_by}"


AGGREGATE_KINDS = ("customer", *ENTITY_KINDS,
                   *(split_kind(kind, by) for by in RESOLVERS for kind in ENTITY_KINDS))


def _entity(kind: str, ident: str, part: str) -> str:
    if kind == "customer":
        return customer(ident, part)
    return f"{PREFIX}:{{a:{kind}:{ident}}}:{part}"


def aggregate(kind: str, ident: str) -> str:
    """Name an entity's sums hash: its counts and sums, beside its high-water marks; a customer's is their profile
    (tracker.store.sums)."""
    return customer(ident, "profile") if kind == "customer" else _entity(kind, ident, "agg")


def daily(kind: str, ident: str) -> str:
    return _entity(kind, ident, "daily")


def applied_marks(kind: str, ident: str) -> str:
    """Name an entity's high-water marks: per survey bucket, the newest outbox entry applied to it, fields of its sums
    hash (tracker.store.sums)."""
    return aggregate(kind, ident)


def layout9_marks(kind: str, ident: str) -> str:
    """Name an entity's high-water marks as layout 9 kept them, a hash of their own; only the upgrade reads it."""
    return _entity(kind, ident, "marks")


LAYOUT9_SUMS_MATCH = (f"{PREFIX}:{{a:*}}:marks", f"{PREFIX}:cust:{{*}}:marks", f"{PREFIX}:cust:{{*}}:agg")


def layout9_home(key: str) -> str:
    """Name the hash that takes a layout-9 marks hash or customer's sums hash (LAYOUT9_SUMS_MATCH) in: the entity's
    sums hash, a customer's profile."""
    stem = key.rpartition(":")[0]
    return f"{stem}:profile" if stem.startswith(f"{PREFIX}:cust:") else f"{stem}:agg"


def rollup(kind: str, ident: str) -> str:
    """Name a (non-customer) entity's per-day sums: "<day>|<field>" and "<day>|r|<scale>|<rating>"."""
    return _entity(kind, ident, "rollup")


def retired(kind: str, ident: str) -> str:
    """Name the sums of an entity's answers and surveys deleted by retention, which a rebuild adds back."""
    return _entity(kind, ident, "retired")


def retired_daily(kind: str, ident: str) -> str:
    return _entity(kind, ident, "retired_daily")


def index(kind: str) -> str:
    """Name the set of every id that has an aggregate of this kind."""
    return f"{PREFIX}:idx:{kind}"


# Single keys of their own ----------------------------------------------------------------------

# Layout 7 and earlier kept these two time indexes as one sorted set each; `tracker upgrade-store` moves them into
# the chunked time indexes below (tracker.store.time_index), which hold the same entries in a fifth of the bytes.
RESPONSES = f"{PREFIX}:responses"  # every answer's sid by answer time (layout 7 and earlier)
SENT = f"{PREFIX}:sent"  # every sent survey's sid by send time (layout 7 and earlier)
REASONS = f"{PREFIX}:reasons"  # every follow-up reason an answer was given: the names the reasons breakdown reads
CUSTOMERS = f"{PREFIX}:customers:z"  # every customer's email, all scored 0: listed in email order (ZRANGEBYLEX)
STATS = f"{PREFIX}:stats"
API_KEYS = f"{PREFIX}:apikeys"
# The digests of the API keys a replay carried in (tracker.ingest.apikey_lines): a key carried once is never written
# again by a later replay of the same file, so one revoked here since stays revoked.
API_KEYS_CARRIED = f"{PREFIX}:apikeys:carried"
SUPPRESSED = f"{PREFIX}:suppressed"
# Display names in one place: "agent|<source>:<agent id>" -> name, beside "at|<that field>" -> the time (ms) of the
# newest event that named it (note_name.lua), so any arrival order leaves the same name.
NAMES = f"{PREFIX}:names"


# Where the version before per-bucket held alerts (alerts_held) held them: still read and released, so an alert it
# held when it was replaced is sent; nothing writes it any more.
ALERTS_HELD_BEFORE = f"{PREFIX}:alerts:held"
# The ranked sets of customers share one slot ({rank}), so the at-risk ranking is placed from the others by one
# script (place_risk.lua) that reads them as they stand.
RANK_SCORE = f"{PREFIX}:{{rank}}:score"  # customers by score (0..100), for the at-risk listing
RANK_VALUE = f"{PREFIX}:{{rank}}:value"  # customers by live order value (main currency, minor units)
RANK_RECENT = f"{PREFIX}:{{rank}}:recent"  # customers by their newest answer's time (ms)
RANK_RESPONSES = f"{PREFIX}:{{rank}}:responses"  # customers by number of answers
RANK_UNHAPPY = f"{PREFIX}:{{rank}}:unhappy"  # customers by the time of their newest answer that was not satisfied
# The customers at risk (score under the threshold RISK_STATE names), ranked as the at-risk list ranks them: by order
# value when they have one (above 0), else -1 + (newest unsatisfied answer's time in ms) / 1e13 (-1 without one).
RANK_RISK = f"{PREFIX}:{{rank}}:risk"
# The same customers by their newest answer's time and by their number of answers (as RANK_RECENT and
# RANK_RESPONSES score them): the at-risk list's other orders, each a page of its own set.
RISK_RECENT = f"{PREFIX}:{{rank}}:risk:recent"
RISK_RESPONSES = f"{PREFIX}:{{rank}}:risk:responses"
# "threshold": what the at-risk sets are kept for (writers place by it), "built": the threshold they were filled
# for, "sets": which sets that filling filled (tracker.store.risk.RISK_SETS; a ranking filled before a set existed
# is filled again).
RISK_STATE = f"{PREFIX}:{{rank}}:risk:state"
RISK_LEASE = f"{PREFIX}:{{rank}}:risk:lease"  # one filling of RANK_RISK at a time
# Where layout 6 and earlier kept the ranked sets, each a key of its own: `tracker upgrade-store` moves them.
OLD_RANKS = {f"{PREFIX}:rank:{name}": f"{PREFIX}:{{rank}}:{name}"
             for name in ("score", "value", "recent", "responses", "unhappy")}


# Time indexes (tracker.store.time_index): "resp" every answer's sid by answer time, "sent" every sent survey's sid
# by send time. Each is one slot ({ix:<name>}): a directory of chunks, the chunks (small sorted sets of sid by
# time, compact as long as they stay under Redis's zset-max-listpack-entries) and its state (the count).
TIME_INDEXES = ("resp", "sent")
COMMENTED = "com"  # the answers that hold a comment, by answer time (tracker.store.commented)


def time_index_directory(name: str) -> str:
    """Name a time index's directory: "<lower bound>\t<chunk id>" of every chunk, all scored 0, in bound order."""
    return f"{PREFIX}:{{ix:{name}}}:dir"


def time_index_chunk(name: str, chunk_id: str) -> str:
    """Name one chunk of a time index: the sids from its lower bound up to the next chunk's, scored by time."""
    return f"{PREFIX}:{{ix:{name}}}:c:{chunk_id}"


def time_index_state(name: str) -> str:
    """Name a time index's state: "count", the entries it holds ("complete": the commented answers' index filled)."""
    return f"{PREFIX}:{{ix:{name}}}:state"


def time_index_lease(name: str) -> str:
    """Name the lease of a filling of a time index (the commented answers')."""
    return f"{PREFIX}:{{ix:{name}}}:lease"


def entity_rank(kind: str) -> str:
    """Name the ranked set of every entity of a (non-customer) kind that counts something, scored by minus its
    answers: ZRANGE reads a list's page most answered first, ties by id, as aggregate lists order them."""
    return f"{PREFIX}:rank:entity:{kind}"
ERASED = f"{PREFIX}:metrics:erased"  # sent surveys and answers erased or retired, so /metrics totals never go back
# Opt-outs by keyed hash of the address (HMAC, tracker.surveys.optout): erasure keeps these, not the address.
OPT_OUTS = {"unsubscribed": f"{PREFIX}:optout:unsubscribed", "suppressed": f"{PREFIX}:optout:suppressed"}
RETIRED_INDEX = f"{PREFIX}:retired:idx"  # "<kind>|<id>" of every entity with a retired aggregate
RETENTION_LEASE = f"{PREFIX}:retention:lease"  # one retention sweep at a time, whichever worker runs it
RETENTION_CURSOR = f"{PREFIX}:retention:cursor"  # where the sweep over customers stands
# The time (ms) of the oldest answer or sent survey retention found before deleting it: open ranges start there still.
FIRST_ACTIVITY = f"{PREFIX}:retention:first-activity"
# Keys only a Redis written before this (cluster) layout holds: its event log, due set and customer set.
OLD_LAYOUT = (f"{PREFIX}:{{log}}:events", f"{PREFIX}:due", f"{PREFIX}:customers")

# The key layout a Redis holds: 1 before the cluster one (OLD_LAYOUT), 2 the cluster one with every answer in a
# hash of its own beside its survey's, 3 the answer inside its survey's hash, 4 every rollup also keeping its sums
# crossed by the other dimensions and its unsatisfied answers' reasons, 5 a survey's hash storing its common
# fields under two-letter codes (tracker.store.survey_codes), 6 a survey that can no longer be answered settled
# (its coded fields packed into one, which layout 5's code cannot read), 7 the ranked sets of customers in one slot
# beside the at-risk ranking (which layout 6's code would not keep), 8 the time indexes of answers and sent surveys
# in chunks (tracker.store.time_index, where layout 7 kept one sorted set each), 9 the settled surveys filed in
# shared hashes (tracker.store.filed, where layout 8 kept a key each: layout 8's code would not find them), 10 every
# entity's high-water marks in its sums hash, a customer's sums and marks in their profile (tracker.store.sums, where
# layout 9 kept a hash each: layout 9's code would not find them), 11 this one (a customer whose address begins with
# "}" named with "@" before it, customer(), where layout 10 left the hash tag empty: layout 10's code would not
# find their keys).
# Written once on an empty Redis, or by `tracker upgrade-store` once every answer of layout 2 is folded in, the
# rollups rebuilt (from layout 3 or earlier), every survey's fields renamed (from layout 4 or earlier), the closed
# surveys settled and filed, the ranked sets moved (from layout 6 or earlier), the at-risk ranking filled, the
# time indexes moved into chunks, the sums and marks moved into their hashes and the customers of an empty tag
# renamed.
LAYOUT = f"{PREFIX}:layout"
# A random id written once with the first key of a store (SET NX, by whichever process opens it first): a process
# that finds another id, or none, where it found one has seen its store lost (a restart without persistence, a flush).
STORE_ID = f"{PREFIX}:store-id"
LAYOUT_VERSION = "11"
LAYOUT_BEFORE = "3"  # the layout `tracker upgrade-store` brings over by rebuilding the rollups (and renaming)
LAYOUT_RENAMED = "4"  # the layout `tracker upgrade-store` brings over by renaming the surveys' fields (and settling)
LAYOUT_CODED = "5"  # the layout `tracker upgrade-store` brings over by settling the closed surveys (and moving)
LAYOUT_SETTLED = "6"  # the layout `tracker upgrade-store` brings over by moving the ranked sets (and the indexes)
LAYOUT_RANKED = "7"  # the layout `tracker upgrade-store` brings over by moving the time indexes (and filing)
LAYOUT_CHUNKED = "8"  # the layout `tracker upgrade-store` brings over by filing the settled surveys (and moving)
LAYOUT_FILED = "9"  # the layout `tracker upgrade-store` brings over by moving the sums and marks (and renaming)
LAYOUT_SUMMED = "10"  # the layout `tracker upgrade-store` brings over by renaming customers whose tag was empty
# Layout 2's answer hashes, which only `tracker upgrade-store` reads (it folds each into its survey's hash).
LAYOUT2_ANSWERS = f"{PREFIX}:{{s*}}:resp:*"
_LAYOUT2_ANSWER = ":resp:"


def layout2_answer(sid: str) -> str:
    """Name a survey's answer hash as layout 2 kept it; nothing but the upgrade (and its tests) may use it."""
    return f"{PREFIX}:{{s{bucket_of(sid)}}}{_LAYOUT2_ANSWER}{sid}"


def layout2_sid(key: str) -> str:
    """Return the survey id a layout-2 answer hash is named by."""
    return key.rpartition(_LAYOUT2_ANSWER)[2]


def written_marks() -> list[str]:
    """Name the keys one of which any Redis the product (of any layout) has written to holds: the event log,
    the indexes of customers, sent surveys and answers, the outboxes, API keys, opt-outs and counters."""
    return [*(stream(shard) for shard in range(BUCKETS)), *(outbox(b) for b in range(BUCKETS)), DEAD, CUSTOMERS,
            SENT, RESPONSES, *(time_index_directory(name) for name in TIME_INDEXES), STATS, API_KEYS, SUPPRESSED,
            *OPT_OUTS.values(), *OLD_LAYOUT]


def api_key_hash(digest: str) -> str:
    return f"{PREFIX}:apikey:{digest}"


def rate_counter(key_name: str, window: int) -> str:
    """Name the short-lived counter of one API key's requests in one rate-limit window."""
    return f"{PREFIX}:rate:{key_name}:{window}"


def person_cache(source: str, person_id: str) -> str:
    """Name a cached vendor user (name, email, locale) looked up over the vendor's API; customer(email, "people")
    names the ones cached under an address."""
    return f"{PREFIX}:person:{source}:{person_id}"


# Since when (ms) every cached vendor user is named in its address's "people" set: an erasure walks the keyspace
# for the cached ones until those cached before (by a version without the sets) have expired.
PEOPLE_INDEXED = f"{PREFIX}:person-index:since"


def dashboard_session(digest: str) -> str:
    """Name a signed-in dashboard session by the SHA-256 of its id; it lives as long as the sign-in may."""
    return f"{PREFIX}:session:{digest}"


def sign_in_failures(client: str) -> str:
    """Name the count of failed dashboard sign-ins from one client (an address, an IPv6 /64) in its window; it
    expires with the window."""
    return f"{PREFIX}:signin-failed:{client}"


# Notices: what the product tells the outside (issue 11), by notice bucket --------------------------------------
# `{n<b>}` one notice bucket b (bucket_of(customer email)): a stream of notices in order per customer, each
# notice's dedupe mark (so an emit repeated after a crash appends once), and the dispatch state of its targets.

def notices(bucket: int) -> str:
    """Name a notice bucket's stream: entries {id, type, customer, at, data} in the order they were emitted."""
    return f"{PREFIX}:{{n{bucket}}}:notices"


def notice_mark(bucket: int, event_id: str) -> str:
    """Name the mark that a notice of this id was appended to its bucket's stream (kept NOTICE_MARK_DAYS)."""
    return f"{PREFIX}:{{n{bucket}}}:nid:{event_id}"


NOTICE_MARK_DAYS = 30  # longer than any outbox entry or log entry can wait to be forwarded or applied again


# Notice dispatch (issue 11: the dispatch core), by notice bucket ------------------------------------------------
# Beside the bucket's stream in `{n<b>}`: the lease of its one dispatcher, each target's cursor and retry state,
# what the targets still owe (for /metrics), and the newest attempts' records with their counter and totals.

def dispatch_lease(bucket: int) -> str:
    """Name the lease of the one dispatcher a notice bucket has at a time."""
    return f"{PREFIX}:{{n{bucket}}}:dispatch:lease"


def dispatch_cursors(bucket: int) -> str:
    """Name the bucket's cursors: target name -> the newest stream entry that target has passed."""
    return f"{PREFIX}:{{n{bucket}}}:dispatch:cursors"


def dispatch_retries(bucket: int) -> str:
    """Name the bucket's retry states: target name -> JSON {entry, attempts, first_ms, next_ms} of its notice due."""
    return f"{PREFIX}:{{n{bucket}}}:dispatch:retries"


def dispatch_behind(bucket: int) -> str:
    """Name what each target still owes in the bucket: target name -> time (ms) of its oldest notice not passed."""
    return f"{PREFIX}:{{n{bucket}}}:dispatch:behind"


def dispatch_recorded(bucket: int) -> str:
    """Name each target's last recorded attempt in the bucket: target name -> "<attempt token> <delivery id>"."""
    return f"{PREFIX}:{{n{bucket}}}:dispatch:recorded"


def deliveries(bucket: int) -> str:
    """Name the bucket's delivery records, newest first (a list capped at DELIVERIES_KEPT)."""
    return f"{PREFIX}:{{n{bucket}}}:deliveries"


def delivery_seq(bucket: int) -> str:
    return f"{PREFIX}:{{n{bucket}}}:deliveries:seq"


def delivery_counts(bucket: int) -> str:
    """Name the bucket's attempts by status (summed over buckets on read), so /metrics never goes back."""
    return f"{PREFIX}:{{n{bucket}}}:deliveries:counts"


DELIVERIES_KEPT = 1000  # per bucket: the newest 16,000 attempts in all


# Helpdesk write-back (issue 11), by notice bucket -------------------------------------------------------------

def writeback_step(bucket: int, target: str, event_id: str) -> str:
    """Name how far a write-back target got with one notice ("noted", "done"), kept WRITEBACK_STEP_DAYS."""
    return f"{PREFIX}:{{n{bucket}}}:wb:{target}:{event_id}"


WRITEBACK_STEP_DAYS = 30  # as long as the notice's own mark: a redelivery of it never writes its note again


# Recovery cases (issue 11: cases), by case bucket ----------------------------------------------------------------
# `{c<b>}` one case bucket b = bucket_of(customer email): the cases of the customers in it (a case id names its
# bucket: "c<b>-<survey id>"), the bucket's listing indexes (sorted sets of score 0 ordered by member,
# "<0 open|1 closed>|<due ms, 15 digits>|<case id>", one per owner and status filter, "*" for any), each
# customer's cases in the same order, and the bucket's counters (for the summary and /metrics).

CASE_ID_PATTERN = r"^c([0-9]{1,2})-([a-z2-7]{20})$"
CASE_DUE = "c|"  # due members for a closed case's new survey: "c|<case id>", in the ticket due set they hash to


def case_id(sid: str, email: str) -> str:
    """Name the case an unsatisfied answer to survey sid by this customer opens (the same every time)."""
    return f"c{bucket_of(email)}-{sid}"


def case_bucket(case_id_: str) -> int | None:
    """Return the bucket a case id names, None when it is not a case id."""
    import re

    match = re.match(CASE_ID_PATTERN, case_id_)
    bucket = int(match.group(1)) if match else None
    return bucket if bucket is not None and bucket < BUCKETS else None


def case(case_id_: str) -> str:
    """Name a case's hash (case_id_ must be valid: see case_bucket)."""
    return f"{PREFIX}:{{c{case_bucket(case_id_)}}}:case:{case_id_}"


def case_index(bucket: int, owner: str, status: str) -> str:
    """Name a bucket's case index for one owner ("=<owner>", "-" unassigned, "*" any) and status ("*" any)."""
    return f"{PREFIX}:{{c{bucket}}}:cases:{status}:{owner}"


def customer_cases(bucket: int, email: str) -> str:
    """Name one customer's cases (in their case bucket), in index order."""
    return f"{PREFIX}:{{c{bucket}}}:cases:of:{email}"


def case_counts(bucket: int) -> str:
    """Name a bucket's case counters: opened, active, recovered, not_recovered, contacted, contact_ms, and the same
    for each filter value its cases carry ("<label>|opened")."""
    return f"{PREFIX}:{{c{bucket}}}:cases:counts"


def case_label_index(bucket: int, label: str) -> str:
    """Name a bucket's index of the open and contacted cases of one filter value (a label: "team=billing")."""
    return f"{PREFIX}:{{c{bucket}}}:cases:label:{label}"


CASES_LABELLED = f"{PREFIX}:cases:labelled"  # "1" once every case kept is labelled (tracker.cases.labels)
CASES_LABEL_LEASE = f"{PREFIX}:cases:labelling"  # the beat task labelling the cases from before labels


# Notice producers (issue 11: producers) ----------------------------------------------------------------------------

EXPIRY_CURSOR = f"{PREFIX}:notify:expiry:cursor"  # "<sent ms>|<sid>": the last sent survey the expiry pass decided


# Dashboard search (issue 12: drill-down) ---------------------------------------------------------------------------

# One slot ({names}): the lex-ordered name index, members "<name lowercased>|<email>", all scored 0 (ZRANGEBYLEX),
# and what it holds for each email (email -> the lowercased name indexed), so a new name replaces the old entry.
NAME_INDEX = f"{PREFIX}:{{names}}:idx"
NAME_INDEXED = f"{PREFIX}:{{names}}:of"

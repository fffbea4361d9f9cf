"""`tracker cases` and `tracker case ID`: list and work recovery cases from a terminal."""

from __future__ import annotations

import argparse
import getpass
import json
import time
from typing import Any

from tracker.cli.base import UsageError, open_store, settings_for
from tracker.cli.help import describe
from tracker.model import Case

PAGES: dict[str, tuple[str, str, str]] = {
    "cases": ("list recovery cases, overdue first",
              "List recovery cases (one per unsatisfied answer): open and contacted ones first, soonest due (so "
              "overdue) first, then closed ones. --owner unassigned lists the cases without an owner. Needs only "
              "TRACKER_REDIS_URL.",
              "examples:\n  tracker cases --overdue\n  tracker cases --status open --owner ola@example.com --json"),
    "case": ("show or work one recovery case",
             "Show one recovery case; with options, change it first: --status (open, contacted, recovered, "
             "not_recovered; closed cases may be reopened), --note adds a note (signed with --by, default your "
             "login name), --owner sets the owner ('' unassigns), --outcome records how it ended. Needs only "
             "TRACKER_REDIS_URL.",
             "examples:\n  tracker case c3-abcdefghijklmnopqrst\n"
             "  tracker case c3-abcdefghijklmnopqrst --status contacted --note 'Called, refund offered'"),
}
LIST_LIMIT = 200


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `cases` and `case` to the `tracker` command."""
    listing = describe(sub, "cases", PAGES)
    listing.add_argument("--status", help="open, contacted, recovered or not_recovered")
    listing.add_argument("--owner", help="an owner, or 'unassigned'")
    listing.add_argument("--overdue", action="store_true", help="only open and contacted cases past due")
    listing.add_argument("--limit", default="50", help=f"how many (default 50, at most {LIST_LIMIT})")
    listing.add_argument("--json", action="store_true", help="print the cases as JSON (the API's shape)")
    listing.set_defaults(run=cmd_cases)
    one = describe(sub, "case", PAGES)
    one.add_argument("id", help="the case id (c<bucket>-<survey id>)")
    one.add_argument("--status", help="move the case to this status")
    one.add_argument("--note", help="add a note")
    one.add_argument("--owner", help="set the owner ('' for none)")
    one.add_argument("--outcome", help="record the outcome")
    one.add_argument("--by", help="who the note is from (default: your login name)")
    one.add_argument("--json", action="store_true", help="print the case as JSON (the API's shape)")
    one.set_defaults(run=cmd_case)


def _load(schema_class: Any, data: dict[str, Any]) -> dict[str, Any]:
    from marshmallow import ValidationError

    from tracker.schema_cache import schema

    try:
        return dict(schema(schema_class).load(data))
    except ValidationError as exc:
        raise UsageError(_one_line(exc.messages)) from None


def _one_line(messages: Any) -> str:
    if isinstance(messages, dict):
        return "; ".join(f"{'' if name == '_schema' else f'--{name} '}{_one_line(m)}".strip()
                         for name, m in messages.items())
    if isinstance(messages, list):
        return " ".join(_one_line(m) for m in messages)
    return str(messages)


def cmd_cases(args: argparse.Namespace) -> int:
    from tracker.cases.schemas import UNASSIGNED, CaseListQuerySchema, case_json
    from tracker.store.cases import UNASSIGNED as STORE_UNASSIGNED

    query = _load(CaseListQuerySchema, {k: v for k, v in (("status", args.status), ("owner", args.owner),
                                                          ("limit", args.limit)) if v is not None}
                  | ({"overdue": True} if args.overdue else {}))
    store = open_store(settings_for("store"))
    now = int(time.time() * 1000)
    owner = STORE_UNASSIGNED if query["owner"] == UNASSIGNED else query["owner"]
    found, _ = store.case_page(owner, query["status"], now if query["overdue"] else None, query["limit"], None)
    if args.json:
        print(json.dumps([case_json(case, now) for case in found], indent=2, ensure_ascii=False))
    elif not found:
        print("No cases.")
    else:
        print(format_cases(found, now))
    return 0


def format_cases(cases: list[Case], now_ms: int) -> str:
    """Render cases as a table, one a line."""
    from tracker.events import iso_from_ms

    rows = [("id", "status", "due", "", "owner", "customer", "ticket", "rating")]
    for case in cases:
        rows.append((case.id, case.status, iso_from_ms(case.due_at_ms)[:16], "OVERDUE" if case.overdue(now_ms) else "",
                     case.owner or "-", case.customer, case.ticket or "-",
                     "-" if case.rating is None else f"{case.rating} ({case.scale})"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def format_case(case: Case, now_ms: int) -> str:
    """Render one case for a terminal."""
    from tracker.events import iso_from_ms

    def when(ms: int | None) -> str:
        return "-" if ms is None else iso_from_ms(ms)

    lines = [
        f"{case.id}  {case.status}" + ("  OVERDUE" if case.overdue(now_ms) else ""),
        f"  customer       {case.customer}" + (f" ({case.name})" if case.name else ""),
        f"  ticket         {case.ticket or '-'}",
        "  answer         " + ("-" if case.rating is None else f"{case.rating} ({case.scale})")
        + (f": {case.comment}" if case.comment else ""),
        f"  owner          {case.owner or 'unassigned'}",
        f"  opened         {when(case.opened_at_ms)}",
        f"  due            {when(case.due_at_ms)}",
        f"  first contact  {when(case.first_contact_at_ms)}",
        f"  closed         {when(case.closed_at_ms)}",
        f"  outcome        {case.outcome or '-'}",
        f"  notes          {len(case.notes)}",
        *(f"    {iso_from_ms(note.at_ms)} {note.by}: {note.text}" for note in case.notes),
    ]
    return "\n".join(lines)


def cmd_case(args: argparse.Namespace) -> int:
    from tracker.cases.schemas import CasePatchSchema, case_json, valid_case_id
    from tracker.cases.work import CaseNotFound, InvalidChange, update_case

    if not valid_case_id(args.id.strip()):
        raise UsageError(f"{args.id!r} is not a case id (c<bucket>-<survey id>, as `tracker cases` lists them)")
    given = {name: getattr(args, name) for name in ("status", "note", "owner", "outcome")
             if getattr(args, name) is not None}
    settings = settings_for("store")
    store = open_store(settings)
    now = int(time.time() * 1000)
    case_id = args.id.strip()
    if given:
        change = _load(CasePatchSchema, given)
        by = (args.by or "").strip() or getpass.getuser()
        try:
            found: Case | None = update_case(store, settings, case_id, now, f"cli:{by}"[:200], **change)
        except CaseNotFound:
            found = None
        except InvalidChange as exc:
            raise UsageError(str(exc)) from None
    else:
        found = store.case(case_id)
    if found is None:
        raise UsageError(f"no case {case_id!r}")
    if args.json:
        print(json.dumps(case_json(found, now), indent=2, ensure_ascii=False))
    else:
        print(format_case(found, now))
    return 0

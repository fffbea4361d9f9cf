"""The `--help` page of every `tracker` subcommand: what it does, what it needs, an example."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

STORE_ONLY = "Needs only TRACKER_REDIS_URL."
# Opt-outs outlive erasure as a hash keyed with the secret, so these need it too (no mail settings).
NEEDS_STORE_AND_KEY = "Needs TRACKER_REDIS_URL and TRACKER_SECRET_KEY (opt-outs are kept as a hash keyed with it)."
PROCESS = ("Needs the full settings (TRACKER_REDIS_URL, TRACKER_SECRET_KEY of 32+ random characters, "
           "TRACKER_SMTP_URL or an API mail transport); `tracker check` validates them.")

# name: (one-line summary for `tracker --help`, what the page explains, epilog with examples)
PAGES: dict[str, tuple[str, str, str]] = {
    "web": ("serve the HTTP app under gunicorn on TRACKER_BIND",
            "Serve webhooks, survey pages, the API, the dashboard and /healthz, /readyz, /metrics under "
            "gunicorn, bound to TRACKER_BIND (default 127.0.0.1:8000) with TRACKER_WEB_WORKERS processes. "
            "Put a reverse proxy with TLS in front of it (see the README, 'Running it for real'). " + PROCESS,
            "example:\n  TRACKER_BIND=0.0.0.0:8000 tracker web"),
    "worker": ("run a Celery worker for all queues",
               "Run a Celery worker: it applies the event log, sends survey mails, delivers alerts. "
               "Run as many as you like, on any number of machines. Arguments after `worker` pass "
               "through to `celery worker`. " + PROCESS,
               "examples:\n  tracker worker --concurrency 4\n  tracker check --process worker   "
               "# healthcheck: exits 0 when this host's worker answers a ping"),
    "beat": ("run the Celery beat scheduler (exactly one per installation)",
             "Run the scheduler: the sweep for due surveys (every TRACKER_SWEEP_INTERVAL s), the event-log "
             "drain and stream recovery. Run exactly one. It touches a heartbeat file on every tick. "
             "Arguments after `beat` pass through to `celery beat`. " + PROCESS,
             "example:\n  tracker beat\n  tracker check --process beat   # healthcheck: heartbeat younger than 2 min"),
    "dev": ("web + worker + beat + embedded Redis + mail catcher, for a laptop",
            "Start everything in one foreground command: web, worker and beat, an embedded Redis when "
            "TRACKER_REDIS_URL is unset, and a mail catcher viewable in the browser when TRACKER_SMTP_URL "
            "is unset. Generates its own secret key and source secrets (kept in --dir). Prints the URLs "
            "and a ready API key; Ctrl-C stops it all.",
            "example:\n  tracker dev --dir /tmp/tracker-dev"),
    "check": ("validate the settings and reach Redis, the broker, the mail server and the helpdesks' APIs",
              "Validate every setting, connect to Redis, the Celery broker and the SMTP server (EHLO, "
              "STARTTLS and login when configured, NOOP, QUIT) or the mail API, and prove the credentials of "
              "each write-back helpdesk and look-up, each with a request that sends and changes nothing; "
              "print what is enabled: sources, mail transport, alert and event "
              "URLs, write-back. Exits 1 with one line per problem on stderr. With --process, only say "
              "whether the worker or beat on this host is alive (for container healthchecks).",
              "examples:\n  tracker check\n  docker compose run --rm web check"),
    "api-key": ("manage support-lead API keys",
                "Create, list and revoke the API keys of /api/v1 and the dashboard. Only a hash of each "
                "key is stored. " + STORE_ONLY,
                "examples:\n  tracker api-key create --name ops\n  tracker api-key create --name bi --scope read"
                "\n  tracker api-key list\n  tracker api-key revoke bi"),
    "api-key create": ("create a key and print it alone on the last line",
                       "Create an API key and print it once, alone on the last line (store it now: only its "
                       "hash is kept). " + STORE_ONLY,
                       "example:\n  KEY=$(tracker api-key create --name ops | tail -n 1)"),
    "api-key list": ("list key names, creation times and scopes", "List every key's name, creation time and "
                     "scopes; the keys themselves cannot be shown again. " + STORE_ONLY, ""),
    "api-key revoke": ("revoke a key by name", "Revoke the key with this name; requests with it get 401 at "
                       "once. " + STORE_ONLY, "example:\n  tracker api-key revoke ops"),
    "score": ("print a customer's score card",
              "Print a customer's score card: decayed score, average, CSAT, response rate, trend, NPS, the "
              "last answer and orders. The email is matched case-insensitively. " + STORE_ONLY,
              "examples:\n  tracker score kari@example.no\n  tracker score kari@example.no --json"),
    "top": ("list customers by score, lowest first",
            "List customers by decayed score, lowest first, one a line. " + STORE_ONLY,
            "example:\n  tracker top --at-risk --limit 50"),
    "erase": ("erase everything about a customer (GDPR) and print what was removed",
              "Erase everything stored about a customer (profile, tickets, orders, surveys, answers, logged "
              "events) and take their answers off every aggregate. Running it again finishes an "
              "interrupted erasure. An unsubscribe or suppression is kept as a keyed hash. " + NEEDS_STORE_AND_KEY,
              "example:\n  tracker erase kari@example.no"),
    "export": ("print everything held about a customer as JSON (a data-access request)",
               "Print everything stored about a customer as JSON: profile and aliases, tickets with their "
               "status history, orders, surveys, answers with comments and reasons, timeline and opt-out "
               "state (also GET /api/v1/customers/<email>/export with an admin key). Needs TRACKER_REDIS_URL "
               "and TRACKER_SECRET_KEY (opt-outs are found by a hash keyed with it).",
               "example:\n  tracker export kari@example.no > kari.json"),
    "suppress": ("manage the suppression list (addresses that never get surveys)",
                 "Add, remove and list addresses that never get surveys. Addresses the mail server refused "
                 "are added by themselves. " + NEEDS_STORE_AND_KEY,
                 "examples:\n  tracker suppress add kari@example.no\n  tracker suppress list"),
    "suppress add": ("never survey this address", "Put an address on the suppression list. " + NEEDS_STORE_AND_KEY,
                     ""),
    "suppress remove": ("take an address off the list", "Let an address get surveys again. " + NEEDS_STORE_AND_KEY,
                        ""),
    "suppress list": ("print every suppressed address", "Print every suppressed address still known in plain, "
                      "one a line, and on stderr how many erased addresses are suppressed too. " + NEEDS_STORE_AND_KEY,
                      ""),
    "alert-secret": ("print the whsec_ secret that signs alerts, for receivers",
                     "Print the Standard Webhooks secret (whsec_…) that alert receivers verify signatures "
                     "with. It is derived from TRACKER_SECRET_KEY, so it needs the full settings.", ""),
    "rebuild-scores": ("recompute every aggregate from stored responses",
                       "Recompute every aggregate (customer, agent, team, source, brand, overall) from the stored "
                       "answers; the numbers equal the live ones. Safe to run while the product runs. "
                       + STORE_ONLY, ""),
}


class HelpPage(argparse.HelpFormatter):
    """Wrap each line of prose to the terminal, and keep indented example lines as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(line if line.startswith(" ") else super(HelpPage, self)._fill_text(line, width, indent)
                         for line in text.splitlines())


def describe(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
             pages: Mapping[str, tuple[str, str, str]] = PAGES) -> argparse.ArgumentParser:
    """Add the subcommand `name` (its last word) with its summary, help page and examples."""
    summary, text, epilog = pages[name]
    return sub.add_parser(name.split()[-1], help=summary, description=text, epilog=epilog or None,
                          formatter_class=HelpPage)

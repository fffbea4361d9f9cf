"""`tracker check`'s calls to the HTTP APIs the settings name: the mail API, each write-back helpdesk and the
look-ups of id-only deliveries; and the address checks of the alert and event URLs.

Each call proves the credentials with one request that changes nothing: the API's read of its own key, user or
account (each client's `probe`), or for Mailgun a send without a message, which Mailgun authenticates and then
refuses as incomplete. A typo in a token is then found by the check, not by the first survey or note, parked after
its retries. Look-ups made with the same credentials as a write-back are asked once.

Alert and event URLs are not called (a call would post an alert or an event): their hosts are resolved and judged
as every delivery judges them (tracker.alerts.delivery.resolve_checked), so a host on a private network without
TRACKER_ALERT_ALLOW_PRIVATE, to which every delivery would be refused, is found here.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from tracker.config import HelpdeskApi, Settings


@dataclass(frozen=True)
class Found:
    """One API's answer: what answered (ok), or the variables to look at and why not."""

    ok: bool
    name: str
    text: str
    confirmed: bool = True  # False (with ok): it answered, but not as the vendor's API does; a note, not a problem


def mail_api(settings: Settings) -> Found:
    """Probe TRACKER_MAIL_TRANSPORT's API (postmark, sendgrid, mailgun) with a call that sends no mail."""
    from tracker.mail.http import HttpSender, make_sender

    sender = make_sender(settings)
    assert isinstance(sender, HttpSender), "mail_api is asked only for an API transport"
    with sender:
        probe = sender.probe()
    return Found(probe.ok, f"mail: the {settings.mail_transport} API",
                 probe.text if probe.ok and probe.confirmed else f"{probe.variable}: {probe.text}", probe.confirmed)


def _helpdesks(settings: Settings) -> list[tuple[str, str, str, HelpdeskApi]]:
    """(what, variables, client, credentials): each write-back source, then each look-up with other credentials."""
    found = [(f"write-back {source}", f"TRACKER_{source.upper()}_API_*", source, api)
             for source, api in settings.writeback.items()]
    lookups = (("zendesk look-ups", "TRACKER_ZENDESK_URL, _EMAIL, _TOKEN", "zendesk",
                (settings.zendesk_url, settings.zendesk_email, settings.zendesk_token)),
               ("jira look-ups", "TRACKER_JIRA_API_*", "jira",
                (settings.jira_api_url, settings.jira_api_user, settings.jira_api_token)))
    for what, variables, client, (url, user, token) in lookups:
        if url and user and token:
            api = HelpdeskApi(url.rstrip("/"), user, token)
            if all((client, api) != (other_client, other) for _, _, other_client, other in found):
                found.append((what, variables, client, api))
    return found


def helpdesks(settings: Settings) -> list[Found]:
    """Probe every helpdesk API the settings name, in TRACKER_WRITEBACK's order, then the look-ups'."""
    from tracker.writeback import CLIENTS

    results = []
    with requests.Session() as session:
        for what, variables, client, api in _helpdesks(settings):
            reply = CLIENTS[client](api).probe(session)
            if reply.ok:
                results.append(Found(True, what, f"{api.url} accepts the credentials"))
            elif reply.outcome.status == "skipped":  # answered, not as the vendor's API does (Helpdesk.probe)
                results.append(Found(True, what, f"{variables}: {what}: {reply.outcome.detail}", confirmed=False))
            else:
                results.append(Found(False, what, f"{variables}: {what}: {reply.outcome.detail}"))
    return results


def lookup_notes(settings: Settings) -> list[str]:
    """Say where a look-up is half set up, and so off: a URL without its user or token, or credentials without a URL."""
    notes = []
    for name, variables, values in (
            ("Zendesk", ("TRACKER_ZENDESK_URL", "TRACKER_ZENDESK_EMAIL", "TRACKER_ZENDESK_TOKEN"),
             (settings.zendesk_url, settings.zendesk_email, settings.zendesk_token)),
            ("Jira", ("TRACKER_JIRA_API_URL", "TRACKER_JIRA_API_USER", "TRACKER_JIRA_API_TOKEN"),
             (settings.jira_api_url, settings.jira_api_user, settings.jira_api_token))):
        missing = [variable for variable, value in zip(variables, values, strict=True) if not value]
        if missing and len(missing) < len(variables):
            notes.append(f"{name} look-ups of id-only deliveries are off: {', '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} unset")
    return notes


def webhook_hosts(settings: Settings) -> list[Found]:
    """Judge each alert and event URL's host as its deliveries will: one whose address is refused is a problem
    (every delivery to it would be refused), one that does not resolve from here a note (its deliveries are
    retried until it does). Nothing is sent."""
    from tracker.alerts.delivery import AlertRefused, AlertRetryable, resolve_checked
    from tracker.notify.urls import host_words

    urls = [("TRACKER_ALERT_URLS", "alert", url) for url in settings.alert_urls] + \
        [("TRACKER_EVENT_URLS", "event", entry.url) for entry in settings.event_urls]
    found = []
    for variable, kind, url in urls:
        parts = urlsplit(url)
        if not parts.hostname:
            continue  # the settings refuse such a URL; nothing to resolve
        try:
            resolve_checked(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                            settings.alert_allow_private)
        except AlertRefused as exc:
            said = str(exc) if kind == "alert" else host_words(exc)
            found.append(Found(False, f"{kind} URL", f"{variable}: {said}: every {kind} sent there would be refused"))
        except AlertRetryable as exc:
            said = str(exc) if kind == "alert" else host_words(exc)
            found.append(Found(True, f"{kind} URL", f"{variable}: {said} from here; {kind}s sent there are retried "
                                                    "until it does", confirmed=False))
    return found

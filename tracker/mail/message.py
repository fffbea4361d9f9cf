"""The survey email: a multipart text and HTML message in the customer's language."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, Template, nodes, select_autoescape
from markupsafe import escape

from tracker.i18n.catalogue import format_date, normalise_locale, survey_question, text
from tracker.mail.branding import Branding, button_colours
from tracker.mail.buttons import Button, end_labels, rating_buttons

PACKAGED_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "mail"
SUBJECT_MAX = 70
CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class _SurveyPolicy(EmailPolicy):
    """Fold headers as usual, but keep List-Unsubscribe verbatim."""

    # The default policy turns a URL longer than a line into RFC 2047 encoded words, which
    # breaks one-click unsubscribe; this header is plain ASCII, so it is folded between URLs only.
    def fold(self, name: str, value: str) -> str:
        if name.lower() == "list-unsubscribe" and str(value).isascii():
            return f"{name}: " + f",{self.linesep} ".join(str(value).split(", ")) + self.linesep
        return super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() == "list-unsubscribe" and str(value).isascii():
            return self.fold(name, value).encode("ascii")
        return super().fold_binary(name, value)


POLICY = _SurveyPolicy()


@dataclass(frozen=True, kw_only=True)
class SurveyMail:
    """Everything a survey email says; rating_url is the survey link with `{value}` where the rating goes."""

    to_email: str
    lang: str
    scale_name: str
    ticket_ref: str
    mail_from: str
    message_id: str
    rating_url: str
    unsubscribe_url: str
    expires_at: datetime
    to_name: str | None = None
    ticket_subject: str | None = None
    reply_to: str | None = None
    kind: str = "ticket"  # or "order": a post-purchase survey
    reminder_of: str | None = None  # a reminder: the first mail's Message-ID, threaded under, its subject prefixed
    branding: Branding | None = None  # a surveys file's question, labels, colour and logo for this survey


def _one_line(value: str | None, limit: int | None = None) -> str:
    cleaned = " ".join(CONTROL.sub(" ", value or "").split())
    if limit and len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned


def _recipient(name: str, address: str) -> Address:
    """Address the customer; a non-ASCII local part (RFC 6531) is kept as given, for a server with SMTPUTF8."""
    if address.isascii():
        return Address(display_name=name, addr_spec=address)
    # Address(addr_spec=…) refuses such a local part outright; built from its parts it stands, and the
    # sender either carries it with SMTPUTF8 or refuses it with its reason.
    local, _, domain = address.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


# The context values that differ from one customer to the next; everything else depends only on the
# language, scale, kind, branding and whether a reply address is set, and is rendered once (see _skeleton).
CUSTOMER_VALUES = ("subject", "greeting", "intro", "ticket_ref", "ticket_subject", "expires", "footer",
                   "unsubscribe_url")
# Private-use characters no catalogue or template holds: a slot a customer value is filled into.
SLOT = re.compile("\ue000([^\ue000\ue001]+)\ue001")
_UNSAFE = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport, nodes.Macro, nodes.CallBlock,
           nodes.FilterBlock, nodes.Block, nodes.EvalContextModifier)


def _slot(name: str) -> str:
    return f"\ue000{name}\ue001"


def _url_slot(value: int) -> str:
    return f"url{value}"


@lru_cache(maxsize=256)
def _shared(lang: str, scale_name: str, kind: str, reply: bool, branding: Branding | None = None) -> dict[str, Any]:
    """Return the context values every customer of this language, scale, kind and branding shares."""
    brand = branding or Branding()
    buttons = rating_buttons(lang, scale_name, labels=brand.labels)
    question = brand.question or survey_question(lang, scale_name, kind)
    return {
        "lang": lang,
        "t": lambda key, **params: text(lang, key, **params),
        "preheader": question,
        "question": question,
        "buttons": buttons,
        "ends": end_labels(scale_name, buttons),
        "cell_width": 100 // max(len(buttons), 1),
        "face_size": 15 if len(buttons) > 7 else 20,
        "reply_hint": text(lang, "mail.reply_hint") if reply else "",
        "unsubscribe": text(lang, "mail.unsubscribe"),
        "colours": button_colours(brand.colour),
        "logo_url": brand.logo_url or "",
        "logo_alt": brand.logo_alt,
    }


@lru_cache(maxsize=1024)
def _expires(lang: str, day: date) -> str:
    return text(lang, "mail.expires", date=format_date(lang, day))


def _own(mail: SurveyMail, lang: str) -> dict[str, str]:
    """Return the context values that belong to this customer (CUSTOMER_VALUES)."""
    name = _one_line(mail.to_name)
    ticket_subject = _one_line(mail.ticket_subject)
    ref = _one_line(mail.ticket_ref)  # the vendor's id, shown in the subject too: a header holds one line
    order = mail.kind == "order"
    if order:
        subject = text(lang, "mail.subject_order", ref=ref)
    elif ticket_subject:
        subject = text(lang, "mail.subject", subject=_one_line(ticket_subject, SUBJECT_MAX))
    else:
        subject = text(lang, "mail.subject_ref", ref=ref)
    return {
        "subject": subject,
        "greeting": text(lang, "mail.greeting_name", name=name) if name else text(lang, "mail.greeting"),
        "intro": text(lang, "mail.intro_order" if order else "mail.intro", ref=ref),
        "ticket_ref": ref,
        "ticket_subject": ticket_subject,
        "expires": _expires(lang, mail.expires_at.date()),
        "footer": text(lang, "mail.footer_order" if order else "mail.footer", ref=ref),
        "unsubscribe_url": mail.unsubscribe_url,
    }


def _linked(buttons: list[Button], url: str) -> list[Button]:
    return [replace(button, url=url.format(value=button.value) if url else "") for button in buttons]


@lru_cache(maxsize=8)
def _environment(template_dir: str | None) -> Environment:
    loaders = [FileSystemLoader(template_dir)] if template_dir else []
    loaders.append(FileSystemLoader(PACKAGED_TEMPLATES))
    return Environment(loader=ChoiceLoader(loaders), autoescape=select_autoescape(["html"]),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                       keep_trailing_newline=True)


@lru_cache(maxsize=64)
def _fillable(template: Template) -> bool:
    """Say whether the template only prints customer values as they are (or tests them), so slots can stand in."""
    environment = template.environment
    assert environment.loader is not None and template.name is not None
    tree = environment.parse(environment.loader.get_source(environment, template.name)[0])
    if any(True for _ in tree.find_all(_UNSAFE)):
        return False  # what another template or a macro does with a value cannot be seen from here
    loop_names = {node.target.name for node in tree.find_all(nodes.For)
                  if isinstance(node.iter, nodes.Name) and node.iter.name == "buttons"
                  and isinstance(node.target, nodes.Name)}
    return _plain_uses(tree, None, loop_names)


def _plain_uses(node: nodes.Node, parent: nodes.Node | None, loop_names: set[str]) -> bool:
    """Say whether every customer value under node is printed whole or only tested for truth."""
    as_is = isinstance(parent, nodes.Output) or (isinstance(parent, nodes.If) and node is parent.test)
    if isinstance(node, nodes.Name) and node.ctx == "load":
        if node.name in CUSTOMER_VALUES:
            return as_is
        if node.name == "buttons":  # only looped over, its buttons read by attribute
            return isinstance(parent, nodes.For) and node is parent.iter and isinstance(parent.target, nodes.Name)
        if node.name in loop_names:
            return isinstance(parent, (nodes.Getattr, nodes.Getitem)) and node is parent.node and (
                isinstance(parent, nodes.Getattr) or isinstance(parent.arg, nodes.Const))
    url = (isinstance(node, nodes.Getattr) and node.attr == "url") or (
        isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and node.arg.value == "url")
    if url and not as_is:
        return False
    return all(_plain_uses(child, node, loop_names) for child in node.iter_child_nodes())


@lru_cache(maxsize=256)
def _skeleton(template: Template, lang: str, scale_name: str, kind: str, reply: bool, branding: Branding | None,
              present: tuple[bool, ...], linked: bool) -> tuple[str, ...] | None:
    """Render a template once with slots for the customer values: literal text at even, slot names at odd places."""
    shared = _shared(lang, scale_name, kind, reply, branding)
    slots = {name: _slot(name) if there else "" for name, there in zip(CUSTOMER_VALUES, present, strict=True)}
    buttons = [replace(button, url=_slot(_url_slot(button.value)) if linked else "") for button in shared["buttons"]]
    pieces = tuple(SLOT.split(template.render({**shared, **slots, "buttons": buttons})))
    names = {*CUSTOMER_VALUES, *(_url_slot(button.value) for button in buttons)}
    # A slot-like text of the operator's own would not be ours to fill: such a template is rendered whole.
    return pieces if set(pieces[1::2]) <= names else None


def _escapes(template: Template) -> bool:
    """Say whether the environment autoescapes this template, as it decided when compiling it."""
    autoescape = template.environment.autoescape
    return bool(autoescape(template.name) if callable(autoescape) else autoescape)


def _filled(skeleton: tuple[str, ...], values: dict[str, str], html: bool) -> str:
    pieces = list(skeleton)
    for index in range(1, len(pieces), 2):
        value = values[pieces[index]]
        pieces[index] = str(escape(value)) if html else value  # what autoescape would have printed
    return "".join(pieces)


def render_survey(mail: SurveyMail, template_dir: str | None = None) -> tuple[str, str, str]:
    """Render the subject, text part and HTML part of a survey email."""
    lang = normalise_locale(mail.lang)
    own = _own(mail, lang)
    environment = _environment(template_dir)
    shape = (lang, mail.scale_name, mail.kind, bool(mail.reply_to), mail.branding,
             tuple(bool(own[name]) for name in CUSTOMER_VALUES), bool(mail.rating_url))
    values = {**own, **{_url_slot(button.value): button.url
                        for button in _linked(_shared(*shape[:5])["buttons"], mail.rating_url)}}
    rendered = []
    for name in ("survey.txt", "survey.html"):
        # get_template stays per mail: it notices an operator's edited template and compiles it afresh.
        template = environment.get_template(name)
        skeleton = _skeleton(template, *shape) if _fillable(template) else None
        if skeleton is None:
            rendered.append(template.render(_context(mail, lang)))
        else:
            rendered.append(_filled(skeleton, values, _escapes(template)))
    return own["subject"], rendered[0], rendered[1]


def render_survey_whole(mail: SurveyMail, template_dir: str | None = None) -> tuple[str, str, str]:
    """Render a survey email with its whole context, as templates that transform customer values need."""
    lang = normalise_locale(mail.lang)
    context = _context(mail, lang)
    environment = _environment(template_dir)
    plain = environment.get_template("survey.txt").render(context)
    html = environment.get_template("survey.html").render(context)
    return context["subject"], plain, html


def _context(mail: SurveyMail, lang: str) -> dict[str, Any]:
    shared = _shared(lang, mail.scale_name, mail.kind, bool(mail.reply_to), mail.branding)
    return {**shared, **_own(mail, lang), "buttons": _linked(shared["buttons"], mail.rating_url)}


def build_survey_message(mail: SurveyMail, template_dir: str | None = None) -> EmailMessage:
    """Build the survey email with the email package; files in template_dir override the packaged templates by name.

    The send path writes the same mail straight to bytes (tracker.mail.wire), which parses to what this builds.
    """
    subject, plain, html = render_survey(mail, template_dir)
    if mail.reminder_of:
        subject = f"{text(normalise_locale(mail.lang), 'mail.reminder_prefix')} {subject}"
    msg = EmailMessage(policy=POLICY)
    msg["Subject"] = subject
    msg["From"] = mail.mail_from
    msg["To"] = _recipient(_one_line(mail.to_name), mail.to_email)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = mail.message_id
    if mail.reply_to:
        msg["Reply-To"] = mail.reply_to
    msg["List-Unsubscribe"] = f"<{mail.unsubscribe_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    msg.set_content(plain)
    msg.add_alternative(html, subtype="html")
    # Set last: set_content drops every Content-* header already present.
    msg["Content-Language"] = normalise_locale(mail.lang)
    if mail.reminder_of:
        msg["In-Reply-To"] = mail.reminder_of
        msg["References"] = mail.reminder_of
    return msg

"""The survey email and its delivery: SMTP URL parsing, message building, sending to a real server."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from html import escape, unescape
from pathlib import Path
from typing import Any

import jinja2
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tracker.config import ConfigError
from tracker.i18n.catalogue import scale_labels
from tracker.mail import (
    PermanentMailError,
    SmtpSender,
    SmtpTarget,
    SurveyMail,
    TransientMailError,
    build_survey_message,
    parse_smtp_url,
)
from tracker.mail.message import PACKAGED_TEMPLATES, render_survey, render_survey_whole
from tracker.scales import SCALES

PUBLIC = "https://csat.example.com"


# --- TRACKER_SMTP_URL ---------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "expected"), [
    ("smtp://localhost", SmtpTarget("localhost", 25)),
    ("smtp://127.0.0.1:1025", SmtpTarget("127.0.0.1", 1025)),
    ("smtp://mail.example.com:2525/", SmtpTarget("mail.example.com", 2525)),
    ("smtps://user:pass@smtp.example.com", SmtpTarget("smtp.example.com", 465, "user", "pass", use_ssl=True)),
    ("smtps://user:pass@smtp.example.com:2465", SmtpTarget("smtp.example.com", 2465, "user", "pass", True)),
    ("smtp://user:pass@smtp.example.com?starttls=1",
     SmtpTarget("smtp.example.com", 587, "user", "pass", starttls=True)),
    ("smtp://smtp.example.com:25?starttls=true", SmtpTarget("smtp.example.com", 25, starttls=True)),
    ("smtp://smtp.example.com?starttls=0", SmtpTarget("smtp.example.com", 25)),
    ("smtp://apikey:p%40ss%3Aw%2Ford@smtp.example.com:587?starttls=1",
     SmtpTarget("smtp.example.com", 587, "apikey", "p@ss:w/ord", starttls=True)),
    ("smtp://kari%40example.no:secret@mail.example.no", SmtpTarget("mail.example.no", 25, "kari@example.no",
                                                                    "secret")),
    ("smtp://[::1]:2525", SmtpTarget("::1", 2525)),
])
def test_smtp_urls_are_parsed_with_default_ports_and_decoded_credentials(
        url: str, expected: SmtpTarget) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize("url", [
    "", "localhost:25", "http://mail.example.com", "smtp://", "smtp://:25",
    "smtp://mail.example.com:notaport", "smtp://mail.example.com:99999", "smtp://mail.example.com:0",
    "smtps://mail.example.com?starttls=1", "smtp://mail.example.com?startls=1",
    "smtp://mail.example.com?starttls=maybe", "smtp://mail.example.com/inbox", "smtp://:secret@mail.example.com",
])
def test_a_malformed_smtp_url_is_a_config_error_naming_the_variable(url: str) -> None:
    with pytest.raises(ConfigError, match="TRACKER_SMTP_URL"):
        parse_smtp_url(url)


def test_a_config_error_never_shows_the_smtp_password() -> None:
    with pytest.raises(ConfigError) as error:
        parse_smtp_url("smtp://user:hunter2@mail.example.com:notaport")
    assert "hunter2" not in str(error.value)


def test_the_smtp_password_is_hidden_from_repr() -> None:
    assert "hunter2" not in repr(parse_smtp_url("smtp://user:hunter2@mail.example.com"))


# --- the survey message -------------------------------------------------------------------------

def survey(**changes: Any) -> SurveyMail:
    scale_name = changes.pop("scale_name", "csat5")
    lang = changes.pop("lang", "en")
    values: dict[str, Any] = {
        "to_email": "kari@example.no", "to_name": "Kari Nordmann", "lang": lang, "scale_name": scale_name,
        "ticket_subject": "Card declined", "ticket_ref": "#1001",
        "mail_from": "Acme Support <support@acme.test>",
        "message_id": "<survey.abc123@acme.test>",
        "rating_url": f"{PUBLIC}/s/tok3n?rating={{value}}",
        "unsubscribe_url": f"{PUBLIC}/u/tok3n",
        "reply_to": "reply+tok3n@reply.acme.test", "expires_at": datetime(2026, 12, 6, 10, tzinfo=UTC),
    }
    values.update(changes)
    return SurveyMail(**values)


def parts(msg: EmailMessage) -> tuple[str, str]:
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


def roundtrip(msg: EmailMessage) -> EmailMessage:
    parsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_the_survey_is_multipart_with_a_text_and_an_html_part() -> None:
    msg = roundtrip(build_survey_message(survey()))
    assert msg.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in msg.iter_parts()] == ["text/plain", "text/html"]


def test_the_survey_carries_the_headers_mail_clients_and_providers_expect() -> None:
    msg = roundtrip(build_survey_message(survey()))
    assert msg["Subject"] == "How did we do with “Card declined”?"
    assert msg["From"] == "Acme Support <support@acme.test>"
    assert msg["To"] == "Kari Nordmann <kari@example.no>"
    assert msg["Message-ID"] == "<survey.abc123@acme.test>"
    assert msg["Date"].datetime.tzinfo is not None
    assert msg["Reply-To"] == "reply+tok3n@reply.acme.test"
    assert msg["List-Unsubscribe"] == f"<{PUBLIC}/u/tok3n>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    assert msg["Content-Language"] == "en"
    assert msg["Precedence"] is None


def test_without_a_reply_address_that_header_is_left_out() -> None:
    msg = roundtrip(build_survey_message(survey(reply_to=None)))
    assert msg["Reply-To"] is None
    assert msg["List-Unsubscribe"] == f"<{PUBLIC}/u/tok3n>"
    assert "reply to this email" not in parts(msg)[0]


def test_a_long_unsubscribe_url_stays_verbatim_in_the_header() -> None:
    url = f"{PUBLIC}/u/" + "x" * 150
    msg = build_survey_message(survey(unsubscribe_url=url))
    assert f"<{url}>".encode() in msg.as_bytes()
    assert roundtrip(msg)["List-Unsubscribe"].startswith(f"<{url}>")


@pytest.mark.parametrize("scale_name", SCALES)
def test_each_part_has_exactly_one_link_per_rating_value(scale_name: str) -> None:
    mail = survey(scale_name=scale_name)
    plain, html = parts(roundtrip(build_survey_message(mail)))
    urls = [mail.rating_url.format(value=value) for value, _ in scale_labels(mail.lang, scale_name)]
    assert len(urls) == len(SCALES[scale_name].values)
    hrefs = [unescape(href) for href in re.findall(r'href="([^"]+)"', html)]
    assert sorted(href for href in hrefs if "/s/" in href) == sorted(urls)
    lines = plain.splitlines()
    for url in urls:
        assert lines.count(url) == 1


def test_every_label_appears_in_the_text_part() -> None:
    mail = survey(scale_name="ces7", lang="nb")
    plain, _ = parts(build_survey_message(mail))
    assert "1 – Svært vanskelig" in plain and "7 – Svært enkelt" in plain


def test_the_mail_is_written_in_the_customers_language() -> None:
    msg = roundtrip(build_survey_message(survey(lang="nb-NO", ticket_subject="Kortet ble avvist")))
    plain, html = parts(msg)
    assert msg["Subject"] == "Hvordan var hjelpen du fikk med «Kortet ble avvist»?"
    assert "Hvor fornøyd er du med hjelpen du fikk?" in plain
    assert 'lang="nb"' in html and "Svært fornøyd" in html
    assert msg["Content-Language"] == "nb"


def test_an_unknown_locale_gets_the_english_mail() -> None:
    plain, _ = parts(build_survey_message(survey(lang="pt-BR")))
    assert "How satisfied are you with the support you received?" in plain


def test_without_a_ticket_subject_the_subject_names_the_ticket_reference() -> None:
    msg = roundtrip(build_survey_message(survey(ticket_subject=None, to_name=None)))
    assert msg["Subject"] == "How did we do with your request #1001?"
    assert msg["To"] == "kari@example.no"
    assert parts(msg)[0].startswith("Hi there,")


def test_a_non_ascii_name_and_subject_are_encoded_and_survive_a_roundtrip() -> None:
    msg = build_survey_message(survey(to_name="Kåre Ødegård", ticket_subject="Kortet ble avvist på Ålesund"))
    raw = msg.as_bytes()
    head = raw.split(b"\n\n", 1)[0]
    assert head.isascii()
    parsed = roundtrip(msg)
    assert parsed["To"].addresses[0].display_name == "Kåre Ødegård"
    assert parsed["To"].addresses[0].addr_spec == "kari@example.no"
    assert parsed["Subject"] == "How did we do with “Kortet ble avvist på Ålesund”?"
    assert "Hi Kåre Ødegård," in parts(parsed)[0]


def test_the_html_part_escapes_a_script_in_the_ticket_subject_and_name() -> None:
    msg = build_survey_message(survey(ticket_subject="<script>alert(1)</script>", to_name="<b>Kari</b>"))
    _, html = parts(roundtrip(msg))
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;Kari&lt;/b&gt;" in html


def test_a_line_break_in_the_ticket_subject_cannot_inject_headers() -> None:
    msg = roundtrip(build_survey_message(survey(ticket_subject="Card\r\nBcc: evil@example.com\nX: y")))
    assert msg["Bcc"] is None
    assert msg["Subject"] == "How did we do with “Card Bcc: evil@example.com X: y”?"


@pytest.mark.parametrize("kind", ["ticket", "order"])
@pytest.mark.parametrize("ref", ["10\r\nBcc: evil@example.com", "10\u2028\u0085y", "10\nX: y"])
def test_a_line_break_in_the_ticket_reference_cannot_inject_headers_or_stop_the_mail(kind: str, ref: str) -> None:
    msg = roundtrip(build_survey_message(survey(ticket_subject=None, ticket_ref=ref, kind=kind)))
    assert msg["Bcc"] is None and msg["X"] is None
    assert "\n" not in msg["Subject"] and "10 " in msg["Subject"]
    assert "10 " in parts(msg)[0]


def test_braces_in_customer_data_are_shown_literally() -> None:
    msg = roundtrip(build_survey_message(survey(ticket_subject="{ref} {{ question }}", to_name="{name}")))
    assert msg["Subject"] == "How did we do with “{ref} {{ question }}”?"
    assert parts(msg)[0].startswith("Hi {name},")


def test_a_very_long_ticket_subject_is_shortened_in_the_mail_subject() -> None:
    msg = roundtrip(build_survey_message(survey(ticket_subject="Refund " * 40)))
    assert len(msg["Subject"]) < 100 and "…" in msg["Subject"]


def test_the_html_uses_no_external_resources_or_scripts() -> None:
    _, html = parts(build_survey_message(survey()))
    assert "<script" not in html and "<img" not in html and "<link" not in html
    assert "@import" not in html and "url(" not in html


def test_the_link_expiry_is_written_as_a_local_date() -> None:
    plain, _ = parts(build_survey_message(survey(lang="de")))
    assert "Der Link ist bis zum 6. Dezember 2026 gültig." in plain


def test_an_operator_template_folder_overrides_the_packaged_templates_by_name(tmp_path: Path) -> None:
    (tmp_path / "survey.txt").write_text(
        "{{ question }}\n{% for b in buttons %}[{{ b.value }}] {{ b.url }}\n{% endfor %}"
        "{{ t('mail.footer', ref=ticket_ref) }}\n")
    plain, html = parts(build_survey_message(survey(), template_dir=str(tmp_path)))
    assert plain.startswith("How satisfied are you with the support you received?\n[1] https://")
    assert "about ticket #1001." in plain
    assert "<!DOCTYPE html>" in html


def _jinja_renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the name of every template Jinja renders from now on."""
    rendered: list[str] = []
    original = jinja2.Template.render

    def counting(self: jinja2.Template, *args: Any, **kwargs: Any) -> str:
        rendered.append(str(self.name))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(jinja2.Template, "render", counting)
    return rendered


def test_mails_in_one_language_and_scale_are_filled_from_one_rendering_per_template(monkeypatch, tmp_path) -> None:
    for name in ("survey.txt", "survey.html"):  # an operator's copy: its own environment, so nothing is cached yet
        (tmp_path / name).write_bytes((PACKAGED_TEMPLATES / name).read_bytes())
    rendered = _jinja_renders(monkeypatch)
    customers = [("Kari <Nordmann>", "Card & declined"), ("Ola", "Refund"), (None, "Parcel lost"), ("Åse", "Login")]
    for number, (name, subject) in enumerate(customers * 5):
        mail = survey(lang="nn", scale_name="ces7", to_name=name, ticket_subject=subject, ticket_ref=f"#{number}",
                      rating_url=f"{PUBLIC}/s/tok{number}?rating={{value}}", unsubscribe_url=f"{PUBLIC}/u/tok{number}")
        plain, html = parts(build_survey_message(mail, template_dir=str(tmp_path)))
        assert f"{PUBLIC}/s/tok{number}?rating=7" in plain and f"{PUBLIC}/u/tok{number}" in html
        assert escape(subject) in html and f"#{number}" in plain
    # One rendering per template; every other mail only fills in its customer's values.
    assert sorted(rendered) == ["survey.html", "survey.txt"]


FILLED_SHAPES = [
    {}, {"to_name": None, "ticket_subject": None, "reply_to": None}, {"kind": "order", "to_name": ""},
    {"to_name": 'Kari "<b>&', "ticket_subject": "<script>alert('x')</script> {value} & co", "ticket_ref": "#1&<"},
    {"ticket_subject": "line\nBcc: evil@example.com", "rating_url": f"{PUBLIC}/s/t?a=1&rating={{value}}"},
]


@pytest.mark.parametrize("changes", FILLED_SHAPES)
@pytest.mark.parametrize("scale_name", sorted(SCALES))
@pytest.mark.parametrize("lang", ["en", "nb", "fr", "pt-BR"])
def test_a_filled_mail_is_byte_for_byte_what_jinja_renders_for_it(lang: str, scale_name: str, changes: dict) -> None:
    mail = survey(lang=lang, scale_name=scale_name, **changes)
    assert render_survey(mail) == render_survey_whole(mail)


def test_an_operator_template_that_transforms_customer_values_is_rendered_whole_for_each_mail(tmp_path: Path) -> None:
    (tmp_path / "survey.txt").write_text("{{ greeting|upper }} {{ ticket_subject|truncate(9, True, '…', 0) }}\n"
                                         "{% for b in buttons %}{{ b.url|replace('https://', '') }}\n{% endfor %}")
    (tmp_path / "survey.html").write_text("<b>{{ greeting }}</b>{% for b in buttons %}{{ b['url'] }}{% endfor %}")
    for name in ("Kari", "Ola Nordmann"):
        mail = survey(to_name=name, ticket_subject=f"{name} cannot log in")
        _subject, plain, html = render_survey(mail, str(tmp_path))
        assert (_subject, plain, html) == render_survey_whole(mail, str(tmp_path))
        assert plain.startswith(f"HI {name.upper()},") and "csat.example.com/s/tok3n?rating=5" in plain
        assert html.startswith(f"<b>Hi {name},</b>https://")


# --- sending over SMTP to a real server ---------------------------------------------------------

class Inbox:
    """aiosmtpd handler that keeps what it receives, optionally refusing some commands."""

    def __init__(self, data_replies: list[str] | None = None, rcpt_reply: str | None = None) -> None:
        self.messages: list[EmailMessage] = []
        self.peers: list[Any] = []
        self.logins: list[tuple[bytes, bytes]] = []
        self.data_replies = list(data_replies or [])
        self.rcpt_reply = rcpt_reply

    async def handle_RCPT(self, server: Any, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.data_replies:
            return self.data_replies.pop(0)
        parsed = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.peers.append(session.peer)
        return "250 Message accepted"

    def authenticate(self, server: Any, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"p@ss word", handled=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(inbox: Inbox, port: int | None = None, **kwargs: Any) -> Controller:
    controller = Controller(inbox, hostname="127.0.0.1", port=port or free_port(), **kwargs)
    controller.start()
    return controller


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, Controller]]:
    box = Inbox()
    controller = start_server(box)
    yield box, controller
    controller.stop()


def plain_message(number: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "support@acme.test"
    msg["To"] = "kari@example.no"
    msg["Subject"] = f"Message {number}"
    msg.set_content("Hello")
    return msg


def test_the_sender_delivers_two_messages_over_one_connection(inbox: tuple[Inbox, Controller]) -> None:
    box, controller = inbox
    with SmtpSender(f"smtp://127.0.0.1:{controller.port}") as sender:
        sender.send(plain_message(1))
        sender.send(plain_message(2))
    assert [msg["Subject"] for msg in box.messages] == ["Message 1", "Message 2"]
    assert box.peers[0] == box.peers[1]


def test_a_survey_mail_arrives_intact_at_the_server(inbox: tuple[Inbox, Controller]) -> None:
    box, controller = inbox
    with SmtpSender(f"smtp://127.0.0.1:{controller.port}", local_hostname="tracker.test") as sender:
        sender.send(build_survey_message(survey(to_name="Kåre Ødegård", lang="nb")))
    (received,) = box.messages
    assert received["To"].addresses[0].display_name == "Kåre Ødegård"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert f"{PUBLIC}/s/tok3n?rating=5" in parts(received)[0]


def test_the_sender_reconnects_when_the_server_dropped_the_connection() -> None:
    first, second = Inbox(), Inbox()
    controller = start_server(first)
    port = controller.port
    sender = SmtpSender(f"smtp://127.0.0.1:{port}")
    try:
        sender.send(plain_message(1))
        controller.stop()
        controller = start_server(second, port=port)
        sender.send(plain_message(2))
    finally:
        sender.close()
        controller.stop()
    assert [msg["Subject"] for msg in first.messages] == ["Message 1"]
    assert [msg["Subject"] for msg in second.messages] == ["Message 2"]


def test_a_451_reply_is_a_transient_error_and_the_next_try_succeeds() -> None:
    box = Inbox(data_replies=["451 4.3.0 Try again later"])
    controller = start_server(box)
    try:
        with SmtpSender(f"smtp://127.0.0.1:{controller.port}") as sender:
            with pytest.raises(TransientMailError) as error:
                sender.send(plain_message(1))
            assert error.value.code == 451
            sender.send(plain_message(1))
    finally:
        controller.stop()
    assert len(box.messages) == 1


def test_a_refused_recipient_is_a_permanent_error_without_the_address() -> None:
    controller = start_server(Inbox(rcpt_reply="550 5.1.1 <kari@example.no>: Recipient address rejected"))
    try:
        with SmtpSender(f"smtp://127.0.0.1:{controller.port}") as sender, \
                pytest.raises(PermanentMailError) as error:
            sender.send(plain_message(1))
    finally:
        controller.stop()
    assert error.value.code == 550
    assert error.value.recipient is True
    assert "5.1.1" in str(error.value)
    assert "kari" not in str(error.value)


def test_a_550_on_the_message_is_a_permanent_error_not_about_the_recipient() -> None:
    controller = start_server(Inbox(data_replies=["550 5.7.1 Message rejected as spam"]))
    try:
        with SmtpSender(f"smtp://127.0.0.1:{controller.port}") as sender, \
                pytest.raises(PermanentMailError) as error:
            sender.send(plain_message(1))
    finally:
        controller.stop()
    assert error.value.code == 550
    assert error.value.recipient is False


def test_a_closed_port_is_a_transient_error() -> None:
    with SmtpSender(f"smtp://127.0.0.1:{free_port()}") as sender, pytest.raises(TransientMailError) as error:
        sender.send(plain_message(1))
    assert error.value.code is None


def test_a_server_that_never_answers_times_out_as_a_transient_error() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with SmtpSender(f"smtp://127.0.0.1:{port}", timeout=0.5) as sender, pytest.raises(TransientMailError):
            sender.send(plain_message(1))


def test_the_sender_logs_in_with_the_decoded_credentials_from_the_url() -> None:
    box = Inbox()
    controller = start_server(box, auth_require_tls=False, authenticator=box.authenticate)
    try:
        with SmtpSender(f"smtp://kari%40acme.test:p%40ss%20word@127.0.0.1:{controller.port}") as sender:
            sender.send(plain_message(1))
    finally:
        controller.stop()
    assert box.logins == [(b"kari@acme.test", b"p@ss word")]
    assert len(box.messages) == 1


def test_a_refused_login_is_a_permanent_error() -> None:
    box = Inbox()
    controller = start_server(box, auth_require_tls=False, authenticator=box.authenticate)
    try:
        with SmtpSender(f"smtp://kari:wrong@127.0.0.1:{controller.port}") as sender, \
                pytest.raises(PermanentMailError) as error:
            sender.send(plain_message(1))
    finally:
        controller.stop()
    assert error.value.code == 535
    assert error.value.recipient is False
    assert box.messages == []

"""The survey mail written straight to bytes (tracker.mail.wire) against the email package's build of it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tracker.cli.dev import free_port
from tracker.i18n.catalogue import SUPPORTED
from tracker.mail import SmtpSender, SurveyMail, build_survey_message
from tracker.mail.wire import EncodedMail, encode_message, encode_survey_message
from tracker.scales import SCALES

MAIL = SurveyMail(
    to_email="kari@example.no", to_name="Kari Nordmann", lang="en", scale_name="csat5",
    ticket_subject="Card declined", ticket_ref="#1001", mail_from="Acme Support <support@acme.test>",
    message_id="<survey.abc123@acme.test>", rating_url="https://csat.example.com/s/tok3n?rating={value}",
    unsubscribe_url="https://csat.example.com/u/tok3n", reply_to="reply+tok3n@reply.acme.test",
    expires_at=datetime(2026, 12, 6, 10, tzinfo=UTC))
NAMES = ["Kåre Ødegård", "Kari N. Nordmann", "Smith, John", "O'Brien", "Zoë (work)", "Ольга Петрова", "李小龙",
         'Kåre "KÅ" Ødegård', None]
SUBJECTS = ["Kortet ble avvist på Ålesund", "Refund " * 40, "<b>Card</b> & co {ref}", "払い戻しについて", "x" * 90,
            None]


def parsed(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def reading(message: EmailMessage) -> list[Any]:
    """What a reader of the mail gets: every header but Date (and the boundary), each part's headers and text."""
    assert message["Date"].datetime.tzinfo is not None
    params = dict(message["Content-Type"].params)
    assert params.pop("boundary")
    shown: list[Any] = [[(k, str(v)) for k, v in message.items() if k not in ("Date", "Content-Type")],
                        [k for k, _ in message.items()], message.get_content_type(), params]
    for part in message.iter_parts():
        shown += [[(k, str(v)) for k, v in part.items()], part.get_content()]  # type: ignore[attr-defined]
    return shown


def as_built(mail: SurveyMail) -> EncodedMail:
    """The email package's build, written as smtplib's send_message writes it."""
    return encode_message(build_survey_message(mail))


def assert_same(mail: SurveyMail) -> EncodedMail:
    fast, plain = encode_survey_message(mail), as_built(mail)
    assert reading(parsed(fast.data)) == reading(parsed(plain.data))
    assert (fast.sender, fast.recipients, fast.smtputf8) == (plain.sender, plain.recipients, plain.smtputf8)
    head, _, body = fast.data.partition(b"\r\n\r\n")
    assert b"\n" not in fast.data.replace(b"\r\n", b"")  # CRLF line ends only
    # Lines within 78 characters, but for what the email package keeps whole too (List-Unsubscribe).
    plain_lines = plain.data.partition(b"\r\n\r\n")[0].split(b"\r\n")
    assert all(len(line) <= 78 or line in plain_lines for line in head.split(b"\r\n"))
    assert all(len(line) <= 998 for line in body.split(b"\r\n"))
    if not fast.smtputf8:
        assert head.isascii()
    return fast


@pytest.mark.parametrize("lang", SUPPORTED)
@pytest.mark.parametrize("scale_name", SCALES)
def test_every_language_and_scale_reads_as_the_email_package_builds_it(lang: str, scale_name: str) -> None:
    for kind in ("ticket", "order"):
        assert_same(replace(MAIL, lang=lang, scale_name=scale_name, kind=kind))


@pytest.mark.parametrize("name", NAMES)
def test_a_name_reads_as_built_in_the_header_and_the_greeting(name: str | None) -> None:
    for lang in ("nb", "de", "en"):
        fast = parsed(assert_same(replace(MAIL, lang=lang, to_name=name)).data)
        assert fast["To"].addresses[0].display_name == (name or "")
        assert fast["To"].addresses[0].addr_spec == "kari@example.no"


@pytest.mark.parametrize("subject", SUBJECTS)
def test_a_ticket_subject_reads_as_built(subject: str | None) -> None:
    for lang in ("fr", "sv"):
        assert_same(replace(MAIL, lang=lang, ticket_subject=subject, to_name="Åsa Öberg"))


@pytest.mark.parametrize("changes", [
    {"reply_to": None},
    {"unsubscribe_url": "https://csat.example.com/u/" + "x" * 150},
    {"reminder_of": "<survey.abc123@acme.test>", "message_id": "<survey.abc123.reminder@acme.test>", "lang": "da"},
    {"mail_from": "Åcme Støtte <support@acme.test>"},
    {"mail_from": "support@acme.test", "to_name": None},
    {"to_email": "Kari.Nordmann+csat@Example.NO"},
    {"ticket_ref": "#" + "9" * 90, "kind": "order"},
    {"lang": "pt-BR"},
], ids=str)
def test_the_other_headers_read_as_built(changes: dict[str, Any]) -> None:
    assert_same(replace(MAIL, **changes))


def test_a_long_unsubscribe_url_stays_verbatim_in_the_header() -> None:
    url = "https://csat.example.com/u/" + "x" * 150
    assert f"List-Unsubscribe: <{url}>\r\n".encode() in encode_survey_message(replace(MAIL, unsubscribe_url=url)).data


def test_a_reminder_is_threaded_under_the_first_mail() -> None:
    reminder = parsed(encode_survey_message(replace(
        MAIL, lang="nb", message_id="<s1.reminder@acme.test>", reminder_of="<s1@acme.test>")).data)
    assert reminder["Subject"] == "Påminnelse: Hvordan var hjelpen du fikk med «Card declined»?"
    assert (reminder["In-Reply-To"], reminder["References"]) == ("<s1@acme.test>", "<s1@acme.test>")


def test_an_address_only_smtputf8_carries_is_written_by_the_email_package_with_utf8_headers() -> None:
    mail = replace(MAIL, to_email="jørn@example.no", to_name="Jørn")
    fast = assert_same(mail)
    assert fast.smtputf8 and fast.recipients == ("jørn@example.no",)
    assert "To: Jørn <jørn@example.no>\r\n".encode() in fast.data


def test_a_line_break_in_a_header_value_is_refused_as_the_email_package_refuses_it() -> None:
    # The customer's values are made one line before they reach a header (test_mail.py); this is the net under them.
    mail = replace(MAIL, message_id="<s.1@acme.test>\r\nBcc: evil@example.com")
    with pytest.raises(ValueError) as plain:
        build_survey_message(mail)
    with pytest.raises(ValueError) as fast:
        encode_survey_message(mail)
    assert str(fast.value) == str(plain.value)


def test_each_mail_gets_its_own_date_and_boundary() -> None:
    first, second = (parsed(encode_survey_message(MAIL).data) for _ in range(2))
    assert first["Content-Type"].params["boundary"] != second["Content-Type"].params["boundary"]
    assert first["Date"].datetime.tzinfo is not None


def test_the_mail_arrives_at_the_server_as_written() -> None:
    received: list[bytes] = []

    class Keep:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope.content)
            return "250 OK"

    controller = Controller(Keep(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        mail = encode_survey_message(replace(MAIL, lang="nb", to_name="Kåre Ødegård"))
        with SmtpSender(f"smtp://127.0.0.1:{controller.port}") as sender:
            sender.send(mail)
            sender.send(build_survey_message(MAIL))  # an EmailMessage still goes, as smtplib writes it
    finally:
        controller.stop()
    assert received[0] == mail.data
    assert reading(parsed(received[1])) == reading(parsed(as_built(MAIL).data))


def test_a_sender_taking_headers_and_parts_gets_them_as_the_email_package_builds_them() -> None:
    mail = replace(MAIL, lang="nb", to_name="Kåre Ødegård", ticket_subject="Kortet ble avvist på Ålesund")
    given, built = encode_survey_message(mail).message, build_survey_message(mail)
    assert [(k, str(v)) for k, v in given.items() if k not in ("Date", "Content-Type")] == [
        (k, str(v)) for k, v in built.items() if k not in ("Date", "Content-Type")]
    for kind in ("plain", "html"):
        ours, theirs = given.get_body((kind,)), built.get_body((kind,))
        assert ours is not None and theirs is not None
        assert ours.get_content() == theirs.get_content()  # type: ignore[attr-defined]

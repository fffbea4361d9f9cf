"""The dev mail catcher: receives mail over SMTP, keeps it as files, and shows it in a browser."""

from __future__ import annotations

import html
import re
import smtplib
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tracker.mail import SmtpSender, SurveyMail, build_survey_message
from tracker.mail.catcher import MailCatcher, make_viewer_app


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    with MailCatcher(tmp_path / "mail") as running:
        yield running


@pytest.fixture
def viewer(catcher: MailCatcher) -> FlaskClient:
    return make_viewer_app(catcher.folder).test_client()


def send(catcher: MailCatcher, subject: str, html_body: str | None = None) -> None:
    msg = EmailMessage()
    msg["From"] = "Acme Support <support@acme.test>"
    msg["To"] = "Kari Nordmann <kari@example.no>"
    msg["Subject"] = subject
    msg.set_content(f"Plain text of {subject}")
    if html_body:
        msg.add_alternative(html_body, subtype="html")
    with smtplib.SMTP(catcher.host, catcher.port, timeout=10) as client:
        client.send_message(msg)


def names(viewer: FlaskClient) -> list[str]:
    return re.findall(r'href="/mail/([0-9-]+)"', viewer.get("/").get_data(as_text=True))


def test_the_catcher_listens_on_a_free_local_port_and_offers_an_smtp_url(catcher: MailCatcher) -> None:
    assert catcher.port > 0
    assert catcher.url == f"smtp://127.0.0.1:{catcher.port}"


def test_a_mail_sent_with_smtplib_is_stored_as_an_eml_file(catcher: MailCatcher) -> None:
    send(catcher, "Hello from the test")
    (stored,) = catcher.folder.glob("*.eml")
    assert b"Subject: Hello from the test" in stored.read_bytes()


def test_the_viewer_lists_mails_newest_first_with_from_to_and_subject(
        catcher: MailCatcher, viewer: FlaskClient) -> None:
    send(catcher, "First mail")
    send(catcher, "Second mail")
    page = viewer.get("/").get_data(as_text=True)
    assert page.index("Second mail") < page.index("First mail")
    assert "Acme Support &lt;support@acme.test&gt;" in page
    assert "Kari Nordmann &lt;kari@example.no&gt;" in page
    assert "2 mails caught" in page


def test_the_viewer_shows_the_html_part_in_a_sandboxed_frame_with_links_opening_on_top(
        catcher: MailCatcher, viewer: FlaskClient) -> None:
    send(catcher, "Survey", '<html><head></head><body><a href="http://127.0.0.1:8000/s/t?rating=5">5</a></body></html>')
    (name,) = names(viewer)
    page = viewer.get(f"/mail/{name}").get_data(as_text=True)
    frame = re.search(r'<iframe[^>]*sandbox="([^"]*)"[^>]*srcdoc="([^"]*)"', page)
    assert frame is not None
    assert frame.group(1) == "allow-popups allow-top-navigation-by-user-activation"
    shown = html.unescape(frame.group(2))
    assert '<base target="_top">' in shown
    assert '<a href="http://127.0.0.1:8000/s/t?rating=5">5</a>' in shown
    assert "Plain text of Survey" in page
    assert "kari@example.no" in page


def test_the_raw_mail_can_be_downloaded(catcher: MailCatcher, viewer: FlaskClient) -> None:
    send(catcher, "Download me")
    (name,) = names(viewer)
    response = viewer.get(f"/mail/{name}.eml")
    assert response.status_code == 200
    assert response.mimetype == "message/rfc822"
    assert response.get_data() == (catcher.folder / f"{name}.eml").read_bytes()
    response.close()  # the file is streamed from disk; closing the response closes it


@pytest.mark.parametrize("path", [
    "/mail/..%2Fsecret", "/mail/../secret.eml", "/mail/..%2F..%2Fetc%2Fpasswd", "/mail/%2e%2e",
    "/mail/secret", "/mail/secret.eml", "/mail/00000000000000000000-000000", "/mail/.eml",
])
def test_unknown_names_and_path_traversal_get_404(
        catcher: MailCatcher, viewer: FlaskClient, path: str) -> None:
    (catcher.folder.parent / "secret.eml").write_text("Subject: private\n\nnot for the viewer\n")
    (catcher.folder / "secret.eml").write_text("Subject: private\n\nnot a caught mail\n")
    response = viewer.get(path)
    assert response.status_code == 404
    assert b"private" not in response.get_data()


def test_a_survey_sent_by_the_sender_arrives_and_its_links_are_clickable(
        catcher: MailCatcher, viewer: FlaskClient) -> None:
    mail = SurveyMail(to_email="kari@example.no", to_name="Kåre", lang="nb", scale_name="csat5",
                      ticket_subject="Kortet ble avvist", ticket_ref="#1001",
                      mail_from="Support <support@localhost>",
                      message_id="<s1@localhost>", rating_url="http://127.0.0.1:8000/s/tok?rating={value}",
                      unsubscribe_url="http://127.0.0.1:8000/u/tok",
                      expires_at=datetime(2026, 12, 6, tzinfo=UTC))
    with SmtpSender(catcher.url) as sender:
        sender.send(build_survey_message(mail))
    listing = viewer.get("/").get_data(as_text=True)
    assert "Hvordan var hjelpen du fikk med «Kortet ble avvist»?" in listing
    (name,) = names(viewer)
    shown = html.unescape(viewer.get(f"/mail/{name}").get_data(as_text=True))
    assert 'href="http://127.0.0.1:8000/s/tok?rating=5"' in shown


def test_the_catcher_stops_even_while_a_sender_keeps_its_connection_open(tmp_path: Path) -> None:
    catcher = MailCatcher(tmp_path).start()
    sender = SmtpSender(catcher.url)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "support@acme.test", "kari@example.no", "Kept open"
    sender.send(msg)
    catcher.stop()
    with smtplib.SMTP(timeout=1) as client, pytest.raises(OSError):
        client.connect(catcher.host, catcher.port)
    sender.close()

"""The survey mail as the bytes its SMTP server receives, written directly rather than by the email package.

build_survey_message builds an EmailMessage whose headers are parsed, folded and generated again for every
mail, and whose parts are encoded in pure Python: milliseconds a mail, more than the rest of a send. Here
the parts are filled from the once-rendered templates (render_survey) and encoded with binascii, and every
header is written as it stands when it is plain (ASCII, one short line), or as RFC 2047 encoded words when
it holds non-ASCII text. What is not plain (an address needing SMTPUTF8, a header value that is not one
clean line) goes through the email package, header by header or, for such an address, the whole mail, so
such a mail comes out exactly as before. Either way a mail parses to what build_survey_message gives.
"""

from __future__ import annotations

import binascii
import random
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from functools import cached_property, lru_cache
from io import BytesIO

from tracker.i18n.catalogue import normalise_locale, text
from tracker.mail.message import POLICY, SurveyMail, _one_line, _recipient, build_survey_message, render_survey

CRLF = b"\r\n"
MAX_LINE = 78  # POLICY.max_line_length: the longest line a plain header or 7bit/8bit body keeps
WORD_LINE = 76  # the longest line holding an encoded word (RFC 2047)
WIRE_POLICY = POLICY.clone(linesep="\r\n")
ENVELOPE_HEADERS = ("Sender", "From", "To", "Cc", "Bcc")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
# An address the email package prints as given: a dot-atom local part at a host name.
PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")
PLAIN_MESSAGE_ID = re.compile(rf"<{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*>")
# A display name of atoms only is printed bare; one with specials (".", ",", …) inside quotes.
BARE_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+")
# Encoded-word characters: letters, digits and the five RFC 2047 allows in a phrase as they are; "_" is a space.
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q_ASCII = tuple(chr(b) if b in _Q_SAFE else "_" if b == 0x20 else f"={b:02X}" for b in range(128))
_Q_START, _B_START, _WORD_END = "=?utf-8?q?", "=?utf-8?b?", "?="
_BOUNDARY_WIDTH = len(repr(sys.maxsize - 1))  # as the email package draws its boundaries


@dataclass(frozen=True)
class EncodedMail:
    """A whole mail as its SMTP server receives it (CRLF line ends, before dot-stuffing), with its envelope.

    smtputf8: an envelope address is not ASCII (RFC 6531): the mail needs a server offering SMTPUTF8, and its
    headers are then written in UTF-8 (RFC 6532).
    """

    data: bytes
    sender: str
    recipients: tuple[str, ...]
    smtputf8: bool = False

    @cached_property
    def message(self) -> EmailMessage:
        """The mail parsed (with LF line ends, as the email package builds it), for a sender that takes headers
        and parts rather than bytes: an HTTP API."""
        parsed = message_from_bytes(self.data.replace(CRLF, b"\n"), policy=POLICY)
        assert isinstance(parsed, EmailMessage)
        return parsed


def needs_smtputf8(msg: EmailMessage) -> bool:
    """Say whether an envelope address has a non-ASCII local part (or domain), which only SMTPUTF8 carries."""
    return any(not address.addr_spec.isascii() for name in ENVELOPE_HEADERS
               for header in msg.get_all(name, []) for address in getattr(header, "addresses", ()))


def encode_survey_message(mail: SurveyMail, template_dir: str | None = None) -> EncodedMail:
    """Write the survey mail as the bytes its SMTP server receives; it parses to what build_survey_message gives."""
    sender = _from_header(mail.mail_from)
    if sender is None or not PLAIN_ADDRESS.fullmatch(mail.to_email):
        return encode_message(build_survey_message(mail, template_dir))
    subject, plain, html = render_survey(mail, template_dir)
    lang = normalise_locale(mail.lang)
    if mail.reminder_of:
        subject = f"{text(lang, 'mail.reminder_prefix')} {subject}"
    try:
        head = [
            _unstructured("Subject", subject),
            sender[0],
            _to(_one_line(mail.to_name), mail.to_email),
            b"Date: " + format_datetime(datetime.now(UTC)).encode() + CRLF,
            _message_id("Message-ID", mail.message_id),
            _address("Reply-To", mail.reply_to) if mail.reply_to else b"",
            _list_unsubscribe(f"<{mail.unsubscribe_url}>"),
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nAuto-Submitted: auto-generated\r\n"
            b"X-Auto-Response-Suppress: OOF, AutoReply\r\nMIME-Version: 1.0\r\n",
        ]
    except ValueError:  # a header value the email package refuses (a line break): let it say so
        return encode_message(build_survey_message(mail, template_dir))
    plain_cte, plain_body = _encoded_body(plain)
    html_cte, html_body = _encoded_body(html)
    boundary = _boundary(plain_body, html_body)
    head += [b'Content-Type: multipart/alternative;\r\n boundary="', boundary, b'"\r\n',
             _unstructured("Content-Language", lang)]
    if mail.reminder_of:
        head += [_message_id("In-Reply-To", mail.reminder_of), _message_id("References", mail.reminder_of)]
    separator = b"--" + boundary + CRLF
    data = b"".join([
        *head, CRLF,
        separator, b'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: ', plain_cte, CRLF,
        CRLF, plain_body,
        CRLF, separator, b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: ', html_cte, CRLF,
        b"MIME-Version: 1.0\r\n", CRLF, html_body,
        CRLF, b"--", boundary, b"--", CRLF,
    ])
    return EncodedMail(data, sender[1], (mail.to_email,))


def encode_message(msg: EmailMessage) -> EncodedMail:
    """Write an EmailMessage as smtplib's send_message would send it, with the envelope it would take."""
    header = msg["Sender"] if "Sender" in msg else msg["From"]
    sender = getaddresses([str(header)])[0][1] if header is not None else ""
    recipients = tuple(address for _name, address in getaddresses(
        [str(value) for value in (msg["To"], msg["Bcc"], msg["Cc"]) if value is not None]))
    international = needs_smtputf8(msg) or not "".join([sender, *recipients]).isascii()
    out = BytesIO()
    # A survey mail has no Bcc for smtplib to strip.
    policy = msg.policy.clone(utf8=True) if international else None  # type: ignore[call-arg]
    BytesGenerator(out, policy=policy).flatten(msg, linesep="\r\n")
    return EncodedMail(out.getvalue(), sender, recipients, international)


# --- headers -------------------------------------------------------------------------------------

def _folded(name: str, value: object) -> bytes:
    """Fold a header as the email package's generator does (raising as it does on a value it refuses)."""
    return WIRE_POLICY.fold_binary(name, POLICY.header_store_parse(name, value)[1])


def _plain(value: str) -> bool:
    """Say whether a value is printed as it is: printable ASCII, single spaces, nothing like an encoded word."""
    return value.isascii() and value.isprintable() and "=?" not in value and " ".join(value.split()) == value


def _clean(value: str) -> bool:
    """Say whether a non-ASCII value may go out as encoded words: one printable line with single spaces."""
    return value.isprintable() and " ".join(value.split()) == value


def _unstructured(name: str, value: str) -> bytes:
    if _plain(value) and len(name) + 2 + len(value) <= MAX_LINE:
        return f"{name}: {value}\r\n".encode()
    if not value.isascii() and _clean(value):
        return _lines(f"{name}:", _encoded_words(value, WORD_LINE - len(name) - 2))
    return _folded(name, value)


def _to(name: str, address: str) -> bytes:
    if not name:
        return _address("To", address)
    if _plain(name) and '"' not in name and "\\" not in name:
        shown = name if BARE_NAME.fullmatch(name) else f'"{name}"'  # quoted when it holds specials
        line = f"To: {shown} <{address}>"
        if len(line) <= MAX_LINE:
            return line.encode() + CRLF
    elif not name.isascii() and _clean(name):
        return _lines("To:", [*_encoded_words(name, WORD_LINE - 4), f"<{address}>"])
    return _folded("To", _recipient(name, address))


def _address(name: str, address: str) -> bytes:
    if PLAIN_ADDRESS.fullmatch(address) and len(name) + 2 + len(address) <= MAX_LINE:
        return f"{name}: {address}\r\n".encode()
    return _folded(name, address)


def _message_id(name: str, value: str) -> bytes:
    if PLAIN_MESSAGE_ID.fullmatch(value) and len(name) + 2 + len(value) <= MAX_LINE:
        return f"{name}: {value}\r\n".encode()
    return _folded(name, value)


def _list_unsubscribe(value: str) -> bytes:
    if value.isascii() and "\r" not in value and "\n" not in value:
        return WIRE_POLICY.fold_binary("List-Unsubscribe", value)  # verbatim, split between URLs only
    return _folded("List-Unsubscribe", value)


@lru_cache(maxsize=16)
def _from_header(mail_from: str) -> tuple[bytes, str] | None:
    """Return the From header and the envelope sender, or None when the sender's address needs SMTPUTF8."""
    header = POLICY.header_store_parse("From", mail_from)[1]
    sender = getaddresses([str(header)])[0][1]
    if not sender.isascii() or any(not a.addr_spec.isascii() for a in getattr(header, "addresses", ())):
        return None
    return WIRE_POLICY.fold_binary("From", header), sender


def _encoded_words(value: str, first_room: int) -> list[str]:
    """Split value into RFC 2047 encoded words of whole characters, Q or B, whichever is shorter; the first word
    fits first_room, the others a continuation line. (Whitespace between two encoded words is not part of the
    text, RFC 2047 6.2; Python's own parser keeps it inside a display name, as it does for the email package's
    words, so a name too long for one word reads there with a space where it was split.)"""
    chars = [(char, _Q_ASCII[code] if (code := ord(char)) < 128 else "".join(f"={b:02X}" for b in char.encode()))
             for char in value]
    data = value.encode()
    if sum(len(q) for _, q in chars) <= (len(data) + 2) // 3 * 4:
        start, sizes = _Q_START, [len(q) for _, q in chars]
    else:
        start, sizes = _B_START, [len(char.encode()) for char, _ in chars]
    room = first_room - len(start) - len(_WORD_END)
    words, begin, used = [], 0, 0
    for index, size in enumerate(sizes):
        cost = used + size if start is _Q_START else (used + size + 2) // 3 * 4
        if cost > room and index > begin:
            words.append(_word(start, chars[begin:index]))
            begin, room = index, WORD_LINE - 1 - len(start) - len(_WORD_END)
            used = 0
        used += size
    words.append(_word(start, chars[begin:]))
    return words


def _word(start: str, chars: list[tuple[str, str]]) -> str:
    if start is _Q_START:
        return start + "".join(q for _, q in chars) + _WORD_END
    return start + binascii.b2a_base64("".join(c for c, _ in chars).encode(), newline=False).decode() + _WORD_END


def _lines(label: str, tokens: list[str]) -> bytes:
    """Write a header of tokens joined by spaces, folding before a token that would pass WORD_LINE."""
    lines = [label]
    for token in tokens:
        if len(lines[-1]) + 1 + len(token) > WORD_LINE and lines[-1] != label:
            lines.append("")
        lines[-1] += " " + token
    return "\r\n".join(lines).encode() + CRLF


# --- parts ---------------------------------------------------------------------------------------

def _encoded_body(content: str) -> tuple[bytes, bytes]:
    """Encode a text part as set_content would choose (7bit, 8bit, quoted-printable or base64); CRLF line ends.

    Lines all within MAX_LINE go as they are; else the first ten lines decide between quoted-printable and
    base64, whichever is shorter, as the email package does (measured with binascii's encoder, so a near tie
    may fall the other way; either decodes to the same text).
    """
    lines = content.encode("utf-8").splitlines()
    body = b"\n".join(lines) + b"\n"
    if max(map(len, lines), default=0) <= MAX_LINE:
        return (b"7bit" if body.isascii() else b"8bit"), body.replace(b"\n", CRLF)
    sniff = b"\n".join(lines[:10]) + b"\n"
    if len(binascii.b2a_qp(sniff)) > len(binascii.b2a_base64(sniff)):
        encoded = binascii.b2a_base64(body, newline=False)
        return b"base64", b"".join(encoded[i:i + 76] + CRLF for i in range(0, len(encoded), 76))
    return b"quoted-printable", binascii.b2a_qp(body).replace(b"\n", CRLF)


def _boundary(*bodies: bytes) -> bytes:
    """Draw a multipart boundary as the email package does, again while a part holds it."""
    while True:
        boundary = b"=" * 15 + b"%0*d" % (_BOUNDARY_WIDTH, random.randrange(sys.maxsize)) + b"=="
        if not any(boundary in body for body in bodies):
            return boundary

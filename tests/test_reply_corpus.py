"""Real reply mails (tests/reply_corpus): what the reply parsers' own tests say is the customer's reply is what
strip_quoted keeps, and no quoted history lends a reply a rating."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tracker.answers.reply_parse.parse import is_auto_reply, parse_reply
from tracker.answers.reply_parse.text import html_to_text, strip_quoted
from webhooks.inbound_mail import _mime_parts

CORPUS = Path(__file__).parent / "reply_corpus"

# crisp-oss/email-reply-parser's test.js: the reply above each of these mails' history is this paragraph.
COMMON_FIRST_FRAGMENT = (
    "Fusce bibendum, quam hendrerit sagittis tempor, dui turpis tempus erat, pharetra sodales ante sem sit amet "
    "metus.\n"
    "Nulla malesuada, orci non vulputate lobortis, massa felis pharetra ex, convallis consectetur ex libero eget "
    "ante.\n"
    "Nam vel turpis posuere, rhoncus ligula in, venenatis orci. Duis interdum venenatis ex a rutrum.\n"
    "Duis ut libero eu lectus consequat consequat ut vel lorem. Vestibulum convallis lectus urna,\n"
    "et mollis ligula rutrum quis. Fusce sed odio id arcu varius aliquet nec nec nibh.")
COMMON = [
    "email_7", "email_8", "email_9", "email_10", "email_11", "email_12", "email_13", "email_14", "email_15",
    "email_16", "email_17", "email_18", "email_22", "email_23", "email_24", "email_25", "email_26",
    "email_portuguese", "email_german", "email_german_2", "email_german_3", "email_german_outlook",
    "email_norwegian_gmail", "email_finnish", "email_italian", "email_russian", "email_outlook_split_line_from",
    "email_gmail_split_line_from", "email_ios_outlook_fr", "email_ios_outlook", "email_msn", "email_fr_multiline",
    "email_french_2", "email_en_multiline_2", "email_original_message", "email_original_message_2",
    "email_danish_dash_separator", "email_french_dash_separator", "email_tricky_5_mixed_languages",
    "email_tricky_10_special_chars_in_name", "email_tricky_12_no_space_after_header",
    "email_tricky_14_long_quote_header", "email_tricky_15_original_message_variations",
]

# The whole visible reply, as the projects' tests give it (blank lines between paragraphs counted once).
EXACT = {
    "crisp/email_1": "Hi folks\n\nWhat is the best way to clear a Riak bucket of all key, values after\n"
                     "running a test?\nI am currently using the Java HTTP API.\n\n-Abhishek Kona",
    "crisp/email_sent_from": "Hi it can happen to any texts you type, as long as you type in between words or "
                             "paragraphs.",
    "crisp/email_zoho": "What is the best way to clear a Riak bucket of all key, values after\nrunning a test?",
    "crisp/email_with_regards": "Hi,\n\nI still have the same problem....\n\nCan you help?",
    "github/correct_sig": "this is an email with a correct -- signature.",
    "github/email_2_1": "Outlook with a reply",
    "github/email_2_2": "Outlook with a reply directly above line",
    "github/email_2_3": "Outlook with a reply directly above line",
    "github/email_iPhone": "Here is another email",
    "github/email_BlackBerry": "Here is another email",
    "github/email_multi_word_sent_from_my_mobile_device": "Here is another email",
    "github/email_sent_from_my_not_signature": "Here is another email\n\nSent from my desk, is much easier then my "
                                               "mobile phone.",
    "github/email_bullets": "test 2 this should list second\n\nand have spaces\n\nand retain this formatting\n\n"
                            "   - how about bullets\n   - and another",
}

# Mails that are one fragment in the projects' tests: nothing in them is history or a signature.
WHOLE = ["crisp/email_tricky_1_on_false_positive", "crisp/email_tricky_13_timestamp_variations",
         "crisp/email_not_a_signature", "crisp/email_not_a_signature_2", "crisp/email_5", "github/email_1_5",
         "github/email_sig_delimiter_in_middle_of_line"]

# What the reply keeps and what it must not (the history under it), by the projects' assertions.
KEEPS = {
    "crisp/email_3": (r"^Oh thanks\.\n\nHaving", r"Thanks for the quick reply|riak-users"),
    "crisp/email_4": (r"^Awesome", r"^On|Loader"),
    "crisp/email_6": (r"^I get", r"Was this"),
    "crisp/email_one_is_not_on": (r"One outstanding question", r"On Oct 1, 2012"),
    "crisp/email_reply_header": (r"^On the other hand", r"On Wed, Dec 9"),
    "crisp/email_tricky_2_url_with_wrote": (r"Check out this article[\s\S]*https://example\.com", None),
    "crisp/email_tricky_3_code_block": (r"function sendEmail", None),
    "crisp/email_tricky_6_regards_in_sentence": (r"with regards to the payment", None),
    "crisp/email_tricky_7_multiple_dashes": (r"Key Points[\s\S]*just separators in my content", None),
    "crisp/email_tricky_8_sent_from_in_content": (r"sent from my iPhone app", None),
    "crisp/email_tricky_9_nested_quotes": (r"I agree with the points", r"wrote:"),
    "crisp/email_tricky_11_double_signature": (r"Thanks for your help", None),
    "crisp/email_tricky_16_unicode_signatures": (r"Thanks for the update", None),
    "crisp/email_tricky_17_forward_header": (r"See the forwarded message", None),
    "crisp/email_tricky_19_quote_without_header": (r"I wanted to respond", None),
    "crisp/email_tricky_20_html_entities": (r"&gt; 100 and &lt; 200", None),
    "github/email_1_2": (r"^Hi,\n\nYou can list", r"What is the best way|^On "),
    "github/email_1_3": (r"^Oh thanks\.\n\nHaving", r"On Tue"),
    "github/email_1_6": (r"^I get", r"Was this"),
    "github/email_1_7": (r":\+1:", r"Steps 0-2"),
    "github/greedy_on": (r"^On your remote host", r"On 9 Jan 2014"),
}


def mail(name: str) -> str:
    return (CORPUS / f"{name}.txt").read_text(encoding="utf-8")


def paragraphs(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")))


def test_the_corpus_is_all_there():
    assert len(list((CORPUS / "crisp").glob("*.txt"))) == 90
    assert len(list((CORPUS / "github").glob("*.txt"))) == 21
    assert all(mail(f"crisp/{name}").lstrip().startswith(COMMON_FIRST_FRAGMENT[:40]) for name in COMMON)


@pytest.mark.parametrize("name", COMMON)
def test_the_reply_above_a_quoted_mail_is_kept_and_its_history_dropped(name):
    assert paragraphs(strip_quoted(mail(f"crisp/{name}"))) == COMMON_FIRST_FRAGMENT


@pytest.mark.parametrize("name", sorted(EXACT))
def test_the_visible_reply_is_what_the_corpus_says(name):
    assert paragraphs(strip_quoted(mail(name))) == EXACT[name]


@pytest.mark.parametrize("name", WHOLE)
def test_a_mail_without_history_is_kept_whole(name):
    assert paragraphs(strip_quoted(mail(name))) == paragraphs(mail(name)).strip()


@pytest.mark.parametrize("name", sorted(KEEPS))
def test_the_reply_keeps_its_own_words_and_not_the_history(name):
    kept, (wanted, unwanted) = paragraphs(strip_quoted(mail(name))), KEEPS[name]
    assert re.search(wanted, kept, re.M), kept
    assert unwanted is None or not re.search(unwanted, kept, re.M), kept


LANGS = {"email_german": "de", "email_german_2": "de", "email_german_3": "de", "email_german_outlook": "de",
         "email_norwegian_gmail": "nb", "email_10": "fr", "email_11": "fr", "email_9": "fr", "email_fr_multiline": "fr",
         "email_french_2": "fr", "email_ios_outlook_fr": "fr", "email_french_dash_separator": "fr",
         "email_danish_dash_separator": "da", "email_8": "nl"}


@pytest.mark.parametrize("name", COMMON)
def test_a_rating_given_above_any_clients_history_is_read_and_the_history_lends_none(name):
    """The customer's reply put where the corpus mail's reply is: its dates, times and numbers stay in the history."""
    lang = LANGS.get(name, "en")
    text = mail(f"crisp/{name}").replace(COMMON_FIRST_FRAGMENT, "2\n\nNobody called me back.")
    assert parse_reply(text, None, "csat5", lang) == parse_reply("2\n\nNobody called me back.", None, "csat5", lang)
    assert parse_reply(text, None, "csat5", lang).rating == 2
    silent = mail(f"crisp/{name}").replace(COMMON_FIRST_FRAGMENT, "Can you call me back?")
    assert parse_reply(silent, None, "csat5", lang).outcome == "no_rating"
    assert parse_reply(silent, None, "nps", lang).outcome == "no_rating"


def test_a_pathological_mail_is_read():
    assert strip_quoted(mail("github/pathological")).startswith("I think you're onto something.")


def test_an_answer_written_between_quoted_lines_is_kept():
    text = ("> How satisfied are you with how we handled your request?\n4\n> Anything else?\n"
            "Ola was quick and kind.\n> Thanks, Acme Support")
    assert parse_reply(text, None, "csat5", "en").rating == 4
    assert strip_quoted(text) == "4\nOla was quick and kind."


TALON_MAILS = sorted(path.name for path in (CORPUS / "talon").glob("*.eml"))
TALON_HTML = sorted(path.name for path in (CORPUS / "talon").glob("*.html"))


@pytest.mark.parametrize("name", TALON_MAILS)
def test_a_whole_mail_from_each_client_is_read_as_its_reply_and_a_person(name):
    """Read as SendGrid's raw mode reads a mail: the reply is "Hello" (talon's test; its signature dropped too)."""
    text, html, headers, subject = _mime_parts((CORPUS / "talon" / name).read_text(encoding="utf-8"))
    assert strip_quoted(text) == "Hello"
    assert parse_reply(text, html, "csat5", "en").outcome == "no_rating"
    assert parse_reply(text.replace("Hello", "Hello, 4 of 5", 1), html, "csat5", "en").rating == 4
    assert not is_auto_reply(headers, subject)


@pytest.mark.parametrize("name", TALON_HTML)
def test_an_html_reply_from_each_client_is_read_without_its_history(name):
    html = (CORPUS / "talon" / name).read_text(encoding="utf-8")
    assert " ".join(strip_quoted(html_to_text(html)).split()) == "Hi. I am fine. Thanks, Alex"
    read = parse_reply(None, html, "csat5", "en")
    assert (read.outcome, read.rating) == ("rating", 4)  # "fine", in the English scale words
    assert " ".join(read.comment.split()) == "Hi. I am fine. Thanks, Alex"


# alfonsrv/mail-parser-reply's tests: what its newest reply's body holds (first) and what it leaves to the
# history or the signature (second), for replies in three of the survey languages and in Japanese.
MAIL_PARSER_REPLY = {
    "email_danish_1": (["Hej Peter,", "Tak for din mail."], ["Med venlig hilsen", "Hej Anders,"]),
    "email_danish_2": (["Jeg har modtaget filerne."], ["Hilsen\nSøren", "Her er filerne du bad om."]),
    "email_danish_3": (["Svar."], ["skrev"]),
    "email_danish_4": (["Svar."], ["-----Oprindelig meddelelse-----"]),
    "email_danish_5": (["Svar."], ["Kh\nPeter"]),
    "email_swedish_1": (["Ursäkta mitt sena svar!"], ["Hej Person B,", "Med Vänlig Hälsning,"]),
    "email_swedish_2": (["Hello Anna,", "lets keep in touch"], []),
    "email_sv_anon_1": (["Berättar gärna."], ["Kan inte se att det står något", "Jag har försökt få tag", "Mvh"]),
    "email_nl_1_1": (["Hallo allemaal,", "Ik gebruik momenteel de Java HTTP API."], ["riak-gebruikers"]),
    "email_nl_1_2": (["Outlook met een antwoord"], ["Google Apps Sync Team"]),
    "email_headers_no_delimiter": (["And another reply!"], ["A reply", "This is a message."]),
    "email_ja_1_2": (["お世話になっております。織田です。", "それでは 11:00 にお待ちしております。"],
                     ["かしこまりました", "明日の 11:00 でお願いいたします"]),
    "multi_header": (["No problem. I’ll just start a new order."], ["Hi XYZ,", "pastries"]),
    "outlook": (["Dear Team,", "My number is: +00 0000 000 000"], ["Get Outlook for iOS"]),
    "email_gmail": (["This is a test for inbox replying to a github message."], ["wrote:"]),
    "multiline_on_de": (["Am heutigen Tage"], ["schrieb", "noreply@github.com"]),
}


@pytest.mark.parametrize("name", sorted(MAIL_PARSER_REPLY))
def test_a_reply_in_danish_swedish_dutch_or_japanese_keeps_its_words_and_drops_the_rest(name):
    kept = strip_quoted(mail(f"mail-parser-reply/{name}"))
    wanted, unwanted = MAIL_PARSER_REPLY[name]
    assert all(text in kept for text in wanted), kept
    assert not any(text in kept for text in unwanted), kept


BOUNCES = sorted(path.name for path in (CORPUS / "sisimai").glob("*.eml"))


def test_the_bounce_corpus_is_all_there():
    assert len(BOUNCES) == 79


@pytest.mark.parametrize("name", BOUNCES)
def test_a_bounce_from_any_mail_system_is_an_auto_reply(name):
    """sisimai's bounces, one of each mail system and provider (and a complaint report, an SNS notice, a Japanese
    error notice): read as SendGrid's raw mode reads a mail, none is taken for a person's reply."""
    raw = (CORPUS / "sisimai" / name).read_bytes().decode("utf-8", "replace")
    _text, _html, headers, subject = _mime_parts(raw)
    assert is_auto_reply(headers, subject)

"""Reading emailed replies: real-looking mails from Gmail, Outlook and Apple Mail in eight languages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tracker.answers.reply_parse.parse import COMMENT_MAX, html_to_text, is_auto_reply, parse_reply
from tracker.scales import SCALES

# The survey mail as clients quote it: every rating value appears in it, so any quote left in would
# make the reply ambiguous.
QUOTED = """> Hi Kari,
>
> How satisfied are you with how we handled "Card declined"?
>
> 1 - Very dissatisfied: http://127.0.0.1:8000/s/abc?rating=1
> 2 - Dissatisfied: http://127.0.0.1:8000/s/abc?rating=2
> 3 - Neutral: http://127.0.0.1:8000/s/abc?rating=3
> 4 - Satisfied: http://127.0.0.1:8000/s/abc?rating=4
> 5 - Very satisfied: http://127.0.0.1:8000/s/abc?rating=5"""
UNQUOTED = QUOTED.replace("> ", "").replace(">", "")


def outlook(sender: str, sent: str, to: str, subject: str) -> str:
    return (f"\n\n________________________________\n{sender} Acme Support <support@acme.test>\n"
            f"{sent} Monday, November 23, 2026 10:02\n{to} Kari Nordmann <kari@example.no>\n"
            f'{subject} How did we do with "Card declined"?\n\n{UNQUOTED}')


GMAIL_QUOTE_HTML = ('<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, Nov 23, 2026 at 10:02 AM '
                    'Acme Support &lt;support@acme.test&gt; wrote:<br></div><blockquote class="gmail_quote">'
                    '1 2 3 4 5</blockquote></div>')

# (text, html, scale, language, outcome, rating, comment) — comment None means "not checked".
REPLIES: list[tuple[str | None, str | None, str, str, str, int | None, str | None]] = [
    # Plain numbers, with Gmail's quoted history in several languages.
    ("4\n\nThanks for sorting it out so quickly.\n\nOn Mon, Nov 23, 2026 at 10:02 AM Acme Support "
     "<support@acme.test> wrote:\n\n" + QUOTED, None, "csat5", "en", "rating", 4,
     "Thanks for sorting it out so quickly."),
    ("5\n\nman. 23. nov. 2026 kl. 10:02 skrev Acme Support <support@acme.test>:\n\n" + QUOTED,
     None, "csat5", "nb", "rating", 5, ""),
    ("5/5 – Ola var kjempeflink!\n\nDen mån 23 nov. 2026 kl 10:02 skrev Acme Support <support@acme.test>:\n\n"
     + QUOTED, None, "csat5", "sv", "rating", 5, "Ola var kjempeflink!"),
    ("Jeg gir dere 4 av 5.\n\nDen man. 23. nov. 2026 kl. 10.02 skrev Acme Support <support@acme.test>:\n\n"
     + QUOTED, None, "csat5", "da", "rating", 4, "Jeg gir dere 4 av 5."),
    ("3 von 5, es hat zu lange gedauert.\n\nAm Mo., 23. Nov. 2026 um 10:02 Uhr schrieb Acme Support <\n"
     "support@acme.test>:\n\n" + QUOTED, None, "csat5", "de", "rating", 3, "es hat zu lange gedauert."),
    ("4 sur 5\n\nLe lun. 23 nov. 2026 à 10:02, Acme Support <support@acme.test> a écrit :\n\n" + QUOTED,
     None, "csat5", "fr", "rating", 4, ""),
    ("5 de 5, muchas gracias\n\nEl lun, 23 nov 2026 a las 10:02, Acme Support (<support@acme.test>) escribió:\n\n"
     + QUOTED, None, "csat5", "es", "rating", 5, "muchas gracias"),
    ("2\nHet duurde veel te lang.\n\nOp ma 23 nov. 2026 om 10:02 schreef Acme Support <support@acme.test>:\n\n"
     + QUOTED, None, "csat5", "nl", "rating", 2, "Het duurde veel te lang."),
    ("10!\n\nOn Mon, Nov 23, 2026 at 10:02 AM Acme Support <support@acme.test> wrote:\n" + QUOTED,
     None, "nps", "en", "rating", 10, ""),
    ("Thanks, 5/5", None, "csat5", "en", "rating", 5, "Thanks"),
    ("8/10", None, "csat5", "en", "rating", 4, ""),
    ("5 stars, thank you!", None, "csat5", "en", "rating", 5, "thank you!"),
    # Outlook: unmarked quotes after a From/Sent block, in the customer's language.
    ("Very good, Ola was great." + outlook("From:", "Sent:", "To:", "Subject:"), None, "csat5", "en", "rating",
     5, "Very good, Ola was great."),
    ("Bra" + outlook("Fra:", "Sendt:", "Til:", "Emne:"), None, "csat5", "nb", "rating", 4, ""),
    ("Nicht gut. Niemand hat zurückgerufen." + outlook("Von:", "Gesendet:", "An:", "Betreff:"), None, "csat5",
     "de", "rating", 2, "Nicht gut. Niemand hat zurückgerufen."),
    ("Très bien, merci" + outlook("De :", "Envoyé :", "À :", "Objet :"), None, "csat5", "fr", "rating", 5,
     "Très bien, merci"),
    ("Muy mal, nadie respondió" + outlook("De:", "Enviado:", "Para:", "Asunto:"), None, "csat5", "es", "rating",
     1, None),
    ("Goed geholpen" + outlook("Van:", "Verzonden:", "Aan:", "Onderwerp:"), None, "csat5", "nl", "rating", 4, None),
    ("Mycket nöjd!" + outlook("Från:", "Skickat:", "Till:", "Ämne:"), None, "csat5", "sv", "rating", 5, ""),
    ("1\n\n-----Original Message-----\nFrom: Acme Support\nSent: 23 November 2026 10:02\n\n" + UNQUOTED,
     None, "csat5", "en", "rating", 1, ""),
    # Apple Mail and phones: "Sent from my iPhone" and the quoted header marked with ">".
    ("4\n\nSent from my iPhone\n\n> On 23 Nov 2026, at 10:02, Acme Support <support@acme.test> wrote:\n>\n"
     + QUOTED, None, "csat5", "en", "rating", 4, ""),
    ("Sehr gut\n\nVon meinem iPhone gesendet\n\n> Am 23.11.2026 um 10:02 schrieb Acme Support "
     "<support@acme.test>:\n" + QUOTED, None, "csat5", "de", "rating", 5, ""),
    ("Kjempebra!\n\nSendt fra min iPhone\n\n23. nov. 2026 kl. 10:02 skrev Acme Support <support@acme.test>:\n\n"
     + UNQUOTED, None, "csat5", "nb", "rating", 5, ""),
    # Bottom-posting: the answer comes after the quote.
    ("On 23/11/2026 10:02, Acme Support wrote:\n" + QUOTED + "\n\n3, it was fine I guess", None, "csat5", "en",
     "rating", 3, "it was fine I guess"),
    # Signatures never count, even with numbers in them.
    ("9\n\n-- \nKari Nordmann\nTel +47 912 34 567\n4 Storgata, Oslo", None, "nps", "en", "rating", 9, ""),
    ("Bra jobba\n\nMed vennlig hilsen\nKari Nordmann\nMobil 4 12 34 56", None, "csat5", "nb", "rating", 4,
     "Bra jobba"),
    ("Ok\n\nMvh Kari", None, "csat5", "nb", "rating", 3, ""),
    # HTML-only mails.
    (None, '<div dir="ltr">Veldig bra service <img alt="👍" src="cid:x"></div><br>' + GMAIL_QUOTE_HTML,
     "csat5", "nb", "rating", 5, "Veldig bra service 👍"),
    (None, '<html><head><style>p{color:red}</style></head><body><p class="MsoNormal">Tr&egrave;s bien</p>'
     '<div id="divRplyFwdMsg"><b>De :</b> Acme Support<br>1 2 3 4 5</div></body></html>', "csat5", "fr",
     "rating", 5, ""),
    (None, '<div>2</div><div>Hat nicht geholfen.</div><div><br><blockquote type="cite">Am 23.11.2026 um 10:02 '
     'schrieb Acme Support:<br>1 2 3 4 5</blockquote></div>', "csat5", "de", "rating", 2, "Hat nicht geholfen."),
    ("", "<p>Excellent &amp; fast</p>", "csat5", "en", "rating", 5, None),
    # Emoji and stars.
    ("👍", None, "thumbs", "en", "rating", 1, ""),
    ("👎🏽 nobody called back", None, "thumbs", "en", "rating", 0, "nobody called back"),
    ("😀😀", None, "csat5", "en", "rating", 5, None),
    ("😐", None, "csat3", "en", "rating", 2, ""),
    ("😡 no one answered for a week", None, "csat5", "en", "rating", 1, "no one answered for a week"),
    ("⭐⭐⭐⭐⭐", None, "csat5", "en", "rating", 5, ""),
    ("★★★☆☆ ok", None, "csat5", "en", "rating", 3, "ok"),
    ("Takk! :)", None, "csat5", "nb", "rating", 4, "Takk!"),
    # Scale words, whole words only, case and accents aside.
    ("Great, thanks!", None, "csat5", "en", "rating", 5, "Great, thanks!"),
    ("DÅRLIG", None, "csat5", "nb", "rating", 2, ""),
    ("darlig", None, "csat5", "nb", "rating", 2, ""),
    ("Elendig service", None, "csat5", "nb", "rating", 1, None),
    ("Helt greit", None, "csat3", "nb", "rating", 2, ""),
    ("Gut", None, "csat5", "de", "rating", 4, ""),
    ("bra", None, "thumbs", "sv", "rating", 1, ""),
    ("Ganske vanskelig å finne fram", None, "ces7", "nb", "rating", 3, None),
    ("Very easy, thanks", None, "ces7", "en", "rating", 7, None),
    ("Nei", None, "thumbs", "nb", "rating", 0, ""),
    ("Yes, thank you", None, "thumbs", "en", "rating", 1, None),
    ("Brainstorming is fun", None, "csat5", "sv", "no_rating", None, "Brainstorming is fun"),
    # Negations.
    ("not good", None, "csat5", "en", "rating", 2, None),
    ("Ikke bra i det hele tatt", None, "csat5", "nb", "rating", 2, "Ikke bra i det hele tatt"),
    ("inte bra", None, "thumbs", "sv", "rating", 0, None),
    ("pas bien du tout", None, "csat5", "fr", "rating", 2, None),
    ("no muy bien", None, "csat5", "es", "rating", 2, None),
    ("niet goed", None, "csat5", "nl", "rating", 2, None),
    ("Not bad at all", None, "csat5", "en", "rating", 4, None),
    ("Ikke dårlig", None, "csat5", "nb", "rating", 4, None),
    ("C'est pas terrible", None, "csat5", "fr", "rating", 2, None),
    # Ambiguous: two different numbers, or both ways in the sentence that rates.
    ("3 or 4", None, "csat5", "en", "ambiguous", None, "3 or 4"),
    ("Somewhere between 7 and 8", None, "nps", "en", "ambiguous", None, None),
    ("Good product, bad support", None, "csat5", "en", "ambiguous", None, "Good product, bad support"),
    ("👍 👎", None, "thumbs", "en", "ambiguous", None, None),
    # No rating: questions, durations, dates and amounts are not answers.
    ("Can you call me back tomorrow?", None, "csat5", "en", "no_rating", None, "Can you call me back tomorrow?"),
    ("It took 3 days and cost 2 kr.", None, "csat5", "en", "no_rating", None, None),
    ("Ring meg 5. desember kl. 10:30", None, "csat5", "nb", "no_rating", None, None),
    ("Order #1001, T-4 and 1-5", None, "csat5", "en", "no_rating", None, None),
    ("Good morning, a question about my invoice", None, "csat5", "en", "no_rating", None, None),
    ("Great!", None, "nps", "en", "no_rating", None, "Great!"),
    ("", None, "csat5", "en", "no_rating", None, ""),
    (None, None, "csat5", "en", "no_rating", None, ""),
]


@pytest.mark.parametrize(("text", "html", "scale", "lang", "outcome", "rating", "comment"), REPLIES)
def test_a_reply_is_read_for_its_rating_and_comment(text, html, scale, lang, outcome, rating, comment):
    parsed = parse_reply(text, html, scale, lang)
    assert (parsed.outcome, parsed.rating) == (outcome, rating), parsed
    if comment is not None:
        assert parsed.comment == comment


def test_the_table_covers_every_language_and_at_least_forty_replies():
    assert len(REPLIES) >= 40
    assert {row[3] for row in REPLIES} == {"en", "nb", "sv", "da", "de", "fr", "es", "nl"}


def test_a_long_comment_is_cut_to_two_thousand_characters():
    parsed = parse_reply("5\n" + "x" * 3000, None, "csat5", "en")
    assert parsed.rating == 5 and parsed.comment == "x" * COMMENT_MAX


def test_html_to_text_keeps_paragraphs_and_drops_scripts_and_quotes():
    text = html_to_text("<p>One</p><p>Two<br>Three</p><script>alert(1)</script>" + GMAIL_QUOTE_HTML)
    assert text.split() == ["One", "Two", "Three"]


AUTO = [
    ({"Auto-Submitted": "auto-replied"}, "Re: How did we do?", True),
    ({"Auto-Submitted": "auto-generated; vacation"}, "Re: How did we do?", True),
    ({"Auto-Submitted": "no"}, "Re: How did we do?", False),
    ({"X-Autoreply": "yes"}, "Re: How did we do?", True),
    ({"X-Autorespond": "Vacation"}, "Re: How did we do?", True),
    ({"Precedence": "bulk"}, "Re: How did we do?", True),
    ({"Precedence": "auto_reply"}, "Re: How did we do?", True),
    ({"Precedence": "junk"}, "Re: How did we do?", True),
    ({"X-Auto-Response-Suppress": "All"}, "Re: How did we do?", False),
    ({"Return-Path": "<>"}, "Undelivered Mail Returned to Sender", True),
    ({"From": "Mail Delivery System <MAILER-DAEMON@mx.example.no>"}, "Returned mail", True),
    ({}, "Out of Office: How did we do?", True),
    ({}, "Automatic reply: How did we do?", True),
    ({}, "Automatisk svar: Hvordan gikk det?", True),
    ({}, "Fravær", True),
    ({}, "Abwesenheitsnotiz: Wie war es?", True),
    ({}, "Autosvar: Hur gick det?", True),
    ({}, "Réponse automatique : Comment était-ce ?", True),
    ({}, "Respuesta automática: ¿Qué tal?", True),
    ({}, "Automatisch antwoord: Hoe was het?", True),
    ({}, "Re: How did we do with \"Card declined\"?", False),
    ({}, "SV: Hvordan gikk det med «Kort avvist»?", False),
]


@pytest.mark.parametrize(("headers", "subject", "expected"), AUTO)
def test_auto_replies_are_told_apart_from_people(headers, subject, expected):
    assert is_auto_reply(headers, subject) is expected


FRAGMENTS = st.sampled_from([
    "4", "5/5", "10!", "av", "👍", "😞", "⭐", "★☆", ":)", "not", "ikke", "bra", "good", "bad", "> ", "\n", "-- \n",
    "On Mon, Nov 23, 2026 at 10:02 AM Acme <a@b.c> wrote:\n", "From: x\nSent: y\n", "<p>", "</p>", "<blockquote>",
    "&amp;", "&#x1F600;", "\u200b", "\ufe0f", "ß", "Å", "é", "\r\n", " ", "Mvh", "Sent from my iPhone", "3 days",
])


@hypothesis_settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.none(), st.text(), st.lists(FRAGMENTS, max_size=30).map("".join)),
       html=st.one_of(st.none(), st.text(), st.lists(FRAGMENTS, max_size=30).map("".join)),
       scale=st.sampled_from(sorted(SCALES)), lang=st.sampled_from(["en", "nb", "sv", "da", "de", "fr", "es", "nl",
                                                                      "xx"]))
def test_no_reply_text_makes_the_parser_fail_or_invent_a_rating(text, html, scale, lang):
    parsed = parse_reply(text, html, scale, lang)
    assert parsed.outcome in ("rating", "ambiguous", "no_rating")
    assert (parsed.rating is not None) == (parsed.outcome == "rating")
    assert parsed.rating is None or parsed.rating in SCALES[scale].values
    assert len(parsed.comment) <= COMMENT_MAX


@hypothesis_settings(max_examples=200, deadline=None)
@given(headers=st.dictionaries(st.text(max_size=20), st.text(max_size=50), max_size=5), subject=st.text())
def test_no_header_or_subject_makes_the_auto_reply_check_fail(headers, subject):
    assert is_auto_reply(headers, subject) in (True, False)

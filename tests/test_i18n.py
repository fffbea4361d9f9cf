"""Localized strings: locale mapping, complete catalogues, labels for every rating value."""

from __future__ import annotations

import string
from datetime import date

import pytest
from babel.messages.pofile import read_po

from tracker.i18n.catalogue import (
    CATALOGUES,
    LOCALE_DIR,
    SUPPORTED,
    format_date,
    normalise_locale,
    scale_labels,
    text,
)
from tracker.scales import SCALES


@pytest.mark.parametrize(("raw", "expected"), [
    ("nb-NO", "nb"), ("no", "nb"), ("nb", "nb"), ("nn", "nb"), ("nn-NO", "nb"), ("Norsk", "nb"),
    ("Norwegian", "nb"), ("Norsk (bokmål)", "nb"), ("nb_NO.UTF-8", "nb"), ("NB-no", "nb"), ("nob", "nb"),
    ("en", "en"), ("en-GB", "en"), ("en_US", "en"), ("English", "en"),
    ("sv-SE", "sv"), ("Svenska", "sv"), ("da-DK", "da"), ("Dansk", "da"),
    ("de-DE", "de"), ("de-AT", "de"), ("Deutsch", "de"), ("fr-CA", "fr"), ("Français", "fr"),
    ("es-419", "es"), ("es-MX", "es"), ("Español", "es"), ("nl-BE", "nl"), ("Nederlands", "nl"),
    ("pt-BR", "en"), ("ja", "en"), ("klingon", "en"), ("", "en"), (None, "en"), ("  ", "en"),
    ("pt-BR,nb;q=0.8,en;q=0.5", "nb"), ("sv-SE;q=0.9", "sv"),
])
def test_customer_locales_map_to_a_supported_language(raw: str | None, expected: str) -> None:
    assert normalise_locale(raw) == expected


def test_every_supported_language_has_a_catalogue() -> None:
    assert set(CATALOGUES) == set(SUPPORTED)


@pytest.mark.parametrize("lang", SUPPORTED)
def test_each_gettext_catalogue_names_its_language_and_shows_translators_the_english_text(lang: str) -> None:
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle)
    assert str(catalog.locale) == lang
    entries = [message for message in catalog if message.id]
    # msgctxt is the key the code asks for; msgid, the source text a translator sees, is the English text.
    assert {message.context: message.id for message in entries} == CATALOGUES["en"]
    for message in entries:
        assert ("python-brace-format" in message.flags) == ("{" in message.id), message.context


@pytest.mark.parametrize("lang", SUPPORTED)
def test_every_language_has_every_key_the_english_catalogue_has(lang: str) -> None:
    missing = set(CATALOGUES["en"]) - set(CATALOGUES[lang])
    extra = set(CATALOGUES[lang]) - set(CATALOGUES["en"])
    assert not missing and not extra, (missing, extra)


@pytest.mark.parametrize("lang", SUPPORTED)
def test_translations_use_the_same_placeholders_as_english(lang: str) -> None:
    def fields(template: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name}

    for key, english in CATALOGUES["en"].items():
        assert fields(CATALOGUES[lang][key]) == fields(english), key


@pytest.mark.parametrize("lang", [lang for lang in SUPPORTED if lang != "en"])
def test_other_languages_are_really_translated(lang: str) -> None:
    same = [key for key in CATALOGUES["en"]
            if CATALOGUES[lang][key] == CATALOGUES["en"][key] and key != "date.format"]
    # Short words such as "Neutral" or "Send" may coincide; whole sentences must not.
    assert all(len(CATALOGUES["en"][key]) < 20 for key in same), same


@pytest.mark.parametrize("lang", SUPPORTED)
@pytest.mark.parametrize("scale_name", SCALES)
def test_every_scale_has_a_label_for_every_value_in_every_language(lang: str, scale_name: str) -> None:
    labels = scale_labels(lang, scale_name)
    assert [value for value, _ in labels] == list(SCALES[scale_name].values)
    assert all(label.strip() for _, label in labels)
    words = [label for value, label in labels if label != str(value)]
    assert len(set(words)) == len(words), "two values share a label"


def test_nps_names_only_its_ends_and_numbers_the_rest() -> None:
    labels = dict(scale_labels("nb", "nps"))
    assert labels[0] == "Svært lite sannsynlig"
    assert labels[10] == "Svært sannsynlig"
    assert labels[5] == "5"


def test_text_fills_in_parameters() -> None:
    assert text("en", "mail.subject", subject="Card declined") == "How did we do with “Card declined”?"
    assert text("nb", "mail.footer", ref="#1001").endswith("om sak #1001.")


def test_a_key_missing_in_a_language_falls_back_to_english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(CATALOGUES["nb"], "page.submit")
    assert text("nb", "page.submit") == "Send"
    assert text("nb", "page.thanks_title") == "Tusen takk!"


def test_an_unsupported_language_gets_english() -> None:
    assert text("pt", "page.thanks_title") == "Thank you!"


def test_a_raw_customer_locale_is_understood_too() -> None:
    assert text("nb-NO", "page.thanks_title") == "Tusen takk!"
    assert scale_labels("sv_SE", "thumbs") == [(0, "Inte bra"), (1, "Bra")]


def test_an_unknown_key_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        text("nb", "no.such.key")


@pytest.mark.parametrize(("lang", "expected"), [
    ("en", "6 December 2026"), ("nb", "6. desember 2026"), ("sv", "6 december 2026"),
    ("da", "6. december 2026"), ("de", "6. Dezember 2026"), ("fr", "6 décembre 2026"),
    ("es", "6 de diciembre de 2026"), ("nl", "6 december 2026"),
])
def test_dates_are_written_the_way_each_language_writes_them(lang: str, expected: str) -> None:
    assert format_date(lang, date(2026, 12, 6)) == expected


def test_french_writes_the_first_of_the_month_as_an_ordinal() -> None:
    assert format_date("fr", date(2027, 1, 1)) == "1er janvier 2027"

"""The rating buttons, drawn the same in the survey mail and on the survey page."""

from __future__ import annotations

from dataclasses import dataclass

from tracker.i18n.catalogue import scale_labels

# csat3 and thumbs read best as faces; numeric scales show their numbers.
FACES = {"csat3": {1: "🙁", 2: "😐", 3: "🙂"}, "thumbs": {0: "👎", 1: "👍"}}
# Scales with many values label only their ends under the row; the rest caption every button.
ENDS_ONLY = ("nps", "ces7")


@dataclass(frozen=True)
class Button:
    """One rating: face is the big text, caption the small one under it, name what a screen reader says."""

    value: int
    label: str
    face: str
    caption: str
    name: str
    url: str = ""

    @property
    def text_label(self) -> str:
        """Return name under the attribute operators' own mail templates have used."""
        return self.name


def rating_buttons(lang: str, scale_name: str, url: str = "", labels: tuple[str, ...] = ()) -> list[Button]:
    """Return a scale's buttons in lang; url, when given, links each one with `{value}` as the rating.

    labels, one per value low to high (a surveys file's), replace the scale's own words.
    """
    faces = FACES.get(scale_name, {})
    buttons = []
    own = scale_labels(lang, scale_name)
    if len(labels) == len(own):
        own = [(value, label) for (value, _), label in zip(own, labels, strict=True)]
    for value, label in own:
        named = label if value in faces else (f"{value} – {label}" if label != str(value) else str(value))
        caption = "" if scale_name in ENDS_ONLY or label == str(value) else label
        buttons.append(Button(value, label, faces.get(value, str(value)), caption, named,
                              url.format(value=value) if url else ""))
    return buttons


def end_labels(scale_name: str, buttons: list[Button]) -> tuple[str, str] | None:
    """Return the labels under the row's two ends, for scales that caption only those."""
    return (buttons[0].label, buttons[-1].label) if scale_name in ENDS_ONLY and buttons else None

"""A brand's look in the survey mail and on the pages: its colour's tints and the text that reads on them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

# The product's own look, as the packaged mail has always drawn its rating buttons.
DEFAULT_BUTTON_BG = "#eef2ff"
DEFAULT_BUTTON_BORDER = "#c7d2fe"
DEFAULT_BUTTON_INK = "#1e3a8a"
DARK_INK = "#111827"


@dataclass(frozen=True)
class Branding:
    """What a survey mail says and shows beyond the product's own text: None and () leave the product's."""

    question: str | None = None
    labels: tuple[str, ...] = ()  # one per rating value, low to high
    colour: str | None = None  # "#rrggbb"
    logo_url: str | None = None  # absolute
    logo_alt: str = ""


@dataclass(frozen=True)
class Palette:
    """The colours drawn from a brand colour: the accent, a light tint behind choices, and readable ink."""

    accent: str
    tint: str  # 12 % of the accent on white
    on_accent: str  # text on the accent: white or near-black, whichever reads better
    ink: str  # the accent itself when it reads on white, else near-black


def _channels(colour: str) -> tuple[int, int, int]:
    value = int(colour.lstrip("#"), 16)
    return value >> 16 & 255, value >> 8 & 255, value & 255


def _luminance(colour: str) -> float:
    """Return the WCAG relative luminance of a #rrggbb colour."""
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(c) for c in _channels(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """Return the WCAG contrast ratio of two colours (1 to 21)."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@lru_cache(maxsize=64)
def palette(colour: str) -> Palette:
    """Draw the palette of a #rrggbb brand colour."""
    colour = colour.lower()
    tint = "#" + "".join(f"{round(255 - (255 - c) * 0.12):02x}" for c in _channels(colour))
    on_accent = "#ffffff" if contrast(colour, "#ffffff") >= contrast(colour, DARK_INK) else DARK_INK
    ink = colour if contrast(colour, tint) >= 4.5 else DARK_INK
    return Palette(colour, tint, on_accent, ink)


def button_colours(colour: str | None) -> dict[str, str]:
    """Return the mail's rating-button colours (bg, border, ink) for a brand colour, or the product's own."""
    if not colour:
        return {"bg": DEFAULT_BUTTON_BG, "border": DEFAULT_BUTTON_BORDER, "ink": DEFAULT_BUTTON_INK}
    drawn = palette(colour)
    return {"bg": drawn.tint, "border": drawn.accent, "ink": drawn.ink}


def page_stylesheet(colour: str) -> str:
    """Write the pages' per-brand stylesheet: the brand colour as the pages' accent custom properties."""
    drawn = palette(colour)
    return (f":root {{ --accent: {drawn.accent}; --accent-bg: {drawn.tint}; --on-accent: {drawn.on_accent}; }}\n"
            "button { color: var(--on-accent); }\n"
            ".brand-logo { display: block; max-width: 60%; height: auto; max-height: 48px; margin: 0 0 1.25rem; }\n")

"""Rating scales: the values each offers, and how an answer maps to 0-100 and to satisfied."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Scale:
    """One survey scale of SPEC.md §5."""

    name: str
    low: int
    high: int
    satisfied_from: int
    nps: bool = False

    @property
    def values(self) -> range:
        return range(self.low, self.high + 1)

    def value(self, rating: int) -> Fraction:
        """Map a rating to 0-100 exactly (ces7 steps are sixths)."""
        return Fraction(rating - self.low, self.high - self.low) * 100

    def value6(self, rating: int) -> int:
        """Return 6 x the 0-100 value, an integer on every scale, so sums stay exact."""
        scaled = self.value(rating) * 6
        assert scaled.denominator == 1
        return int(scaled)

    def satisfied(self, rating: int) -> bool:
        return rating >= self.satisfied_from

    def nps_class(self, rating: int) -> str | None:
        """Return promoter / passive / detractor on the NPS scale, else None."""
        if not self.nps:
            return None
        if rating >= 9:
            return "promoter"
        return "passive" if rating >= 7 else "detractor"


SCALES: dict[str, Scale] = {
    "csat5": Scale("csat5", 1, 5, 4),
    "csat3": Scale("csat3", 1, 3, 3),
    "thumbs": Scale("thumbs", 0, 1, 1),
    "nps": Scale("nps", 0, 10, 9, nps=True),
    "ces7": Scale("ces7", 1, 7, 5),
}


def scale_of(name: str | None, default: str) -> Scale:
    """Return a survey's scale by name, the configured default when the survey names none."""
    return SCALES[name or default]

"""A short feeling sentence from the reasons behind an embedded persona's rating."""

from __future__ import annotations

from prefshift_simulator.embedded.model import Prediction, Reasons
from prefshift_simulator.metadata import MovieFacts

#: Below this many stars a reason is too small to mention.
NOTABLE = 0.15


def _verdict(rating: float) -> str:
    if rating >= 4.5:
        return "I loved it"
    if rating >= 4.0:
        return "I really liked it"
    if rating >= 3.0:
        return "It was fine"
    if rating >= 2.0:
        return "It didn't do much for me"
    return "I disliked it"


def _why(reasons: Reasons) -> list[tuple[float, str]]:
    candidates: list[tuple[float, str]] = []
    if reasons.neighbour is not None and abs(reasons.neighbour_effect) >= NOTABLE:
        n = reasons.neighbour
        candidates.append(
            (
                abs(reasons.neighbour_effect),
                f"it reminded me of {n.title}, which I rated {n.rating:g}",
            )
        )
    if reasons.genre is not None and abs(reasons.genre_effect) >= NOTABLE:
        verb = "tend to enjoy" if reasons.genre_effect > 0 else "rarely enjoy"
        candidates.append((abs(reasons.genre_effect), f"I {verb} {reasons.genre.lower()} films"))
    if abs(reasons.quality) >= NOTABLE:
        text = "it is widely admired" if reasons.quality > 0 else "its reputation is weak"
        candidates.append((abs(reasons.quality), text))
    if reasons.shift_genre is not None and abs(reasons.shift) >= NOTABLE:
        genre = reasons.shift_genre.lower()
        if reasons.shift < 0 and reasons.satiation > abs(reasons.shift) / 2:
            text = f"after so much {genre} lately it felt like more of the same"
        elif reasons.shift > 0:
            text = f"all the {genre} I've watched lately has grown on me"
        else:
            text = f"the {genre} I've watched lately has soured me on it"
        candidates.append((abs(reasons.shift), text))
    return sorted(candidates, key=lambda c: -c[0])


def feeling(prediction: Prediction, movie: MovieFacts | None) -> str:
    """E.g. "I really liked it: it reminded me of Heat (1995), which I rated 5, and I tend to
    enjoy crime films."."""
    reasons = _why(prediction.reasons)
    verdict = _verdict(prediction.rating)
    if not reasons:
        name = movie.title if movie is not None else "it"
        return f"{verdict}; nothing about {name} stood out either way."
    clauses = [text for _, text in reasons[:2]]
    return f"{verdict}: {' and '.join(clauses)}."

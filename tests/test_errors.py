"""One-line error helpers: near-name hints and bounded name lists."""

from __future__ import annotations

from fedhex_hpc.errors import listing, suggest


def test_suggest_names_the_nearest_choices_or_nothing() -> None:
    assert suggest("evnts", ["events", "meta"]) == " (did you mean 'events'?)"
    assert suggest("evnt", ["meta", "events", "event"], n=2) == (
        " (did you mean 'event' or 'events'?)"
    )
    assert suggest("abc", ["xyz"]) == ""
    assert suggest("abc", []) == ""


def test_listing_is_bounded() -> None:
    assert listing([]) == "none"
    assert listing(["a", "b"]) == "a, b"
    assert listing(map(str, range(5)), limit=3) == "0, 1, 2, ... (5 in all)"

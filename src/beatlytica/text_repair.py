"""Repairs of Eventsim's text fields: the Python reference of the dbt macros in
dbt/macros/text_repair.sql (tests/unit/test_text_repair.py proves that both agree).

* Mojibake: about 5% of Eventsim's artists and titles are UTF-8 bytes read as Latin-1
  ("elÃ¤mÃ¤ssÃ¤" for "elämässä"). Such a value is read back once; anything that is not
  provably mojibake (ASCII, legitimate Latin-1 like "Björk", text beyond U+00FF) is kept.
* Quotes: Eventsim wraps most user agents in one pair of literal double quotes.
"""

from __future__ import annotations

__all__ = ["repair_mojibake", "unquote"]


def repair_mojibake(text: str | None) -> str | None:
    """``text`` read back as UTF-8 when it is mojibake, else ``text`` unchanged.

    Mojibake means: only code points below 256, at least one of them 0x80 or above, the code
    points taken as bytes are valid UTF-8, and the repair round-trips (its UTF-8 bytes read as
    Latin-1 give ``text`` again).
    """
    if text is None or text.isascii():
        return text
    try:
        repaired = text.encode("latin-1").decode("utf-8")
    except UnicodeError:  # a code point past U+00FF, or bytes that are no valid UTF-8
        return text
    return repaired if repaired.encode("utf-8").decode("latin-1") == text else text


def unquote(text: str | None) -> str | None:
    """``text`` without one pair of literal double quotes around it, when it has them."""
    if text is not None and len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        return text[1:-1]
    return text

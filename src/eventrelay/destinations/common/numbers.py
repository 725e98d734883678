"""Numbers the way vendors want them written."""

from __future__ import annotations

from decimal import Decimal


def count(number: float | None) -> int | None:
    """A count (a quantity) as the integer every vendor documents: 2.0 -> 2, 2.6 -> 3."""
    return None if number is None else round(number)


def decimal_string(number: float) -> str:
    """An amount as a decimal string with a period, no exponent and no float noise
    (Pinterest, LinkedIn, The Trade Desk): 59.98 -> "59.98", 10.0 -> "10", 1e-07 -> "0.0000001"."""
    text = format(Decimal(repr(number)).normalize(), "f")
    return "0" if text in ("-0", "") else text

"""Amounts and counts the way vendors want them written."""

from __future__ import annotations

import pytest

from eventrelay.destinations.common.numbers import count, decimal_string


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (59.98, "59.98"),
        (10.0, "10"),
        (100.0, "100"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e-07, "0.0000001"),
        (1e16, "10000000000000000"),
        (-0.0, "0"),
        (-2.5, "-2.5"),
    ],
)
def test_decimal_string(number: float, expected: str) -> None:
    assert decimal_string(number) == expected


def test_count_is_an_integer() -> None:
    assert count(2.0) == 2 and isinstance(count(2.0), int)
    assert count(2.6) == 3 and isinstance(count(2.6), int)
    assert count(None) is None

"""Every FQL construct against one event: missing paths, nulls, type mismatches, unicode."""

from __future__ import annotations

import pytest

from eventrelay.rules import fql
from eventrelay.rules.errors import ExpressionError
from eventrelay.rules.tree import predicate, to_fql
from tests.rules.events import EVENT

CASES: list[tuple[str, bool]] = [
    # equality and inequality, strings, numbers, booleans, null
    ('type = "track"', True),
    ('type == "track"', True),
    ('type = "identify"', False),
    ('type != "identify"', True),
    ('event = "order completed"', False),  # case-sensitive
    ("properties.total = 120.5", True),
    ("properties.count = 3.0", True),  # 3 and 3.0 are one number
    ('properties.count = "3"', False),  # no coercion between types
    ("properties.str_num = 100", False),
    ('properties.str_num = "100"', True),
    ("properties.flag = true", True),
    ("properties.flag = 1", False),  # true is not 1
    ("properties.zero = false", False),
    ("properties.off = false", True),
    ("properties.off != true", True),
    ("properties.coupon = null", True),
    ("properties.missing = null", True),  # a missing path equals null
    ("properties.coupon != null", False),
    ("properties.missing != null", False),
    ("properties.total != null", True),
    ('properties.missing = "x"', False),
    ('properties.missing != "x"', True),
    # ordering: numbers with numbers, strings with strings, anything else false
    ("properties.total > 100", True),
    ("properties.total >= 120.5", True),
    ("properties.total < 120.5", False),
    ("properties.total <= 120.5", True),
    ("properties.count < -1", False),
    ("properties.total > 1e2", True),
    ('properties.total > "100"', False),
    ("properties.str_num > 5", False),
    ("properties.missing > 0", False),
    ("properties.missing < 0", False),
    ("properties.coupon < 1", False),
    ("properties.flag > 0", False),
    ('timestamp >= "2026-01-01"', True),
    ('timestamp < "2026-01-02T03:04:05Z"', False),
    ('properties.currency < "USD"', True),
    # boolean logic and precedence (and binds tighter than or)
    ('type = "track" and event = "Order Completed"', True),
    ('type = "track" and event = "Other"', False),
    ('type = "page" or event = "Order Completed"', True),
    ('type = "page" or type = "track" and event = "Other"', False),
    ('(type = "page" or type = "track") and event = "Order Completed"', True),
    ('type = "track" && properties.total > 100', True),
    ('type = "x" || properties.total > 100', True),
    ('not type = "page"', True),
    ('!(type = "track")', False),
    ('!!(type = "track")', True),
    ('not (type = "track" and properties.total < 10)', True),
    # a bare value is true only when it is the boolean true
    ("properties.flag", True),
    ("properties.off", False),
    ("properties.total", False),
    ("properties.missing", False),
    ("!properties.missing", True),
    ("true", True),
    ("false", False),
    # contains(): substring, list membership; anything else false
    ('contains(context.page.url, "/checkout")', True),
    ('contains(context.page.url, "/CHECKOUT")', False),
    ('contains(properties.tags, "vip")', True),
    ("contains(properties.tags, 7)", True),
    ('contains(properties.tags, "7")', False),
    ('contains(properties.missing, "x")', False),
    ('contains(properties.total, "1")', False),
    ('contains(properties.name, "東京")', True),
    # match(): glob with * and ?, anchored, escapes
    ('match(event, "Order *")', True),
    ('match(event, "order *")', False),
    ('match(event, "Order Complete?")', True),
    ('match(event, "Order")', False),
    ('match(context.page.url, "https://*.example/*")', True),
    ('match(properties.missing, "*")', False),
    ('match(properties.total, "*")', False),
    ('match(properties.name, "Caf? *")', True),
    ('match(properties.currency, "E\\\\*R")', False),
    # lowercase() / uppercase() / length() / typeof()
    ('lowercase(event) = "order completed"', True),
    ('lowercase(properties.name) = "café ünïcode 東京"', True),
    ('uppercase(properties.currency) = "EUR"', True),
    ("lowercase(properties.total) = null", True),
    ("lowercase(properties.missing) = null", True),
    ("length(properties.tags) = 3", True),
    ("length(properties.name) = 15", True),  # code points, not bytes
    ("length(properties.empty) = 0", True),
    ("length(properties.none_list) = 0", True),
    ("length(properties.total) = null", True),
    ("length(properties.missing) > 0", False),
    ('typeof(properties.total) = "number"', True),
    ('typeof(properties.name) = "string"', True),
    ('typeof(properties.flag) = "boolean"', True),
    ('typeof(properties.tags) = "list"', True),
    ('typeof(properties.nested) = "map"', True),
    ('typeof(properties.coupon) = "null"', True),
    ('typeof(properties.missing) = "undefined"', True),
    ('trim("  x ") = "x"', True),
    # paths: nested, list index, escaped dots and spaces, unicode keys and values
    ("properties.nested.a.b = 1", True),
    ("properties.nested.a.c = null", True),
    ("properties.nested.a.b.c = null", True),
    ('properties.tags.1 = "vip"', True),
    ("properties.tags.9 = null", True),
    ('properties.order\\.id = "o-9"', True),
    ('properties.first\\ name = "Ada"', True),
    ('properties.name = "Café Ünïcode 東京"', True),
    ("'single' = 'single'", True),
    ('"a\\"b" = \'a"b\'', True),
    ('"\\u00e9" = "é"', True),
    # comparisons of two paths
    ("properties.count = properties.count", True),
    ("properties.total > properties.count", True),
    ("properties.missing = properties.coupon", True),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_fql_table(text: str, expected: bool) -> None:
    tree = fql.parse(text)
    assert predicate(tree)(EVENT) is expected
    # Rendering back to FQL gives the same tree (what a console shows either way).
    assert fql.parse(to_fql(tree)) == tree


ERRORS: list[tuple[str, int, str]] = [
    ('type = "track" and', 19, "end"),
    ('type = = "track"', 8, "unexpected"),
    ('type = "track', 8, "unexpected character"),
    ('(type = "track"', 16, "end"),
    ('type = "track")', 15, "unexpected"),
    ("unknown(type)", 1, "unknown function unknown()"),
    ("contains(type)", 1, "takes 2"),
    ('lowercase(type, "x")', 1, "takes 1"),
    ('type ~ "x"', 6, "unexpected character"),
    ('type = "a" b', 12, "unexpected"),
    ("", 1, "empty"),
    ("   ", 1, "empty"),
]


@pytest.mark.parametrize(("text", "position", "words"), ERRORS)
def test_fql_errors_name_the_position(text: str, position: int, words: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        fql.parse(text)
    assert caught.value.position == position
    assert words in caught.value.message


def test_keywords_inside_paths_are_paths() -> None:
    assert predicate(fql.parse("notes = null and android = null and orbit = null"))(EVENT)
    assert predicate(fql.parse("properties.and = null"))(EVENT)


def test_very_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(ExpressionError):
        fql.parse("(" * 5000 + "true" + ")" * 5000)


def test_nesting_is_capped() -> None:
    assert predicate(fql.parse("(" * 20 + "true" + ")" * 20))(EVENT)
    with pytest.raises(ExpressionError, match="nested deeper"):
        fql.parse("!" * 200 + "true")
    # Parentheses alone add no level to the tree.
    assert predicate(fql.parse("(" * 200 + "true" + ")" * 200))(EVENT)

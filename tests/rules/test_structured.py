"""All 26 Krenalis operators against one event (missing paths, nulls, type mismatches,
unicode), their errors, and their agreement with FQL (the README's translation table)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventrelay.rules import fql
from eventrelay.rules.errors import RulesInvalid
from eventrelay.rules.structured import OPERATORS, compile_structured
from eventrelay.rules.tree import predicate, to_fql
from tests.rules.events import EVENT


def check(prop: str, operator: str, *values: str) -> bool:
    node = compile_structured(
        {"conditions": [{"property": prop, "operator": operator, "values": list(values)}]}
    )
    return predicate(node)(EVENT)


CASES: list[tuple[str, str, list[str], bool]] = [
    ("type", "is", ["track"], True),
    ("properties.total", "is", ["120.5"], True),
    ("properties.str_num", "is", ["100"], True),
    ("properties.flag", "is", ["true"], True),
    ("properties.name", "is", ["Café Ünïcode 東京"], True),
    ("properties.missing", "is", ["x"], False),
    ("properties.coupon", "is", ["null"], False),
    ("type", "is not", ["page"], True),
    ("type", "is not", ["track"], False),
    ("properties.missing", "is not", ["x"], True),
    ("properties.total", "is less than", ["200"], True),
    ("properties.total", "is less than", ["120.5"], False),
    ("properties.missing", "is less than", ["1"], False),
    ("properties.currency", "is less than", ["USD"], True),
    ("properties.total", "is less than or equal to", ["120.5"], True),
    ("properties.total", "is greater than", ["100"], True),
    ("properties.str_num", "is greater than", ["5"], False),  # a string is not a number
    ("properties.count", "is greater than", [" 1"], False),  # " 1" is text, not a number
    ("properties.coupon", "is greater than", ["0"], False),
    ("properties.total", "is greater than or equal to", ["120.5"], True),
    ("properties.count", "is between", ["1", "3"], True),
    ("properties.count", "is between", ["4", "9"], False),
    ("properties.missing", "is between", ["0", "9"], False),
    ("properties.count", "is not between", ["4", "9"], True),
    ("properties.missing", "is not between", ["0", "9"], True),
    ("context.page.url", "contains", ["checkout"], True),
    ("properties.tags", "contains", ["vip"], True),
    ("properties.tags", "contains", ["7"], True),
    ("properties.name", "contains", ["東京"], True),
    ("properties.missing", "contains", ["x"], False),
    ("properties.total", "contains", ["1"], False),
    ("context.page.url", "does not contain", ["admin"], True),
    ("properties.tags", "does not contain", ["sale"], False),
    ("properties.missing", "does not contain", ["x"], True),
    ("properties.currency", "is one of", ["USD", "EUR"], True),
    ("properties.count", "is one of", ["1", "3"], True),
    ("properties.currency", "is one of", ["USD"], False),
    ("properties.missing", "is one of", ["x"], False),
    ("properties.currency", "is not one of", ["USD", "GBP"], True),
    ("properties.currency", "is not one of", ["EUR"], False),
    ("context.page.url", "starts with", ["https://"], True),
    ("context.page.url", "starts with", ["http://"], False),
    ("properties.name", "starts with", ["Café"], True),
    ("event", "starts with", ["Order*"], False),  # a value is literal, not a pattern
    ("properties.total", "starts with", ["1"], False),
    ("context.page.url", "ends with", ["step=2"], True),
    ("properties.name", "ends with", ["東京"], True),
    ("properties.missing", "ends with", ["x"], False),
    ("timestamp", "is before", ["2026-02-01"], True),
    ("timestamp", "is before", ["2026-01-02T03:04:05Z"], False),
    ("timestamp", "is on or before", ["2026-01-02T03:04:05Z"], True),
    ("timestamp", "is after", ["2025-12-31"], True),
    ("timestamp", "is on or after", ["2026-01-02T03:04:05Z"], True),
    ("properties.missing", "is after", ["2000"], False),
    ("properties.flag", "is true", [], True),
    ("properties.off", "is true", [], False),
    ("properties.total", "is true", [], False),
    ("properties.off", "is false", [], True),
    ("properties.missing", "is false", [], False),
    ("properties.empty", "is empty", [], True),
    ("properties.none_list", "is empty", [], True),
    ("properties.currency", "is empty", [], False),
    ("properties.missing", "is empty", [], False),
    ("properties.currency", "is not empty", [], True),
    ("properties.tags", "is not empty", [], True),
    ("properties.empty", "is not empty", [], False),
    ("properties.coupon", "is null", [], True),
    ("properties.missing", "is null", [], False),
    ("properties.total", "is null", [], False),
    ("properties.total", "is not null", [], True),
    ("properties.coupon", "is not null", [], False),
    ("properties.missing", "is not null", [], False),
    ("properties.coupon", "exists", [], True),
    ("properties.missing", "exists", [], False),
    ("properties.nested.a.b", "exists", [], True),
    ("properties.missing", "does not exist", [], True),
    ("properties.total", "does not exist", [], False),
]


def test_the_table_covers_all_26_operators() -> None:
    assert len(OPERATORS) == 26
    assert {c[1] for c in CASES} == set(OPERATORS)


@pytest.mark.parametrize(("prop", "operator", "values", "expected"), CASES)
def test_operator_table(prop: str, operator: str, values: list[str], expected: bool) -> None:
    assert check(prop, operator, *values) is expected


def test_logical_or_and_and() -> None:
    conditions = [
        {"property": "type", "operator": "is", "values": ["page"]},
        {"property": "properties.total", "operator": "is greater than", "values": ["100"]},
    ]
    assert predicate(compile_structured({"logical": "or", "conditions": conditions}))(EVENT)
    assert not predicate(compile_structured({"logical": "and", "conditions": conditions}))(EVENT)


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"conditions": []}, "conditions", "non-empty"),
        ({"logical": "xor", "conditions": [{}]}, "logical", '"and" or "or"'),
        (
            {"conditions": [{"property": "a", "operator": "is roughly", "values": ["1"]}]},
            "conditions.0.operator",
            "unknown operator",
        ),
        (
            {"conditions": [{"property": "a", "operator": "is between", "values": ["1"]}]},
            "conditions.0.values",
            "takes 2",
        ),
        (
            {"conditions": [{"property": "a", "operator": "is one of", "values": []}]},
            "conditions.0.values",
            "at least one",
        ),
        (
            {"conditions": [{"property": "", "operator": "is", "values": ["1"]}]},
            "conditions.0.property",
            "path",
        ),
        (
            {"conditions": [{"property": "a", "operator": "is", "values": [1]}]},
            "conditions.0.values",
            "strings",
        ),
        ({"conditions": [{"property": "a", "operator": "exists", "x": 1}]}, "conditions.0.x", ""),
    ],
)
def test_structured_errors_name_the_field(raw: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(RulesInvalid) as caught:
        compile_structured(raw)
    assert caught.value.errors[0].field == field
    assert words in caught.value.errors[0].message


# --- agreement with FQL --------------------------------------------------------------------


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literals(value: str) -> list[str]:
    out = [_q(value)]
    try:
        number = float(value)
        if value.strip() == value and number == number and abs(number) != float("inf"):
            out.append(value if value.lstrip("-").replace(".", "", 1).isdigit() else repr(number))
    except ValueError:
        pass
    if value in ("true", "false"):
        out.append(value)
    return out


def _eq(p: str, v: str) -> str:
    return "(" + " or ".join(f"{p} = {lit}" for lit in _literals(v)) + ")"


def _num_or_str(v: str) -> str:
    lits = _literals(v)
    return lits[1] if len(lits) > 1 and lits[1] not in ("true", "false") else lits[0]


def _glob(v: str) -> str:
    return "".join("\\" + c if c in "*?\\" else c for c in v)


def equivalent_fql(p: str, op: str, vs: list[str]) -> str:
    """The README's translation of each operator to FQL, written independently of the
    compiler."""
    table = {
        "is": lambda: _eq(p, vs[0]),
        "is not": lambda: f"!{_eq(p, vs[0])}",
        "is less than": lambda: f"{p} < {_num_or_str(vs[0])}",
        "is less than or equal to": lambda: f"{p} <= {_num_or_str(vs[0])}",
        "is greater than": lambda: f"{p} > {_num_or_str(vs[0])}",
        "is greater than or equal to": lambda: f"{p} >= {_num_or_str(vs[0])}",
        "is between": lambda: f"({p} >= {_num_or_str(vs[0])} and {p} <= {_num_or_str(vs[1])})",
        "is not between": lambda: f"!({p} >= {_num_or_str(vs[0])} and {p} <= {_num_or_str(vs[1])})",
        "contains": lambda: (
            "(" + " or ".join(f"contains({p}, {lit})" for lit in _literals(vs[0])) + ")"
        ),
        "does not contain": lambda: (
            "!(" + " or ".join(f"contains({p}, {lit})" for lit in _literals(vs[0])) + ")"
        ),
        "is one of": lambda: "(" + " or ".join(_eq(p, v) for v in vs) + ")",
        "is not one of": lambda: "!(" + " or ".join(_eq(p, v) for v in vs) + ")",
        "starts with": lambda: f"match({p}, {_q(_glob(vs[0]) + '*')})",
        "ends with": lambda: f"match({p}, {_q('*' + _glob(vs[0]))})",
        "is before": lambda: f"{p} < {_q(vs[0])}",
        "is on or before": lambda: f"{p} <= {_q(vs[0])}",
        "is after": lambda: f"{p} > {_q(vs[0])}",
        "is on or after": lambda: f"{p} >= {_q(vs[0])}",
        "is true": lambda: f"{p} = true",
        "is false": lambda: f"{p} = false",
        "is empty": lambda: f"length({p}) = 0",
        "is not empty": lambda: f"length({p}) > 0",
        "is null": lambda: f'typeof({p}) = "null"',
        "is not null": lambda: f"{p} != null",
        "exists": lambda: f'typeof({p}) != "undefined"',
        "does not exist": lambda: f'typeof({p}) = "undefined"',
    }
    return table[op]()


PATHS = ["properties.v", "properties.w", "properties.n.x", "properties.missing"]
text_values = st.sampled_from(
    ["", "a", "A", "10", "-2", "3.5", "true", "false", "null", "é", "東京", "a*b", "x?y", " 1"]
) | st.text(max_size=4)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-20, 20)
    | st.floats(-50, 50, allow_nan=False)
    | text_values
)
values = scalars | st.lists(scalars, max_size=3)


def _arity(op: str) -> st.SearchStrategy[list[str]]:
    count = OPERATORS[op][0]
    if count == "1+":
        return st.lists(text_values, min_size=1, max_size=3)
    assert isinstance(count, int)
    return st.lists(text_values, min_size=count, max_size=count)


conditions = st.tuples(st.sampled_from(PATHS), st.sampled_from(sorted(OPERATORS))).flatmap(
    lambda po: st.tuples(st.just(po[0]), st.just(po[1]), _arity(po[1]))
)
events = st.fixed_dictionaries(
    {
        "type": st.just("track"),
        "properties": st.fixed_dictionaries(
            {},
            optional={
                "v": values,
                "w": values,
                "n": st.fixed_dictionaries({}, optional={"x": values}) | scalars,
            },
        ),
    }
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(conditions, min_size=1, max_size=3),
    st.sampled_from(["and", "or"]),
    st.lists(events, min_size=1, max_size=4),
)
def test_fql_and_structured_forms_agree(
    conds: list[tuple[str, str, list[str]]], logical: str, evs: list[dict[str, Any]]
) -> None:
    structured = compile_structured(
        {
            "logical": logical,
            "conditions": [{"property": p, "operator": o, "values": v} for p, o, v in conds],
        }
    )
    text = f" {logical} ".join(f"({equivalent_fql(p, o, v)})" for p, o, v in conds)
    from_fql = predicate(fql.parse(text))
    from_structured = predicate(structured)
    # The structured tree rendered as FQL parses back to itself (the console shows either).
    rendered = predicate(fql.parse(to_fql(structured)))
    for event in evs:
        assert from_structured(event) is from_fql(event), (text, event)
        assert rendered(event) is from_fql(event)

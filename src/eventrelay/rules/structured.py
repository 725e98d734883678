"""The structured (Krenalis) condition form, compiled to the same tree as FQL:

    {"logical": "and", "conditions": [
        {"property": "properties.total", "operator": "is greater than", "values": ["100"]}]}

Values are strings, as in Krenalis. Krenalis reads them through the property's schema type;
events here have no schema, so a value that reads as a number (or true/false) compares with
the number (boolean) and with the string: "100" matches 100 and "100". Each operator's FQL
equivalent is in `OPERATORS` (and in the README).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from eventrelay.rules import paths
from eventrelay.rules.errors import ExpressionError, RuleError, RulesInvalid
from eventrelay.rules.functions import glob_escape, to_number
from eventrelay.rules.tree import And, Call, Compare, Field, Literal, Node, Not, Or

MAX_CONDITIONS = 100


def _number(text: str) -> Any:
    """The number a value reads as (" 1", with spaces, is text), or None."""
    return to_number(text) if text.strip() == text else None


def _typed(text: str) -> list[Any]:
    """The literals a structured value stands for: the string, and the number or boolean it
    reads as."""
    values: list[Any] = [text]
    number = _number(text)
    if number is not None:
        values.append(number)
    if text in ("true", "false"):
        values.append(text == "true")
    return values


def _any(nodes: list[Node]) -> Node:
    return nodes[0] if len(nodes) == 1 else Or(tuple(nodes))


def _eq(field: Field, text: str) -> Node:
    return _any([Compare("=", field, Literal(v)) for v in _typed(text)])


def _ordered(op: str) -> Callable[[Field, list[str]], Node]:
    def build(field: Field, values: list[str]) -> Node:
        number = _number(values[0])
        value = number if number is not None else values[0]
        return Compare(op, field, Literal(value))

    return build


def _between(field: Field, values: list[str]) -> Node:
    low, high = _ordered(">=")(field, values[:1]), _ordered("<=")(field, values[1:])
    return And((low, high))


def _one_of(field: Field, values: list[str]) -> Node:
    return _any([n for v in values for n in _leaves(_eq(field, v))])


def _leaves(node: Node) -> list[Node]:
    return list(node.items) if isinstance(node, Or) else [node]


def _length(field: Field, op: str) -> Node:
    return Compare(op, Call("length", (field,)), Literal(0))


def _typeof(field: Field, op: str, name: str) -> Node:
    return Compare(op, Call("typeof", (field,)), Literal(name))


# operator -> (number of values: exact int, or "1+" for one or more, builder)
Builder = Callable[[Field, list[str]], Node]
OPERATORS: dict[str, tuple[int | str, Builder]] = {
    "is": (1, lambda f, v: _eq(f, v[0])),
    "is not": (1, lambda f, v: Not(_eq(f, v[0]))),
    "is less than": (1, _ordered("<")),
    "is less than or equal to": (1, _ordered("<=")),
    "is greater than": (1, _ordered(">")),
    "is greater than or equal to": (1, _ordered(">=")),
    "is between": (2, _between),
    "is not between": (2, lambda f, v: Not(_between(f, v))),
    "contains": (1, lambda f, v: _any([Call("contains", (f, Literal(x))) for x in _typed(v[0])])),
    "does not contain": (
        1,
        lambda f, v: Not(_any([Call("contains", (f, Literal(x))) for x in _typed(v[0])])),
    ),
    "is one of": ("1+", _one_of),
    "is not one of": ("1+", lambda f, v: Not(_one_of(f, v))),
    "starts with": (1, lambda f, v: Call("match", (f, Literal(glob_escape(v[0]) + "*")))),
    "ends with": (1, lambda f, v: Call("match", (f, Literal("*" + glob_escape(v[0]))))),
    # Dates and times as ISO 8601 strings: in one format and zone they order as text.
    "is before": (1, lambda f, v: Compare("<", f, Literal(v[0]))),
    "is on or before": (1, lambda f, v: Compare("<=", f, Literal(v[0]))),
    "is after": (1, lambda f, v: Compare(">", f, Literal(v[0]))),
    "is on or after": (1, lambda f, v: Compare(">=", f, Literal(v[0]))),
    "is true": (0, lambda f, v: Compare("=", f, Literal(True))),
    "is false": (0, lambda f, v: Compare("=", f, Literal(False))),
    "is empty": (0, lambda f, v: _length(f, "=")),
    "is not empty": (0, lambda f, v: _length(f, ">")),
    "is null": (0, lambda f, v: _typeof(f, "=", "null")),
    "is not null": (0, lambda f, v: Compare("!=", f, Literal(None))),
    "exists": (0, lambda f, v: _typeof(f, "!=", "undefined")),
    "does not exist": (0, lambda f, v: _typeof(f, "=", "undefined")),
}


def _condition(raw: Any, where: str) -> Node:
    if not isinstance(raw, Mapping):
        raise RulesInvalid([RuleError(where, "must be an object with property, operator, values")])
    unknown = set(raw) - {"property", "operator", "values"}
    if unknown:
        raise RulesInvalid([RuleError(f"{where}.{sorted(unknown)[0]}", "is not a known field")])
    prop, operator, values = raw.get("property"), raw.get("operator"), raw.get("values", [])
    if not isinstance(prop, str) or not prop:
        raise RulesInvalid([RuleError(f"{where}.property", "must be a property path")])
    try:
        path = paths.parse_path(prop)
    except ExpressionError as exc:
        raise RulesInvalid([RuleError(f"{where}.property", exc.message)]) from None
    spec = OPERATORS.get(operator) if isinstance(operator, str) else None
    if spec is None:
        known = ", ".join(f'"{o}"' for o in OPERATORS)
        raise RulesInvalid(
            [RuleError(f"{where}.operator", f"unknown operator {operator!r}; known: {known}")]
        )
    count, build = spec
    if values is None:
        values = []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise RulesInvalid([RuleError(f"{where}.values", "must be a list of strings")])
    if count == "1+" and not values:
        raise RulesInvalid([RuleError(f"{where}.values", f'"{operator}" needs at least one value')])
    if isinstance(count, int) and len(values) != count:
        raise RulesInvalid(
            [
                RuleError(
                    f"{where}.values", f'"{operator}" takes {count} value(s), got {len(values)}'
                )
            ]
        )
    return build(Field(path), values)


def compile_structured(raw: Any) -> Node:
    """Errors are RulesInvalid with fields relative to the condition object."""
    if not isinstance(raw, Mapping):
        raise RulesInvalid([RuleError("", "must be an FQL string or {logical, conditions}")])
    unknown = set(raw) - {"logical", "conditions"}
    if unknown:
        raise RulesInvalid([RuleError(sorted(unknown)[0], "is not a known field")])
    logical = raw.get("logical", "and")
    if logical not in ("and", "or"):
        raise RulesInvalid([RuleError("logical", 'must be "and" or "or"')])
    conditions = raw.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        raise RulesInvalid([RuleError("conditions", "must be a non-empty list")])
    if len(conditions) > MAX_CONDITIONS:
        raise RulesInvalid([RuleError("conditions", f"at most {MAX_CONDITIONS}")])
    nodes = [_condition(c, f"conditions.{i}") for i, c in enumerate(conditions)]
    if len(nodes) == 1:
        return nodes[0]
    return And(tuple(nodes)) if logical == "and" else Or(tuple(nodes))

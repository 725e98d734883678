"""The predicate tree both rule forms compile to, its evaluation (compiled to closures once,
so a rule costs a few function calls per event) and its rendering back to FQL (so a console can
show a structured condition as FQL and the other way round)."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventrelay.rules import paths
from eventrelay.rules.functions import FUNCTIONS, equal, glob_regex, ordered
from eventrelay.rules.paths import MISSING


@dataclass(frozen=True, slots=True)
class Field:
    path: paths.Path


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any  # str, int, float, bool or None


@dataclass(frozen=True, slots=True)
class Template:
    """A string literal with `{{path}}` placeholders (mapping expressions)."""

    parts: tuple[str | paths.Path, ...]


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # = != < <= > >=
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Field | Literal | Template | Call | Compare | And | Or | Not
Evaluator = Callable[[Any], Any]

# On two numbers or two strings these return a bool (checked before they are called).
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def evaluator(node: Node) -> Evaluator:
    """A function event -> value for `node`."""
    if isinstance(node, Field):
        path = node.path
        # The common short paths unrolled: an attribute lookup per level, nothing else.
        if len(path) == 1:
            (key,) = path
            return lambda e: e.get(key, MISSING) if type(e) is dict else MISSING
        if len(path) == 2:
            first, second = path
            if not second.isdigit():

                def two(e: Any) -> Any:
                    node = e.get(first) if type(e) is dict else None
                    return node.get(second, MISSING) if type(node) is dict else MISSING

                return two
        if len(path) == 3 and not (path[1].isdigit() or path[2].isdigit()):
            first, second, third = path

            def three(e: Any) -> Any:
                node = e.get(first) if type(e) is dict else None
                node = node.get(second) if type(node) is dict else None
                return node.get(third, MISSING) if type(node) is dict else MISSING

            return three
        return lambda e: paths.get(e, path)
    if isinstance(node, Literal):
        value = node.value
        return lambda e: value
    if isinstance(node, Template):
        return _template(node)
    if (
        isinstance(node, Call)
        and node.name == "contains"
        and isinstance(node.args[1], Literal)
        and type(node.args[1].value) is str
    ):
        haystack, needle = evaluator(node.args[0]), node.args[1].value

        def contains_text(e: Any) -> bool:
            value = haystack(e)
            if type(value) is str:
                return needle in value
            return type(value) is list and needle in value  # a str equals only a str

        return contains_text
    if (
        isinstance(node, Call)
        and node.name == "match"
        and isinstance(node.args[1], Literal)
        and type(node.args[1].value) is str
    ):
        subject, pattern = evaluator(node.args[0]), glob_regex(node.args[1].value).fullmatch
        return lambda e: type(v := subject(e)) is str and pattern(v) is not None
    if isinstance(node, Call):
        function = FUNCTIONS[node.name][0]
        args = [evaluator(a) for a in node.args]
        if len(args) == 1:
            (only,) = args
            return lambda e: function(only(e))
        if len(args) == 2:
            arg0, arg1 = args
            return lambda e: function(arg0(e), arg1(e))
        return lambda e: function(*(a(e) for a in args))
    if isinstance(node, Compare):
        return _compare(node)
    if isinstance(node, And | Or | Not):
        test = predicate(node)
        return test
    raise TypeError(f"unknown node {node!r}")


def predicate(node: Node) -> Callable[[Any], bool]:
    """A function event -> bool: true only for a true result (a non-boolean value is false)."""
    if isinstance(node, And):
        items = [predicate(i) for i in node.items]
        if len(items) == 2:
            a, b = items
            return lambda e: a(e) and b(e)
        return lambda e: all(i(e) for i in items)
    if isinstance(node, Or):
        items = [predicate(i) for i in node.items]
        if len(items) == 2:
            a, b = items
            return lambda e: a(e) or b(e)
        return lambda e: any(i(e) for i in items)
    if isinstance(node, Not):
        item = predicate(node.item)
        return lambda e: not item(e)
    if isinstance(node, Compare):
        return _compare(node)
    value = evaluator(node)
    return lambda e: value(e) is True


def _compare(node: Compare) -> Callable[[Any], bool]:
    left, right = evaluator(node.left), evaluator(node.right)
    if node.op == "=":
        if isinstance(node.right, Literal) and isinstance(node.right.value, str):
            text = node.right.value  # the common case (type = "track"), made cheap
            return lambda e: left(e) == text  # no other type equals a str in Python
        return lambda e: equal(left(e), right(e))
    if node.op == "!=":
        return lambda e: not equal(left(e), right(e))
    order = _ORDER[node.op]
    if isinstance(node.right, Literal) and type(node.right.value) in (int, float, str):
        # A path against a number or string literal (properties.total > 100): one type check.
        bound = node.right.value
        kinds = (int, float) if type(bound) in (int, float) else (str,)
        if bound != bound:  # NaN orders with nothing
            return lambda e: False

        def against_literal(e: Any) -> bool:
            a = left(e)
            return type(a) in kinds and a == a and order(a, bound)

        return against_literal

    def compare(e: Any) -> bool:
        a, b = left(e), right(e)
        return ordered(a, b) and order(a, b)

    return compare


_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


def template_of(text: str) -> Template | None:
    """`"Order {{properties.id}}"` -> Template; a string without placeholders -> None."""
    if "{{" not in text:
        return None
    parts: list[str | paths.Path] = []
    last = 0
    for found in _PLACEHOLDER.finditer(text):
        if found.start() > last:
            parts.append(text[last : found.start()])
        parts.append(paths.parse_path(found.group(1)))
        last = found.end()
    if last < len(text):
        parts.append(text[last:])
    return Template(tuple(parts))


def _template(node: Template) -> Evaluator:
    from eventrelay.rules.functions import to_string

    def render(e: Any) -> str:
        out: list[str] = []
        for part in node.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                out.append(to_string(paths.get(e, part)) or "")
        return "".join(out)

    return render


# --- rendering -------------------------------------------------------------------------------

_PRECEDENCE = {Or: 1, And: 2, Not: 3}


def to_fql(node: Node, parent: int = 0) -> str:
    if isinstance(node, Or | And):
        mine = _PRECEDENCE[type(node)]
        word = " or " if isinstance(node, Or) else " and "
        text = word.join(to_fql(i, mine) for i in node.items)
        return f"({text})" if mine <= parent else text
    if isinstance(node, Not):
        return f"!({to_fql(node.item)})"
    if isinstance(node, Compare):
        text = f"{to_fql(node.left, 4)} {node.op} {to_fql(node.right, 4)}"
        return f"({text})" if parent >= 4 else text
    if isinstance(node, Field):
        return paths.render_path(node.path)
    if isinstance(node, Call):
        return f"{node.name}({', '.join(to_fql(a) for a in node.args)})"
    if isinstance(node, Template):
        return _string(
            "".join(
                p if isinstance(p, str) else "{{" + paths.render_path(p) + "}}" for p in node.parts
            )
        )
    return _literal(node.value)


def _literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("FQL has no literal for an infinite or NaN number")
    if isinstance(value, int | float):
        return repr(value)
    return _string(str(value))


def _string(text: str) -> str:
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'

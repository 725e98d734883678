"""Segment's Filter Query Language (FQL), parsed with lark (LALR) into the predicate tree.

    type = "track" and event = "Order Completed"
    properties.total >= 100 or !(context.library.name = "analytics.js")
    contains(context.page.url, "/checkout") and match(event, "Order *")
    lowercase(traits.email) != null and length(properties.products) > 0

Operators `=` (also `==`), `!=`, `<`, `<=`, `>`, `>=`; `and`/`&&`, `or`/`||`, `not`/`!`;
parentheses; literals: "strings" (or 'strings'), numbers, true, false, null; paths with
backslash escapes; functions in `functions.FUNCTIONS`. Errors name the 1-based position.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark import Tree as LarkTree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, VisitError

from eventrelay.rules import paths
from eventrelay.rules.errors import ExpressionError
from eventrelay.rules.functions import FUNCTIONS
from eventrelay.rules.tree import And, Call, Compare, Field, Literal, Node, Not, Or, template_of

MAX_LENGTH = 10_000
MAX_DEPTH = 64

GRAMMAR = r"""
start: expr
?expr: or_expr
?or_expr: and_expr
        | or_expr (_OR | _OR_SYM) and_expr -> or_
?and_expr: not_expr
         | and_expr (_AND | _AND_SYM) not_expr -> and_
?not_expr: comparison
         | (_NOT | _BANG) not_expr -> not_
?comparison: operand
           | operand COMP_OP operand -> compare
?operand: PATH -> field
        | STRING -> string
        | NUMBER -> number
        | _TRUE -> true
        | _FALSE -> false
        | _NULL -> null
        | PATH "(" [expr ("," expr)*] ")" -> call
        | "(" expr ")"
// Keywords are single-string terminals: lark then reads `notes` as a path, `not` as `not`.
_OR: "or"
_OR_SYM: "||"
_AND: "and"
_AND_SYM: "&&"
_NOT: "not"
_BANG: "!"
_TRUE: "true"
_FALSE: "false"
_NULL: "null"
COMP_OP: "==" | "=" | "!=" | "<=" | ">=" | "<" | ">"
PATH: /(?:[^\W\d]|[$@]|\\.)(?:[\w$@\-]|\\.)*(?:\.(?:[\w$@\-]|\\.)+)*/
STRING: /"(?:\\.|[^"\\])*"/ | /'(?:\\.|[^'\\])*'/
NUMBER: /-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/
%ignore /\s+/
"""


@functools.cache
def _parser() -> Lark:
    """Built on first use (a few hundred ms on a busy machine): startup does not pay for it."""
    return Lark(
        GRAMMAR, parser="lalr", lexer="basic", propagate_positions=True, maybe_placeholders=False
    )


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "0": "\0"}


def _unquote(text: str) -> str:
    body = text[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt == "u" and i + 6 <= len(body):
            try:
                out.append(json.loads(f'"\\u{body[i + 2 : i + 6]}"'))
                i += 6
                continue
            except ValueError:
                pass
        out.append(_ESCAPES.get(nxt, nxt))
        i += 2
    return "".join(out)


@v_args(inline=True)
class _ToTree(Transformer[Token, Node]):
    def __init__(self, templates: bool) -> None:
        super().__init__()
        self._templates = templates

    def start(self, node: Node) -> Node:
        return node

    def or_(self, left: Node, right: Node) -> Node:
        items = left.items if isinstance(left, Or) else (left,)
        return Or((*items, right))

    def and_(self, left: Node, right: Node) -> Node:
        items = left.items if isinstance(left, And) else (left,)
        return And((*items, right))

    def not_(self, item: Node) -> Node:
        return Not(item)

    def compare(self, left: Node, op: Token, right: Node) -> Node:
        return Compare("=" if op == "==" else str(op), left, right)

    def field(self, token: Token) -> Node:
        try:
            return Field(paths.parse_path(str(token)))
        except ExpressionError as exc:
            raise ExpressionError(exc.message, token.start_pos) from None

    def string(self, token: Token) -> Node:
        text = _unquote(str(token))
        if self._templates:
            try:
                template = template_of(text)
            except ExpressionError as exc:
                raise ExpressionError(exc.message, token.start_pos) from None
            if template is not None:
                return template
        return Literal(text)

    def number(self, token: Token) -> Node:
        text = str(token)
        value: Any
        try:
            value = int(text)
        except ValueError:
            value = float(text)
        return Literal(value)

    def true(self) -> Node:
        return Literal(True)

    def false(self) -> Node:
        return Literal(False)

    def null(self) -> Node:
        return Literal(None)

    def call(self, name: Token, *args: Node) -> Node:
        spec = FUNCTIONS.get(str(name))
        if spec is None:
            known = ", ".join(sorted(FUNCTIONS))
            raise ExpressionError(f"unknown function {name}(); known: {known}", name.start_pos)
        _, least, most = spec
        if len(args) < least or (most is not None and len(args) > most):
            want = str(least) if least == most else f"{least} or more"
            raise ExpressionError(
                f"{name}() takes {want} argument(s), got {len(args)}", name.start_pos
            )
        return Call(str(name), tuple(args))


def parse(text: str, templates: bool = False) -> Node:
    """FQL text -> tree. `templates`: string literals with {{path}} are templates (mapping)."""
    if not isinstance(text, str):
        raise ExpressionError("must be an FQL expression (a string)")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise ExpressionError("is empty", 1)
    try:
        tree = _parser().parse(text)
    except UnexpectedEOF:
        raise ExpressionError("unexpected end of expression", len(text) + 1) from None
    except UnexpectedCharacters as exc:
        at = exc.pos_in_stream or 0
        raise ExpressionError(f"unexpected character {text[at]!r}", at + 1) from None
    except UnexpectedInput as exc:
        token = getattr(exc, "token", None)
        pos = exc.pos_in_stream if exc.pos_in_stream is not None else len(text)
        if token is not None and getattr(token, "type", "") == "$END":
            raise ExpressionError("unexpected end of expression", len(text) + 1) from None
        shown = f" {str(token)!r}" if token is not None else ""
        raise ExpressionError(f"unexpected{shown}", pos + 1) from None
    except RecursionError:
        raise ExpressionError("nested too deeply") from None
    if _depth(tree) > MAX_DEPTH:
        # Compiled rules are nested closures: evaluation must stay far from the recursion limit.
        raise ExpressionError(f"nested deeper than {MAX_DEPTH} levels")
    try:
        return _ToTree(templates).transform(tree)
    except VisitError as exc:
        inner = exc.orig_exc
        if isinstance(inner, ExpressionError):
            position = inner.position + 1 if inner.position is not None else None
            raise ExpressionError(inner.message, position) from None
        raise ExpressionError(f"cannot read this expression ({type(inner).__name__})") from None


def _depth(tree: LarkTree[Token]) -> int:
    """Nesting depth, without recursion."""
    deepest = 0
    stack: list[tuple[LarkTree[Token], int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, LarkTree))
    return deepest

"""Validation and compilation of an integration's `rules` object:

    {"trigger": <condition>,
     "filters": [{"if": <condition>, "action": "drop"},
                 {"if": <condition>, "action": "sample", "percent": 10},
                 {"action": "allow_properties", "paths": ["properties.total"]},
                 {"if": <condition>, "action": "drop_properties", "paths": ["context.ip"]}],
     "transformation": {"mapping": {"<target path>": "<expression>", ...}}
                    or {"function": {"language": "javascript", "source": "..."}}}

A <condition> is an FQL string or a structured {logical, conditions} object; a filter without
`if` (or with "all") applies to every event. Every error names its field and, inside an
expression, the 1-based position.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventrelay.rules import fql, paths
from eventrelay.rules.actions import ESSENTIAL
from eventrelay.rules.engine import CompiledRules, Filter, Mapping, Transformation
from eventrelay.rules.errors import ExpressionError, RuleError, RulesInvalid
from eventrelay.rules.structured import compile_structured
from eventrelay.rules.tree import Node, evaluator, predicate

MAX_FILTERS = 50
MAX_PATHS = 200
MAX_MAPPING = 200
ACTIONS = ("drop", "sample", "allow_properties", "drop_properties")
KEYS = {"trigger", "filters", "transformation"}

# Builds a function transformation (language, source, dry_run) -> Transformation; raises
# RulesInvalid with fields relative to the function object (`rules.js.compile_function`).
FunctionFactory = Callable[[str, str, bool], Transformation]


def default_functions() -> FunctionFactory | None:
    """The function sandbox: JavaScript in V8 (imported on first use: it loads V8)."""
    from eventrelay.rules.js import compile_function

    return compile_function


def parse_condition(raw: Any, where: str) -> Node:
    """An FQL string or a structured object -> tree; errors under `where`."""
    if isinstance(raw, str):
        try:
            return fql.parse(raw)
        except ExpressionError as exc:
            raise RulesInvalid([RuleError(where, exc.message, exc.position)]) from None
    try:
        return compile_structured(raw)
    except RulesInvalid as exc:
        raise RulesInvalid([e.under(where) for e in exc.errors]) from None


def _path_list(raw: Any, where: str) -> list[paths.Path]:
    if not isinstance(raw, list) or not raw or not all(isinstance(p, str) for p in raw):
        raise RulesInvalid([RuleError(where, "must be a non-empty list of property paths")])
    if len(raw) > MAX_PATHS:
        raise RulesInvalid([RuleError(where, f"at most {MAX_PATHS} paths")])
    out = []
    for index, text in enumerate(raw):
        try:
            out.append(paths.parse_path(text))
        except ExpressionError as exc:
            raise RulesInvalid([RuleError(f"{where}.{index}", exc.message)]) from None
    return out


def _filter(raw: Any, index: int) -> Filter:
    where = f"filters.{index}"
    if not isinstance(raw, dict):
        raise RulesInvalid([RuleError(where, "must be an object with if and action")])
    action = raw.get("action")
    allowed_keys = {"if", "action", "percent", "seed", "paths"}
    unknown = set(raw) - allowed_keys
    if unknown:
        raise RulesInvalid([RuleError(f"{where}.{sorted(unknown)[0]}", "is not a known field")])
    if action not in ACTIONS:
        raise RulesInvalid(
            [RuleError(f"{where}.action", f"must be one of {', '.join(ACTIONS)}; got {action!r}")]
        )
    condition = raw.get("if")
    test = None
    if condition is not None and condition != "all":
        test = predicate(parse_condition(condition, f"{where}.if"))
    name = where
    if action == "drop":
        return Filter(name, test, action)
    if action == "sample":
        percent = raw.get("percent")
        if (
            isinstance(percent, bool)
            or not isinstance(percent, int | float)
            or not 0 <= percent <= 100
        ):
            raise RulesInvalid([RuleError(f"{where}.percent", "must be a number from 0 to 100")])
        seed = raw.get("seed", "")
        if not isinstance(seed, str) or len(seed) > 200:
            raise RulesInvalid([RuleError(f"{where}.seed", "must be a string")])
        return Filter(name, test, action, percent=float(percent), seed=seed)
    listed = _path_list(raw.get("paths"), f"{where}.paths")
    if action == "drop_properties":
        for i, path in enumerate(listed):
            if len(path) == 1 and path[0] in ESSENTIAL:
                raise RulesInvalid(
                    [RuleError(f"{where}.paths.{i}", f"{path[0]} cannot be dropped")]
                )
        return Filter(name, test, action, paths=tuple(listed))
    allowed: dict[str, list[paths.Path]] = {}
    for i, path in enumerate(listed):
        if len(path) < 2:
            raise RulesInvalid(
                [
                    RuleError(
                        f"{where}.paths.{i}",
                        "name a field inside an object (properties.total, traits.email,"
                        " context.page.url)",
                    )
                ]
            )
        allowed.setdefault(path[0], []).append(path[1:])
    return Filter(name, test, action, allowed=allowed)


def _mapping(raw: Any) -> Mapping:
    where = "transformation.mapping"
    if not isinstance(raw, dict) or not raw:
        raise RulesInvalid([RuleError(where, "must be a non-empty object of path: expression")])
    if len(raw) > MAX_MAPPING:
        raise RulesInvalid([RuleError(where, f"at most {MAX_MAPPING} entries")])
    targets = []
    for target, expression in raw.items():
        field = f"{where}.{target}"
        try:
            path = paths.parse_path(target)
        except ExpressionError as exc:
            raise RulesInvalid([RuleError(field, exc.message)]) from None
        if path == ("messageId",):
            raise RulesInvalid([RuleError(field, "messageId cannot be mapped")])
        if not isinstance(expression, str):
            raise RulesInvalid([RuleError(field, "must be an expression (a string)")])
        try:
            node = fql.parse(expression, templates=True)
        except ExpressionError as exc:
            raise RulesInvalid([RuleError(field, exc.message, exc.position)]) from None
        targets.append((path, evaluator(node)))
    return Mapping(targets)


def _transformation(raw: Any, functions: FunctionFactory | None, dry_run: bool) -> Transformation:
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in ("mapping", "function"):
        raise RulesInvalid(
            [RuleError("transformation", 'must be {"mapping": {...}} or {"function": {...}}')]
        )
    if "mapping" in raw:
        return _mapping(raw["mapping"])
    function = raw["function"]
    where = "transformation.function"
    if not isinstance(function, dict) or set(function) - {"language", "source"}:
        raise RulesInvalid([RuleError(where, "must be {language, source}")])
    language, source = function.get("language"), function.get("source")
    if not isinstance(language, str) or language.lower() != "javascript":
        raise RulesInvalid([RuleError(f"{where}.language", 'must be "javascript"')])
    if not isinstance(source, str) or not source.strip():
        raise RulesInvalid([RuleError(f"{where}.source", "must be the function's source")])
    if functions is None:
        raise RulesInvalid([RuleError(where, "functions are not available here")])
    try:
        return functions(language.lower(), source, dry_run)
    except RulesInvalid as exc:
        raise RulesInvalid([e.under(where) for e in exc.errors]) from None


def compile_rules(
    raw: Any, functions: FunctionFactory | bool | None = True, dry_run: bool = True
) -> CompiledRules:
    """`raw` as stored in the integration's config; RulesInvalid lists what is wrong.
    `functions`: True for the JavaScript sandbox, None/False to refuse functions. `dry_run`:
    run a function once on a sample event (on save; not when a worker starts).
    A function makes an isolate: compile in a thread, never on a running event loop."""
    if functions is True:
        functions = default_functions()
    elif functions is False:
        functions = None
    if not isinstance(raw, dict):
        raise RulesInvalid(
            [RuleError("", "must be an object with trigger, filters, transformation")]
        )
    unknown = set(raw) - KEYS
    if unknown:
        raise RulesInvalid([RuleError(sorted(unknown)[0], "is not a known field")])
    trigger = None
    if raw.get("trigger") is not None:
        trigger = predicate(parse_condition(raw["trigger"], "trigger"))
    filters_raw = raw.get("filters") or []
    if not isinstance(filters_raw, list):
        raise RulesInvalid([RuleError("filters", "must be a list")])
    if len(filters_raw) > MAX_FILTERS:
        raise RulesInvalid([RuleError("filters", f"at most {MAX_FILTERS}")])
    filters = [_filter(f, i) for i, f in enumerate(filters_raw)]
    transformation = None
    if raw.get("transformation") is not None:
        transformation = _transformation(raw["transformation"], functions, dry_run)
    return CompiledRules(trigger, filters, transformation)

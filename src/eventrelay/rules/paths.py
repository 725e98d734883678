"""Dotted paths into an event (`properties.total`, `context.page.url`).

A backslash escapes the next character, so a key with a dot or a space is reachable:
`properties.order\\.id`, `traits.first\\ name`.
"""

from __future__ import annotations

from typing import Any

from eventrelay.rules.errors import ExpressionError


class _Missing:
    """A path that leads nowhere (distinct from a JSON null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

Path = tuple[str, ...]


def parse_path(text: str) -> Path:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ".":
            if not current:
                raise ExpressionError(f"empty segment in path {text!r}")
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped or not current:
        raise ExpressionError(f"path {text!r} ends with an empty segment or a lone backslash")
    parts.append("".join(current))
    return tuple(parts)


def render_path(path: Path) -> str:
    return ".".join(
        "".join("\\" + c if c in ".\\ ()=!<>,\"'" else c for c in part) for part in path
    )


def get(event: Any, path: Path) -> Any:
    value = event
    for key in path:
        if isinstance(value, dict):
            value = value.get(key, MISSING)
            if value is MISSING:
                return MISSING
        elif isinstance(value, list) and key.isdigit():
            index = int(key)
            if index >= len(value):
                return MISSING
            value = value[index]
        else:
            return MISSING
    return value


def copy_along(event: dict[str, Any], path: Path) -> dict[str, Any] | None:
    """Copy the dicts on the way to `path`'s parent (copy-on-write: the rest is shared).
    Returns the parent in the copy, or None if the way is blocked by a non-object."""
    node = event
    for key in path[:-1]:
        child = node.get(key, MISSING)
        if child is MISSING:
            child = {}
        elif not isinstance(child, dict):
            return None
        else:
            child = dict(child)
        node[key] = child
        node = child
    return node


def set_path(event: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    """A copy of `event` with `path` set (objects created on the way)."""
    out = dict(event)
    parent = copy_along(out, path)
    if parent is None:
        raise ExpressionError(f"cannot set {render_path(path)}: a parent is not an object")
    parent[path[-1]] = value
    return out


def delete_path(event: dict[str, Any], path: Path) -> dict[str, Any]:
    """A copy of `event` without `path` (the same object if the path is absent)."""
    if get(event, path) is MISSING or not isinstance(get(event, path[:-1]), dict):
        return event
    out = dict(event)
    parent = copy_along(out, path)
    assert parent is not None
    del parent[path[-1]]
    return out


def keep_only(node: dict[str, Any], paths: list[Path]) -> dict[str, Any]:
    """The parts of `node` named by `paths` (each relative to node), nothing else."""
    out: dict[str, Any] = {}
    kept: set[Path] = set()
    for path in sorted(paths, key=len):
        if any(path[:i] in kept for i in range(1, len(path))):
            continue  # a broader path already kept the whole object
        value = get(node, path)
        if value is MISSING:
            continue
        target = out
        for key in path[:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = value
        kept.add(path)
    return out

"""Splitting an integration config into what may be shown and what must be encrypted.

Secret fields are the ones a destination's Settings model types as `SecretStr` (also inside
nested models and dict values, e.g. webhook header values). Their locations are JSON Pointers
(RFC 6901), so any key, even one with dots, is addressed without ambiguity.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from copy import deepcopy
from typing import Any

from pydantic import BaseModel, SecretStr

MASK = "***"

Pointer = tuple[str, ...]


def to_pointer(path: Pointer) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in path)


def from_pointer(pointer: str) -> Pointer:
    if not pointer:
        return ()
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/"))


def dotted(path: Pointer, prefix: str = "config") -> str:
    """Display form for error details and audit diffs: config.headers.X-API-Key."""
    return ".".join((prefix, *path)) if prefix else ".".join(path)


def _walk_secrets(value: Any, path: Pointer) -> Iterator[tuple[Pointer, str]]:
    if isinstance(value, SecretStr):
        yield path, value.get_secret_value()
    elif isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            yield from _walk_secrets(getattr(value, name), (*path, info.alias or name))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk_secrets(item, (*path, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk_secrets(item, (*path, str(index)))


def _set(doc: Any, path: Pointer, value: Any) -> None:
    target = doc
    for part in path[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(path[-1])] = value
    else:
        target[path[-1]] = value


def _get(doc: Any, path: Pointer) -> Any:
    target = doc
    for part in path:
        if isinstance(target, list):
            target = target[int(part)]
        elif isinstance(target, Mapping):
            target = target[part]
        else:
            raise KeyError(part)
    return target


def split_secrets(settings: BaseModel) -> tuple[dict[str, Any], dict[str, str]]:
    """Return (config with secrets masked, {pointer: secret value})."""
    # Only what the user set: defaults stay implicit (the seed contract shows config as sent).
    public = settings.model_dump(mode="json", exclude_none=True, exclude_unset=True)
    secrets: dict[str, str] = {}
    for path, secret in _walk_secrets(settings, ()):
        try:
            _get(public, path)
        except (KeyError, IndexError):
            continue  # excluded as None
        secrets[to_pointer(path)] = secret
        _set(public, path, MASK)
    return public, secrets


def merge_secrets(public: Mapping[str, Any], secrets: Mapping[str, str]) -> dict[str, Any]:
    """Put decrypted secret values back into a stored (masked) config."""
    doc = deepcopy(dict(public))
    for pointer, value in secrets.items():
        path = from_pointer(pointer)
        try:
            _get(doc, path)
        except (KeyError, IndexError, ValueError):
            continue  # the field no longer exists in the stored config
        _set(doc, path, value)
    return doc


def keep_stored(incoming: Any, secrets: Mapping[str, str]) -> tuple[Any, list[Pointer]]:
    """An updated config with the stored secrets it keeps: a secret left out or sent back as
    "***" keeps its stored value, an explicit null removes it, anything else replaces it.

    Returns the config to validate and the locations of the secrets kept (so a caller can
    refuse to keep them when the config now sends them somewhere else)."""
    doc = deepcopy(incoming)
    kept: list[Pointer] = []
    for pointer, value in sorted(secrets.items()):
        path = from_pointer(pointer)
        if not path:
            continue
        try:
            parent = _parent(doc, path)
        except (KeyError, IndexError, ValueError, TypeError):
            continue  # a container on the way is not a container: validation says what is wrong
        key = path[-1]
        if isinstance(parent, list):
            continue  # secrets live in objects; a list position carries no stable identity
        if key in parent and parent[key] is None:
            del parent[key]  # explicit removal
        elif key not in parent or parent[key] == MASK:
            parent[key] = value
            kept.append(path)
    return doc, kept


def _parent(doc: Any, path: Pointer) -> Any:
    """The object holding `path`'s last part, creating missing objects on the way."""
    target = doc
    for part in path[:-1]:
        if isinstance(target, list):
            target = target[int(part)]
        elif isinstance(target, dict):
            target = target.setdefault(part, {})
        else:
            raise TypeError(part)
    if not isinstance(target, dict | list):
        raise TypeError(path[-1])
    return target


def masked_secret_paths(settings: BaseModel) -> list[Pointer]:
    """Secret fields whose value is literally "***": a mask sent back with nothing stored."""
    return [path for path, value in _walk_secrets(settings, ()) if value == MASK]


def flatten(doc: Any, path: Pointer = ()) -> dict[Pointer, Any]:
    """Leaves of a JSON document by path (for audit diffs)."""
    if isinstance(doc, Mapping) and doc:
        out: dict[Pointer, Any] = {}
        for key, value in doc.items():
            out.update(flatten(value, (*path, str(key))))
        return out
    return {path: doc}

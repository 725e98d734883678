"""What the commands print: aligned tables and key/value blocks for people, JSON for scripts
(`--json`: exactly the API's objects, one document on stdout). Notes go to stderr."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

F = TypeVar("F", bound=Callable[..., Any])

MAX_CELL = 60


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")(fn)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def note(message: str) -> None:
    click.echo(message, err=True)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    click.echo(line([h.upper() for h in headers]))
    for row in cells:
        click.echo(line(row))
    if not rows:
        note("(none)")


def fields(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max(len(k) for k, _ in pairs)
    for key, value in pairs:
        if isinstance(value, Mapping | list):
            value = json.dumps(value, ensure_ascii=False)
        click.echo(f"{key.ljust(width)}  {'-' if value is None else value}")


def counts(values: Mapping[str, int] | None) -> str:
    """{"consent": 3, "disabled": 1} -> "consent 3, disabled 1"; empty -> "-"."""
    if not values:
        return "-"
    return ", ".join(f"{k} {v}" for k, v in sorted(values.items(), key=lambda kv: -kv[1]))


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute_env(value: Any, environ: Mapping[str, str], where: str = "") -> Any:
    """Replace ${NAME} in every string with the environment variable NAME (secrets stay out of
    files); a variable that is not set is an error naming it and where it is used."""
    if isinstance(value, str):

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                raise click.ClickException(
                    f"environment variable {name} is not set (used at {where or 'top level'})"
                )
            return environ[name]

        return _ENV_REF.sub(one, value)
    if isinstance(value, dict):
        return {
            k: substitute_env(v, environ, f"{where}.{k}" if where else str(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [substitute_env(v, environ, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def load_document(path: Path) -> Any:
    """A JSON or YAML file (chosen by its extension; YAML also reads JSON)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise click.ClickException(f"{path} is not valid JSON/YAML: {exc}") from None


def file_option(help_text: str) -> Callable[[F], F]:
    return click.option(
        "--file",
        "-f",
        "file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help=help_text,
    )

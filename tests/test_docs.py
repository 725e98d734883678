"""Documented facts that drifted once: every command documented, the configuration table whole,
docs citing only files of the repository, the Procfile's worker probe-able."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click

from eventrelay.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def section(text: str, title: str) -> str:
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def commands(
    group: click.Group, ctx: click.Context, prefix: str = ""
) -> Iterator[tuple[str, click.Command]]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        path = f"{prefix}{name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from commands(command, ctx, path + " ")


def test_every_command_is_documented_in_the_readme_and_has_help() -> None:
    text = section(README, "Command line")
    ctx = click.Context(main)
    missing = []
    for path, command in commands(main, ctx):
        assert (command.help or "").strip(), f"`eventrelay {path}` has no help text"
        *group, name = path.split(" ")
        pattern = (
            rf"eventrelay {' '.join(group)} [^\n]*\b{name}\b" if group else rf"eventrelay {name}\b"
        )
        if not re.search(pattern, text):
            missing.append(path)
    assert missing == []


def test_configuration_table_is_one_table() -> None:
    lines = section(README, "Configuration").splitlines()
    rows = [i for i, line in enumerate(lines) if line.startswith("| `EVENTRELAY_")]
    assert rows, "no configuration rows"
    assert rows == list(range(rows[0], rows[0] + len(rows))), "a blank line splits the table"
    assert lines[rows[0] - 1].startswith("|---")


def _cited_paths(text: str) -> Iterator[str]:
    for match in re.finditer(r"\]\(([^)#\s]+)[^)]*\)", text):
        if not match.group(1).startswith(("http://", "https://", "mailto:")):
            yield match.group(1)
    for match in re.finditer(r"`([\w./-]+/[\w.-]+\.(?:md|py|toml|lua|json|ini))`", text):
        yield match.group(1)


def test_docs_cite_only_files_of_the_repository() -> None:
    problems = []
    for doc in DOCS:
        for cited in _cited_paths(doc.read_text()):
            if cited.startswith("bench/results/"):
                continue  # written by `make bench`
            bases = [doc.parent, ROOT, ROOT / "src" / "eventrelay"]
            candidates = [(base / cited).resolve() for base in bases]
            inside = [c for c in candidates if c.is_relative_to(ROOT)]
            if not any(c.exists() for c in inside):
                problems.append(f"{doc.relative_to(ROOT)}: {cited}")
    assert problems == []


def test_procfile_workers_serve_health_and_metrics() -> None:
    deployment = (ROOT / "docs" / "deployment.md").read_text()
    block = section(deployment, "Procfile").split("```", 2)[1]
    [worker] = [line for line in block.splitlines() if line.startswith("worker:")]
    assert "--port $PORT" in worker

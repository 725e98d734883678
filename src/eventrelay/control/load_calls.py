"""Admin "preview", "test" and the extras check for the file-loading types (S3, warehouses).

- preview: the batch as `write` makes it: the object (key, size, its first lines) or the rows
  per table; nothing is uploaded.
- test: the loader's `check`, which creates and drops a scratch object (an S3 object, a table)
  with the integration's credentials, and reports each step with the service's answer.
- a type whose client libraries are an optional extra that is not installed is refused at
  creation with a 422 naming the extra.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from eventrelay.destinations.base import Destination, EventRecord, VendorSettings
from eventrelay.destinations.loading import FileDestination, WriteContext
from eventrelay.destinations.tables import dumps
from eventrelay.errors import invalid
from eventrelay.loaders import LoaderContext, LoadError, extra_installed, loader_for
from eventrelay.logs import redact
from eventrelay.runtime import Runtime

PREVIEW_ROWS = 20


def require_extra(destination: Destination) -> None:
    if isinstance(destination, FileDestination) and not extra_installed(destination):
        raise invalid(
            "type",
            f"{destination.type} needs optional dependencies that are not installed:"
            f" pip install 'eventrelay[{destination.extra}]'",
        )


def _masked(value: Any, secrets: Sequence[str]) -> Any:
    return orjson.loads(redact(dumps(value).decode(), secrets))


def preview(
    destination: FileDestination,
    row: Mapping[str, Any],
    settings: VendorSettings,
    records: Sequence[EventRecord],
    positions: Sequence[int],
    filtered: list[dict[str, Any]],
    secrets: Sequence[str],
) -> dict[str, Any]:
    ctx = WriteContext(datetime.now(UTC), row["source_id"], row["id"])
    written = destination.write(records, settings, ctx)
    objects = []
    for item in written.objects:
        body = gzip.decompress(item.body) if item.content_type == "application/gzip" else item.body
        lines = [orjson.loads(line) for line in body.splitlines()[:PREVIEW_ROWS]]
        objects.append(
            {
                "key": item.key,
                "content_type": item.content_type,
                "bytes": len(item.body),
                "lines": _masked(lines, secrets),
            }
        )
    tables = [
        {
            "table": table.table,
            "columns": {name: kind.value for name, kind in table.columns.items()},
            "row_count": len(table.rows),
            "rows": _masked(table.rows[:PREVIEW_ROWS], secrets),
        }
        for table in written.tables
    ]
    return {
        "sent": False,
        "batch_id": written.id,
        "requests": [],
        "objects": objects,
        "tables": tables,
        "skipped": [
            {"index": positions[i], "reason": reason}
            for i, reason in sorted(written.skipped.items())
        ],
        "filtered": filtered,
    }


async def test(
    rt: Runtime,
    destination: FileDestination,
    row: Mapping[str, Any],
    settings: VendorSettings,
    secrets: Sequence[str],
) -> dict[str, Any]:
    ctx = LoaderContext(row["id"], row["source_id"], rt.settings.vendor_base_urls, timeout=30.0)
    try:
        loader = loader_for(destination, settings, ctx)
    except LoadError as exc:
        return {"ok": False, "results": [_failed("load", exc.reason, exc.message, secrets)]}
    try:
        steps = await loader.check()
    finally:
        await loader.close()
    results = [
        {
            "request": {"method": "CHECK", "url": redact(step.step, secrets)},
            "response": None,
            "outcome": {
                "kind": "success" if step.ok else "auth",
                "reason": None if step.ok else "check_failed",
                "message": redact(step.message, secrets) if step.message else None,
            },
        }
        for step in steps
    ]
    return {"ok": bool(steps) and all(s.ok for s in steps), "results": results, "skipped": []}


def _failed(step: str, reason: str, message: str, secrets: Sequence[str]) -> dict[str, Any]:
    return {
        "request": {"method": "CHECK", "url": step},
        "response": None,
        "outcome": {"kind": "auth", "reason": reason, "message": redact(message, secrets)},
    }

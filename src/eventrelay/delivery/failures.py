"""Recent failed attempts per integration: when, what the vendor said, what was sent.

Secrets are redacted (every credential the integration's requests carry: stored secrets,
OAuth access tokens, the credential part of auth headers; see logs.Redactor), bodies truncated
and made storable (no NUL). Writes are batched once a second and sampled (at most a few per
integration per second), so a vendor outage cannot flood the database; a row the database
refuses is stored without its bodies, or dropped, never taking the rest of the flush with it.
Old rows are pruned.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select

from eventrelay.destinations.base import HttpRequest, HttpResponse
from eventrelay.ids import new_id
from eventrelay.logs import Redactor, sanitize
from eventrelay.store.db import Database
from eventrelay.store.tables import delivery_failures
from eventrelay.tasks import stop_task
from eventrelay.timeutil import utcnow

log = logging.getLogger("eventrelay.failures")
MAX_BODY = 4096
MAX_REASON = 64  # delivery_failures.reason
PER_INTEGRATION_PER_FLUSH = 5
KEEP_PER_INTEGRATION = 1000
KEEP_FOR = timedelta(days=7)
# Header values never shown, whatever they hold (credentials of any vendor's scheme).
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "access-token", "x-api-key"}
)


def _text(body: bytes | None, redactor: Redactor) -> str | None:
    if body is None:
        return None
    text = body[:MAX_BODY].decode("utf-8", errors="replace")
    if len(body) > MAX_BODY:
        text += f"... ({len(body)} bytes)"
    return redactor.text(text)


def mask_header(name: str, value: str, redactor: Redactor) -> str:
    """A credential header keeps only its scheme ("Bearer ***"); others are redacted by value."""
    if name.lower() in SENSITIVE_HEADERS:
        scheme, _, rest = value.partition(" ")
        return f"{scheme} ***" if rest and scheme.isalpha() and len(scheme) < 16 else "***"
    return redactor.value(value)


def credentials_of(request: HttpRequest) -> list[str]:
    """The credentials a request carries in its auth headers, as sent: derived ones included
    (a Basic pair in base64, a signed token), so a vendor echoing them is redacted too."""
    found: list[str] = []
    for name, value in request.headers.items():
        if name.lower() in SENSITIVE_HEADERS and value:
            found.append(value)
            _, _, rest = value.partition(" ")
            if rest:
                found.append(rest.strip())
    return found


def _headers(headers: Mapping[str, str], redactor: Redactor) -> dict[str, str]:
    return {sanitize(k): mask_header(k, v, redactor) for k, v in headers.items()}


def describe_request(request: HttpRequest, redactor: Redactor) -> dict[str, Any]:
    return {
        "method": request.method,
        "url": redactor.text(request.url),
        "headers": _headers(request.headers, redactor),
        "body": _text(request.body, redactor),
    }


def describe_response(response: HttpResponse, redactor: Redactor) -> dict[str, Any]:
    return {
        "status": response.status,
        "headers": _headers(response.headers, redactor),
        "body": _text(response.body, redactor),
    }


class FailureLog:
    def __init__(self, db: Database, interval: float = 1.0) -> None:
        self._db = db
        self._interval = interval
        self._pending: list[dict[str, Any]] = []
        self._counts: dict[str, int] = defaultdict(int)
        self._task: asyncio.Task[None] | None = None

    def record(
        self,
        integration_id: str,
        outcome: str,
        reason: str | None,
        error: str | None,
        attempt: int,
        message_ids: Sequence[str],
        request: dict[str, Any] | None,
        response: dict[str, Any] | None,
    ) -> None:
        if self._counts[integration_id] >= PER_INTEGRATION_PER_FLUSH:
            return
        self._counts[integration_id] += 1
        self._pending.append(
            {
                "id": new_id("fail"),
                "integration_id": integration_id,
                "created_at": utcnow(),
                "outcome": outcome,
                "reason": sanitize(reason)[:MAX_REASON] if reason else reason,
                "status_code": response.get("status") if response else None,
                "error": sanitize(error) if error else error,
                "attempt": attempt,
                "event_count": len(message_ids),
                "message_ids": [sanitize(m) for m in message_ids[:100]],
                "request": request,
                "response": response,
            }
        )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="failures-flush")

    async def close(self) -> None:
        await stop_task(self._task)
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception as exc:
                log.warning("failure log flush failed", extra={"error_type": type(exc).__name__})

    async def flush(self) -> None:
        self._counts.clear()
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        try:
            async with self._db.transaction() as conn:
                await conn.execute(delivery_failures.insert(), rows)
        except Exception:
            # One row the database refuses must not cost the others (other integrations'
            # included): store them one by one, a refused one without its bodies, or not at all.
            for row in rows:
                await self._insert_alone(row)

    async def _insert_alone(self, row: dict[str, Any]) -> None:
        bare = {**row, "request": None, "response": None, "error": "(not storable)"}
        error = ""
        for attempt in (row, bare):
            try:
                async with self._db.transaction() as conn:
                    await conn.execute(delivery_failures.insert(), [attempt])
                return
            except Exception as exc:
                error = type(exc).__name__
        log.warning(
            "failure record dropped",
            extra={"integration_id": row["integration_id"], "error_type": error},
        )

    async def prune(self) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                delete(delivery_failures).where(
                    delivery_failures.c.created_at < utcnow() - KEEP_FOR
                )
            )
            crowded = await conn.execute(
                select(delivery_failures.c.integration_id)
                .group_by(delivery_failures.c.integration_id)
                .having(func.count() > KEEP_PER_INTEGRATION)
            )
            for (integration_id,) in crowded.fetchall():
                cutoff = (
                    await conn.execute(
                        select(delivery_failures.c.pk)
                        .where(delivery_failures.c.integration_id == integration_id)
                        .order_by(delivery_failures.c.pk.desc())
                        .offset(KEEP_PER_INTEGRATION)
                        .limit(1)
                    )
                ).scalar()
                if cutoff is not None:
                    await conn.execute(
                        delete(delivery_failures).where(
                            delivery_failures.c.integration_id == integration_id,
                            delivery_failures.c.pk <= cutoff,
                        )
                    )

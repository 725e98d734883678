"""Admin "preview" (the exact requests eventrelay would send, nothing sent) and "test" (one
test event sent the cheapest way the vendor offers, the vendor's answer returned)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from eventrelay.control import load_calls
from eventrelay.control.integrations import destination_for
from eventrelay.control.rules import present_decision
from eventrelay.core.consent import allows, granted_categories
from eventrelay.core.events import InvalidEvent, Received, normalize
from eventrelay.delivery.failures import credentials_of, mask_header
from eventrelay.delivery.sender import HttpSender, TransportError
from eventrelay.delivery.stored_config import secret_values, stored_rules, vendor_settings
from eventrelay.delivery.tokens import TokenCache, TokenError
from eventrelay.destinations.base import (
    BuildContext,
    BuildResult,
    Destination,
    EventRecord,
    HttpRequest,
    HttpResponse,
    Note,
    VendorSettings,
    build_context,
)
from eventrelay.destinations.loading import FileDestination
from eventrelay.errors import ApiError, not_found, validation_details, validation_error
from eventrelay.logs import Redactor, redact
from eventrelay.routing.selection import selection_of, type_keys
from eventrelay.rules import (
    ORG_RULE,
    Decision,
    OrgRules,
    RulesInvalid,
    compile_org_rules,
    compile_rules,
)
from eventrelay.runtime import Runtime
from eventrelay.store import integrations as store
from eventrelay.store import orgs
from eventrelay.store.tables import sources as sources_table

MAX_PREVIEW_BODY = 64 * 1024


class PreviewBody(BaseModel):
    """`{"message": {...}}` or `{"batch": [...]}`. The wrapper was once `event`, which reads
    like Segment's own `event` field (a track call's name); `event` is still accepted, deprecated."""

    model_config = ConfigDict(extra="forbid")
    message: dict[str, Any] | None = Field(
        default=None, description="One Segment-spec event (a track, identify, page... call)."
    )
    batch: Annotated[list[dict[str, Any]], Field(max_length=100)] | None = Field(
        default=None, description="Or several (at most 100)."
    )
    event: dict[str, Any] | None = Field(
        default=None,
        description='Deprecated: the former name of "message".',
        json_schema_extra={"deprecated": True},
    )

    def events(self) -> tuple[str, list[dict[str, Any]]]:
        """(field name for error paths, the events)."""
        given = [name for name in ("message", "batch", "event") if getattr(self, name) is not None]
        if len(given) > 1:
            raise validation_error(
                [
                    {
                        "field": given[1],
                        "message": f"give one of message or batch, not {given[0]} too",
                    }
                ]
            )
        if self.batch is not None:
            return "batch", self.batch
        if self.event is not None:
            return "event", [self.event]
        if self.message is not None:
            return "message", [self.message]
        raise validation_error([{"field": "message", "message": "give a message or a batch"}])


def context_for(rt: Runtime, type_: str, **kwargs: Any) -> BuildContext:
    return build_context(type_, rt.settings.vendor_base_urls, **kwargs)


def _masked_body(body: bytes | None, redactor: Redactor) -> Any:
    if body is None:
        return None
    text = redactor.text(body[:MAX_PREVIEW_BODY].decode("utf-8", errors="replace"))
    with contextlib.suppress(orjson.JSONDecodeError):
        return orjson.loads(text)
    return text


def present_request(request: HttpRequest, secrets: Sequence[str]) -> dict[str, Any]:
    redactor = Redactor(secrets).with_extra(*credentials_of(request))
    return {
        "method": request.method,
        "url": redactor.text(request.url),
        "headers": {k: mask_header(k, v, redactor) for k, v in request.headers.items()},
        "body": _masked_body(request.body, redactor),
        "event_indices": list(request.event_indices),
    }


def present_response(
    response: HttpResponse, secrets: Sequence[str], request: HttpRequest
) -> dict[str, Any]:
    redactor = Redactor(secrets).with_extra(*credentials_of(request))
    return {"status": response.status, "body": _masked_body(response.body, redactor)}


async def _load(
    rt: Runtime, org_id: str, integration_id: str
) -> tuple[Mapping[str, Any], Destination, VendorSettings, tuple[str, ...], str]:
    async with rt.db.read() as conn:
        row = await store.get(conn, org_id, integration_id)
        if row is None:
            raise not_found("integration")
        source = (
            await conn.execute(sources_table.select().where(sources_table.c.id == row["source_id"]))
        ).first()
    destination = destination_for(row["type"])
    if not destination.delivers:
        raise ApiError(
            409, "not_available", f"delivery to {destination.title} is not available yet"
        )
    try:
        settings = vendor_settings(rt.vault, row)
    except ValidationError as exc:
        # Saved before a stricter check: say what to fix rather than fail the request.
        details = validation_details(exc.errors(), "config")
        raise ApiError(
            409,
            "invalid_stored_config",
            "the stored configuration is no longer valid; update the integration",
            details,
        ) from None
    secrets = secret_values(rt.vault, row)
    return row, destination, settings, secrets, source.consent_default if source else "deny"


def _decide(raw: Any, events: list[dict[str, Any]]) -> list[Decision]:
    """The stored rules applied to `events` (in a worker thread)."""
    try:
        compiled = compile_rules(raw, True, False)
    except RulesInvalid as exc:
        details = [
            {"field": f"config.rules.{e.field}".rstrip("."), "message": e.message}
            for e in exc.errors
        ]
        raise ApiError(
            409,
            "invalid_stored_config",
            "the stored rules are no longer valid; update the integration",
            details,
        ) from None
    try:
        return compiled.apply_many(events)
    finally:
        compiled.close()


async def _org_rules(rt: Runtime, org_id: str) -> OrgRules | None:
    """The organisation's rules, as ingest applies them before any integration's."""
    async with rt.db.read() as conn:
        org = await orgs.get(conn, org_id)
    if org is None or not org["rules"]:
        return None
    try:
        compiled = compile_org_rules(org["rules"])
    except RulesInvalid as exc:
        details = [
            {"field": f"rules.{e.field}".rstrip("."), "message": e.message} for e in exc.errors
        ]
        raise ApiError(
            409,
            "invalid_stored_config",
            "the organisation's stored rules are no longer valid; save them again",
            details,
        ) from None
    return None if compiled.empty else compiled


async def preview(
    rt: Runtime, org_id: str, integration_id: str, body: PreviewBody
) -> dict[str, Any]:
    row, destination, settings, secrets, consent_default = await _load(rt, org_id, integration_id)
    org_rules = await _org_rules(rt, org_id)
    wrapper, raw_events = body.events()
    if not raw_events:
        raise validation_error([{"field": wrapper, "message": "give at least one event"}])
    received = Received.at(datetime.now(UTC))
    select_keys = type_keys(row["type"], destination.title)
    raw_rules = stored_rules(row)
    records: list[EventRecord] = []
    positions: list[int] = []
    filtered: list[dict[str, Any]] = []
    ruled: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    passed: list[tuple[int, dict[str, Any], EventRecord]] = []
    for index, raw in enumerate(raw_events):
        where = f"batch.{index}" if wrapper == "batch" else wrapper
        try:
            event = normalize(dict(raw), received)
            if org_rules is not None:  # as at ingest: before routing and the integration's rules
                kept, rule = org_rules.apply(event)
                if kept is None:
                    filtered.append({"index": index, "reason": ORG_RULE, "rule": rule})
                    continue
                event = kept
            record = EventRecord.from_event(event)
        except InvalidEvent as exc:
            errors.append(
                {"field": f"{where}.{exc.error.field}".rstrip("."), "message": exc.error.message}
            )
            continue
        except Exception:
            # As at ingest: too deeply nested or a lone surrogate (orjson refuses both), or
            # anything else one event trips; a 422 naming it, never a 500.
            errors.append({"field": where, "message": "the event cannot be stored as JSON"})
            continue
        selection = selection_of(event)
        if selection is not None and not selection.allows(row["name"], select_keys):
            filtered.append({"index": index, "reason": "integrations_object"})
            continue
        if not allows(row["consent_categories"], granted_categories(event), consent_default):
            filtered.append({"index": index, "reason": "consent"})
            continue
        passed.append((index, event, record))
    if errors:
        raise validation_error(errors)
    if raw_rules is None:
        records = [record for _, _, record in passed]
        positions = [index for index, _, _ in passed]
    else:
        # As the worker does: which rule matched, and the event after filters and
        # transformation, before the vendor request (a function runs in its sandbox, off
        # the event loop).
        decisions = await asyncio.to_thread(_decide, raw_rules, [e for _, e, _ in passed])
        for (index, _, record), decision in zip(passed, decisions, strict=True):
            ruled.append(present_decision(index, decision))
            if decision.filtered:
                filtered.append({"index": index, "reason": decision.reason, "rule": decision.rule})
                continue
            outs = (
                [EventRecord.from_event(e) for e in decision.events]
                if decision.changed
                else [record]
            )
            records.extend(outs)
            positions.extend([index] * len(outs))
        filtered.sort(key=lambda f: int(f["index"]))
    extra = {"rules": ruled} if raw_rules is not None else {}
    if isinstance(destination, FileDestination):  # S3, warehouses: the staged batch
        staged = load_calls.preview(
            destination, row, settings, records, positions, filtered, secrets
        )
        return {**staged, **extra}
    # An OAuth vendor's access token is obtained at delivery time; the preview shows a mask.
    token = "***" if destination.token_request(settings, context_for(rt, row["type"])) else None
    built = _build(destination, records, settings, context_for(rt, row["type"], access_token=token))
    return {
        **extra,
        "sent": False,
        "requests": [_renumbered(present_request(r, secrets), positions) for r in built.requests],
        "skipped": [
            {"index": positions[i], "reason": reason} for i, reason in sorted(built.skipped.items())
        ],
        "filtered": filtered,
        "notes": present_notes(built, positions),
    }


def present_notes(built: BuildResult, positions: Sequence[int] | None = None) -> list[Any]:
    """Per event, what the requests leave out and why (`Note`), in event order."""
    return [
        {"index": positions[i] if positions is not None else i, **_note(note)}
        for i, notes in sorted(built.notes.items())
        for note in notes
    ]


def _note(note: Note) -> dict[str, str]:
    return {"field": note.field, "reason": note.reason, "message": note.message}


def _renumbered(request: dict[str, Any], positions: list[int]) -> dict[str, Any]:
    request["event_indices"] = [positions[i] for i in request["event_indices"]]
    return request


def _build(
    destination: Destination,
    records: Sequence[EventRecord],
    settings: VendorSettings,
    ctx: BuildContext,
    test: bool = False,
) -> BuildResult:
    try:
        if test:
            return destination.test_build(settings, ctx)
        return destination.build(records, settings, ctx)
    except Exception as exc:
        raise ApiError(
            422, "cannot_build", f"the request could not be built: {type(exc).__name__}"
        ) from None


async def send_test(rt: Runtime, org_id: str, integration_id: str) -> dict[str, Any]:
    row, destination, settings, secrets, _ = await _load(rt, org_id, integration_id)
    if isinstance(destination, FileDestination):  # S3, warehouses: create and drop a scratch object
        return await load_calls.test(rt, destination, row, settings, secrets)
    # A sender of its own: a test call is rare, and the API may run without delivery here.
    sender = HttpSender(
        rt.settings.http_timeout_seconds, rt.settings.allow_private_targets, rt.resolver
    )
    await sender.start()
    try:
        ctx = context_for(rt, row["type"], test_mode=True)
        tokens = TokenCache(destination, settings, sender)
        if tokens.needed(ctx):
            try:
                token = await tokens.get(ctx)
                secrets = (*secrets, token)  # never shown back, wherever it appears
                ctx = context_for(rt, row["type"], test_mode=True, access_token=token)
            except TokenError as exc:
                return {
                    "ok": False,
                    "results": [
                        {
                            "request": None,
                            "response": None,
                            "outcome": {
                                "kind": "auth",
                                "reason": "oauth_token",
                                "message": redact(exc.message, secrets),
                            },
                        }
                    ],
                }
        built = _build(destination, [], settings, ctx, test=True)
        results: list[dict[str, Any]] = []
        for request in built.requests:
            try:
                response = await sender.send(request)
                outcome = destination.classify(request, response)[0]
            except TransportError as exc:
                results.append(
                    {
                        "request": present_request(request, secrets),
                        "response": None,
                        "outcome": {
                            "kind": "retry",
                            "reason": exc.reason,
                            "message": redact(exc.message, secrets),
                        },
                    }
                )
                continue
            except Exception as exc:
                # The request could not be sent (a header the HTTP client refuses) or the
                # answer not read: a failed test, not a server error.
                results.append(
                    {
                        "request": present_request(request, secrets),
                        "response": None,
                        "outcome": {
                            "kind": "retry",
                            "reason": "internal_error",
                            "message": f"the request failed with {type(exc).__name__}",
                        },
                    }
                )
                continue
            results.append(
                {
                    "request": present_request(request, secrets),
                    "response": present_response(response, secrets, request),
                    "outcome": {
                        "kind": outcome.kind.value,
                        "reason": outcome.reason,
                        "message": redact(outcome.message or "", secrets) or None,
                    },
                }
            )
    finally:
        await sender.close()
    ok = bool(results) and all(r["outcome"]["kind"] == "success" for r in results)
    skipped = [{"index": i, "reason": reason} for i, reason in sorted(built.skipped.items())]
    return {"ok": ok, "results": results, "skipped": skipped, "notes": present_notes(built)}

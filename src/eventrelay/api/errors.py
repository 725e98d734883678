"""Rendering errors as the envelope {"error": {"code", "message", "details"?}}."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from eventrelay.errors import ApiError, message_for, validation_error
from eventrelay.store.vault import VaultError

log = logging.getLogger("eventrelay.api")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def error_body(code: str, message: str, details: Sequence[Mapping[str, Any]] | None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = list(details)
    return orjson.dumps({"error": error})


def error_response(
    status: int,
    code: str,
    message: str,
    details: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(
        error_body(code, message, details),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_request: Request, exc: RequestValidationError) -> Response:
        details = []
        for error in exc.errors():
            loc = list(error.get("loc", ()))
            if loc and loc[0] in ("body", "query", "path", "header"):
                loc = loc[1:]
            if error.get("type") == "json_invalid":
                return error_response(400, "invalid_json", "request body is not valid JSON")
            field = ".".join(str(p) for p in loc) or "body"
            details.append({"field": field, "message": message_for(error)})
        err = validation_error(details)
        return error_response(err.status, err.code, err.message, err.details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, headers=exc.headers)

    @app.exception_handler(VaultError)
    async def _vault(_request: Request, _exc: VaultError) -> Response:
        # Not a bug to hide behind a 500: the keys this process holds do not open the stored
        # credentials (rotated elsewhere with keys from the environment). Say how to fix it.
        log.error("stored secrets cannot be decrypted with this process's keys")
        return error_response(
            503,
            "secrets_unavailable",
            "stored credentials cannot be decrypted with this server's keys; if "
            "`eventrelay secrets rotate` ran with a new EVENTRELAY_SECRET_KEY, restart this server "
            "with the same key list (newest first)",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Type only: the message or a traceback could carry secrets or internals.
        log.error(
            "unhandled error", extra={"error_type": type(exc).__name__, "path": request.url.path}
        )
        return error_response(500, "internal_error", "internal error")

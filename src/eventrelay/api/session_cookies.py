"""The console's session in cookies, out of reach of the page's scripts.

- `er_access`: the signed access token; httpOnly, SameSite=Strict, Path=/.
- `er_refresh`: the refresh token; httpOnly, SameSite=Strict, sent only to /v1/admin/auth.
- `er_csrf`: the session's CSRF token, readable by the console's script, which echoes it in an
  `X-CSRF-Token` header on every request that changes something. It is an HMAC of the session id
  (not a random value the server merely compares with the cookie), so a cookie planted by a
  sibling site cannot match; SameSite=Strict is the first line, this the second.
All are Secure when the console is reached over HTTPS (directly or through a trusted proxy)."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from eventrelay.api.client_ip import ClientAddress
from eventrelay.control.auth import Issued, csrf_token
from eventrelay.runtime import Runtime

ACCESS = "er_access"
REFRESH = "er_refresh"
CSRF = "er_csrf"
CSRF_HEADER = "x-csrf-token"
REFRESH_PATH = "/v1/admin/auth"
# The console asks for cookies with this header on login; a cross-site form cannot send it, so
# nobody can log a victim's browser in to another account (login CSRF).
MODE_HEADER = "x-eventrelay-session"

_CLIENTS: dict[int, ClientAddress] = {}


def _clients(rt: Runtime) -> ClientAddress:
    key = id(rt)
    if key not in _CLIENTS:
        _CLIENTS[key] = ClientAddress(rt.settings.trusted_proxy_networks)
    return _CLIENTS[key]


def client_ip(rt: Runtime, request: Request) -> str | None:
    return _clients(rt).of(request.scope)


def is_https(rt: Runtime, request: Request) -> bool:
    host = request.headers.get("host")
    origin = _clients(rt).origin(request.scope, host.encode("latin-1") if host else None)
    return origin.startswith("https://")


def wants_cookies(request: Request) -> bool:
    return request.headers.get(MODE_HEADER, "").strip().lower() == "cookie"


def set_session(rt: Runtime, request: Request, response: Response, issued: Issued) -> str:
    """Set the three cookies; returns the CSRF token (also in the response body)."""
    secure = is_https(rt, request)
    session_seconds = int(rt.settings.session_days * 86400)
    csrf = csrf_token(rt, issued.session_id)
    response.set_cookie(
        ACCESS,
        issued.access_token,
        max_age=rt.settings.access_token_seconds,
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    response.set_cookie(
        REFRESH,
        issued.refresh_token,
        max_age=session_seconds,
        path=REFRESH_PATH,
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    response.set_cookie(
        CSRF, csrf, max_age=session_seconds, path="/", secure=secure, samesite="strict"
    )
    return csrf


def clear_session(rt: Runtime, request: Request, response: Response) -> None:
    secure = is_https(rt, request)
    for name, path, http_only in (
        (ACCESS, "/", True),
        (REFRESH, REFRESH_PATH, True),
        (CSRF, "/", False),
    ):
        response.delete_cookie(
            name, path=path, secure=secure, httponly=http_only, samesite="strict"
        )

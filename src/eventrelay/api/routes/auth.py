"""/v1/admin/auth: console sign-in (login, refresh, logout), the caller, own password, and
the one-time setup link of invitations and resets.

API clients get the tokens in the body. The console sends `X-EventRelay-Session: cookie` and
gets them in httpOnly cookies instead (api/session_cookies.py): its scripts never see them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from eventrelay.api import session_cookies as cookies
from eventrelay.api.account_schemas import Me, Session, User
from eventrelay.api.deps import Principal, Viewer, runtime_of
from eventrelay.api.schemas import ERROR_RESPONSES, ErrorEnvelope
from eventrelay.control import auth
from eventrelay.control import users as control
from eventrelay.control.users import PasswordChange, PasswordSetup
from eventrelay.errors import ApiError
from eventrelay.store import users as user_store

router = APIRouter(prefix="/v1/admin/auth", tags=["auth"], responses=ERROR_RESPONSES)
_RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorEnvelope, "description": "Too many failed logins."}
}
_NO_AUTH: dict[str, Any] = {"security": []}


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=256)


class RefreshBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: str | None = Field(
        default=None, max_length=100, description="Absent: the session cookie is used."
    )


def _session_response(request: Request, issued: auth.Issued, cookie_mode: bool) -> Response:
    rt = runtime_of(request)
    body: dict[str, Any] = {
        "user": control.present(issued.user),
        "token_type": "Bearer",
        "expires_in": rt.settings.access_token_seconds,
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
        "csrf_token": None,
    }
    response = JSONResponse(body, headers={"Cache-Control": "no-store"})
    if cookie_mode:
        csrf = cookies.set_session(rt, request, response, issued)
        body.update(access_token=None, refresh_token=None, csrf_token=csrf)
        response.body = response.render(body)
        response.headers["content-length"] = str(len(response.body))
    return response


@router.post(
    "/login",
    response_model=Session,
    summary="Log in with email and password",
    responses=_RATE_LIMITED,
    openapi_extra=_NO_AUTH,
)
async def login(request: Request, body: Login) -> Response:
    rt = runtime_of(request)
    issued = await auth.login(
        rt,
        body.email,
        body.password,
        cookies.client_ip(rt, request),
        request.headers.get("user-agent"),
    )
    return _session_response(request, issued, cookies.wants_cookies(request))


@router.post(
    "/refresh",
    response_model=Session,
    summary="Trade a refresh token for new tokens (each refresh token works once)",
    openapi_extra=_NO_AUTH,
)
async def refresh(request: Request, body: RefreshBody | None = None) -> Response:
    rt = runtime_of(request)
    secret = body.refresh_token if body else None
    from_cookie = secret is None
    secret = secret or request.cookies.get(cookies.REFRESH)
    if not secret:
        raise ApiError(401, "unauthorized", "no refresh token: log in again")
    issued = await auth.refresh(
        rt,
        secret,
        cookies.client_ip(rt, request),
        request.headers.get("user-agent"),
        csrf=request.headers.get(cookies.CSRF_HEADER),
        check_csrf=from_cookie,
    )
    # A refresh token from a cookie gets its successor in a cookie: never in the body.
    return _session_response(request, issued, from_cookie or cookies.wants_cookies(request))


@router.post(
    "/logout",
    status_code=204,
    summary="End the session (every token of it)",
    openapi_extra=_NO_AUTH,
)
async def logout(request: Request, body: RefreshBody | None = None) -> Response:
    rt = runtime_of(request)
    secret = body.refresh_token if body and body.refresh_token else None
    session_id = None
    if secret:
        session_id = await auth.session_of_refresh(rt, secret)
    elif request.cookies.get(cookies.REFRESH):
        session_id = await auth.session_of_refresh(rt, request.cookies[cookies.REFRESH])
        if session_id and not auth.csrf_valid(
            rt, session_id, request.headers.get(cookies.CSRF_HEADER)
        ):
            raise ApiError(403, "csrf_failed", "missing or wrong X-CSRF-Token header")
    if session_id:
        ip, agent = cookies.client_ip(rt, request), request.headers.get("user-agent")
        await auth.logout(rt, session_id, ip, agent)
    response = Response(status_code=204)
    cookies.clear_session(rt, request, response)
    return response


@router.get("/me", response_model=Me, summary="Who is calling: the user or token, and its role")
async def me(request: Request, who: Principal = Viewer) -> dict[str, Any]:
    user = None
    if who.is_user:
        async with runtime_of(request).db.read() as conn:
            row = await user_store.get(conn, who.org_id, who.actor_id)
        user = control.present(row) if row else None
    return {
        "kind": "user" if who.is_user else "token",
        "id": who.actor_id,
        "name": who.actor_name,
        "role": who.role,
        "user": user,
    }


@router.post("/password", status_code=204, summary="Change your own password")
async def change_password(
    request: Request, body: PasswordChange, who: Principal = Viewer
) -> Response:
    if not who.is_user:
        raise ApiError(409, "conflict", "an API token has no password: log in as a user")
    await control.change_password(runtime_of(request), who.actor, who.session_id, body)
    return Response(status_code=204)


@router.post(
    "/setup",
    response_model=User,
    summary="Choose a password with the one-time link of an invitation or reset",
    openapi_extra=_NO_AUTH,
)
async def setup(request: Request, body: PasswordSetup) -> dict[str, Any]:
    rt = runtime_of(request)
    return await control.complete_setup(
        rt, body, cookies.client_ip(rt, request), request.headers.get("user-agent")
    )

"""Request dependencies: the runtime, the caller (Principal) and role checks.

A caller is an API token (`Authorization: Bearer ert_...`, for machines) or a console user: a
signed access token in the same header, or in the httpOnly session cookie from the console's
login; a cookie-authenticated request that changes something must carry the session's CSRF
token (api/session_cookies.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from eventrelay.api.session_cookies import ACCESS, CSRF_HEADER, client_ip
from eventrelay.control import auth
from eventrelay.core.roles import at_least
from eventrelay.errors import ApiError
from eventrelay.runtime import Runtime
from eventrelay.store import tokens
from eventrelay.store.audit import Actor
from eventrelay.timeutil import utcnow

_TOUCH_EVERY = timedelta(minutes=1)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Principal:
    org_id: str
    actor_id: str  # tok_... (an API token) or usr_... (a console user)
    actor_name: str  # the token's name or the user's email: what the audit log shows
    role: str
    ip: str | None
    user_agent: str | None
    session_id: str | None = None  # a console user's login session

    @property
    def is_user(self) -> bool:
        return self.session_id is not None

    @property
    def actor(self) -> Actor:
        return Actor(self.org_id, self.actor_id, self.actor_name, self.ip, self.user_agent)


def runtime_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


# Declares the bearer scheme in /openapi.json (and on every admin operation); the header is read
# below, so that a missing or bad token gets this API's own 401 envelope.
_BEARER = HTTPBearer(
    scheme_name="adminToken",
    description="An admin API token (ert_...) or a console user's access token (from "
    "/v1/admin/auth/login): Authorization: Bearer <token>.",
    auto_error=False,
)


def _looks_like_jwt(secret: str) -> bool:
    return secret.count(".") == 2 and not secret.startswith(f"{tokens.TOKEN_PREFIX}_")


async def _user_principal(rt: Runtime, request: Request, access_token: str) -> Principal:
    claims = auth.verify_access(rt, access_token)
    user = await auth.session_user(rt, claims)
    return Principal(
        org_id=str(user["org_id"]),
        actor_id=str(user["id"]),
        actor_name=str(user["email"]),
        role=str(user["role"]),
        ip=client_ip(rt, request),
        user_agent=request.headers.get("user-agent"),
        session_id=str(claims["sid"]),
    )


async def principal(
    request: Request, _declared: HTTPAuthorizationCredentials | None = Security(_BEARER)
) -> Principal:
    rt = runtime_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if not header:
        cookie = request.cookies.get(ACCESS)
        if not cookie:
            raise _unauthorized("missing bearer token: send Authorization: Bearer <token>")
        who = await _user_principal(rt, request, cookie)
        if request.method not in _SAFE_METHODS:
            assert who.session_id is not None
            if not auth.csrf_valid(rt, who.session_id, request.headers.get(CSRF_HEADER)):
                raise ApiError(403, "csrf_failed", "missing or wrong X-CSRF-Token header")
        return who
    if scheme.lower() != "bearer" or not secret:
        raise _unauthorized("missing bearer token: send Authorization: Bearer <token>")
    if _looks_like_jwt(secret):
        return await _user_principal(rt, request, secret)
    async with rt.db.read() as conn:
        row = await tokens.find_active(conn, secret)
    if row is None:
        raise _unauthorized("invalid or revoked token")
    now = utcnow()
    if row["last_used_at"] is None or now - row["last_used_at"] > _TOUCH_EVERY:
        async with rt.db.transaction() as conn:
            await tokens.touch(conn, row["id"], now)
    return Principal(
        org_id=row["org_id"],
        actor_id=row["id"],
        actor_name=row["name"],
        role=row["role"],
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


def require(role: str) -> Callable[..., Awaitable[Principal]]:
    async def dependency(who: Principal = Depends(principal)) -> Principal:
        if not at_least(who.role, role):
            kind = "user" if who.is_user else "token"
            raise ApiError(
                403, "forbidden", f"this needs the {role} role or above; the {kind} is {who.role}"
            )
        return who

    return dependency


Viewer = Depends(require("viewer"))
Editor = Depends(require("editor"))
Admin = Depends(require("admin"))
Owner = Depends(require("owner"))

"""Console sign-in: login, refresh, logout.

A login opens a session and returns a short-lived signed access token (a JWT, HS256, PyJWT)
and an opaque refresh token (stored hashed). Each refresh spends its token and hands out the
next one of the same session; a spent token presented again means two parties hold it (it was
stolen), so the whole session is revoked. Requests check the session and the user on every call
(one indexed read, as API tokens do), so logout, deactivation and role changes take effect at
once rather than when the access token expires.

Failed logins are counted per email and per client address in the database (all API processes
share the count); past the limit the answer is 429 whether or not the email exists, and a wrong
email and a wrong password get the same answer in about the same time (a dummy hash is
verified)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil
from typing import Any

import jwt

from eventrelay.control.passwords import verify_password
from eventrelay.errors import ApiError
from eventrelay.ids import new_secret_token
from eventrelay.runtime import Runtime
from eventrelay.store import audit, sessions, users
from eventrelay.store.audit import Actor
from eventrelay.timeutil import utcnow

ISSUER = "eventrelay"
AUDIENCE = "eventrelay-admin"
REFRESH_PREFIX = "erf"
_ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class Issued:
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    session_id: str
    user: Mapping[str, Any]


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def normalise_email(email: str) -> str:
    return email.strip().lower()


def user_actor(user: Mapping[str, Any], ip: str | None, agent: str | None) -> Actor:
    return Actor(str(user["org_id"]), str(user["id"]), str(user["email"]), ip, agent)


# Access tokens ------------------------------------------------------------------------------


def _sign_access(rt: Runtime, user: Mapping[str, Any], session_id: str) -> tuple[str, datetime]:
    now = utcnow()
    expires = now + timedelta(seconds=rt.settings.access_token_seconds)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": user["id"],
        "org": user["org_id"],
        "sid": session_id,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
    }
    key = rt.vault.derived_keys("console-access-token")[0]
    return jwt.encode(claims, key, algorithm=_ALGORITHM), expires


def verify_access(rt: Runtime, token: str) -> dict[str, Any]:
    """The claims of a valid, unexpired access token; 401 otherwise (saying which)."""
    for key in rt.vault.derived_keys("console-access-token"):
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[_ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "sub", "sid", "iat"]},
            )
            return claims
        except jwt.ExpiredSignatureError:
            raise _unauthorized("access token expired: refresh it") from None
        except jwt.InvalidSignatureError:
            continue  # signed with another key of the ring, or forged
        except jwt.InvalidTokenError:
            break
    raise _unauthorized("invalid access token")


# CSRF tokens: bound to the session, so a cookie planted by a sibling site cannot pass.


def csrf_token(rt: Runtime, session_id: str) -> str:
    key = rt.vault.derived_keys("console-csrf")[0]
    return _mac(key, session_id)


def csrf_valid(rt: Runtime, session_id: str, presented: str | None) -> bool:
    if not presented:
        return False
    return any(
        hmac.compare_digest(_mac(key, session_id), presented)
        for key in rt.vault.derived_keys("console-csrf")
    )


def _mac(key: bytes, value: str) -> str:
    digest = hmac.new(key, value.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


# Login, refresh, logout ---------------------------------------------------------------------


async def _check_rate(rt: Runtime, keys: list[tuple[str, int]]) -> None:
    since = utcnow() - timedelta(seconds=rt.settings.login_window_seconds)
    async with rt.db.read() as conn:
        for key, limit in keys:
            if await sessions.count_failures(conn, key, since) >= limit:
                oldest = await sessions.oldest_failure(conn, key, since) or utcnow()
                wait = rt.settings.login_window_seconds - (utcnow() - oldest).total_seconds()
                seconds = max(1, ceil(wait))
                raise ApiError(
                    429,
                    "rate_limited",
                    f"too many failed logins: try again in {seconds} seconds",
                    headers={"Retry-After": str(seconds)},
                )


async def _open_session(
    rt: Runtime, user: Mapping[str, Any], ip: str | None, agent: str | None
) -> Issued:
    expires = utcnow() + timedelta(days=rt.settings.session_days)
    refresh = new_secret_token(REFRESH_PREFIX)
    async with rt.db.transaction() as conn:
        session_id = await sessions.create(conn, str(user["id"]), expires, ip, agent)
        await sessions.add_refresh_token(conn, session_id, refresh)
        await users.touch_login(conn, str(user["id"]), utcnow())
        await sessions.clear_failures(conn, f"account:{user['email']}")
        await audit.record(
            conn, user_actor(user, ip, agent), "user.login", "user", str(user["id"]), {}
        )
    access, access_expires = _sign_access(rt, user, session_id)
    return Issued(access, access_expires, refresh, session_id, user)


async def login(
    rt: Runtime, email: str, password: str, ip: str | None, agent: str | None
) -> Issued:
    email = normalise_email(email)
    account_key, address_key = f"account:{email}"[:300], f"address:{ip or 'unknown'}"
    await _check_rate(
        rt,
        [
            (account_key, rt.settings.login_failures_per_account),
            (address_key, rt.settings.login_failures_per_address),
        ],
    )
    async with rt.db.read() as conn:
        user = await users.by_email(conn, email)
    usable = user is not None and user["status"] == "active"
    stored = user["password_hash"] if usable and user is not None else None
    if await verify_password(stored, password) and user is not None:
        return await _open_session(rt, user, ip, agent)
    forget = utcnow() - timedelta(seconds=rt.settings.login_window_seconds)
    async with rt.db.transaction() as conn:
        await sessions.record_failure(conn, [account_key, address_key], forget)
        if user is not None:
            actor = user_actor(user, ip, agent)
            await audit.record(conn, actor, "user.login_failed", "user", str(user["id"]), {})
    raise _unauthorized("wrong email or password")


async def refresh(
    rt: Runtime,
    secret: str,
    ip: str | None,
    agent: str | None,
    csrf: str | None = None,
    check_csrf: bool = False,
) -> Issued:
    """Spend `secret`, return the session's next tokens. `check_csrf`: the token came from a
    cookie, so the request must also carry the session's CSRF token."""
    now = utcnow()
    async with rt.db.transaction() as conn:
        row = await sessions.find_refresh_token(conn, secret)
        if row is None:
            raise _unauthorized("invalid refresh token")
        if check_csrf and not csrf_valid(rt, str(row["session_id"]), csrf):
            raise ApiError(403, "csrf_failed", "missing or wrong X-CSRF-Token header")
        reused = row["used_at"] is not None or not await sessions.mark_used(conn, row["pk"])
        if reused and row["revoked_at"] is None:
            await sessions.revoke(conn, str(row["session_id"]), "refresh_token_reused")
            user = await users.get_any(conn, str(row["user_id"]))
            if user is not None:
                await audit.record(
                    conn,
                    user_actor(user, ip, agent),
                    "session.revoked",
                    "user",
                    str(user["id"]),
                    {"reason": {"old": None, "new": "refresh token used twice"}},
                )
        user = None if reused else await sessions.active_user(conn, str(row["session_id"]), now)
        if user is not None:
            session_id = str(row["session_id"])
            new_secret = new_secret_token(REFRESH_PREFIX)
            await sessions.add_refresh_token(conn, session_id, new_secret)
    if reused:
        raise _unauthorized("refresh token already used: the session is revoked, log in again")
    if user is None:
        raise _unauthorized("session ended: log in again")
    access, access_expires = _sign_access(rt, user, session_id)
    return Issued(access, access_expires, new_secret, session_id, user)


async def session_of_refresh(rt: Runtime, secret: str) -> str | None:
    async with rt.db.read() as conn:
        row = await sessions.find_refresh_token(conn, secret)
    return str(row["session_id"]) if row else None


async def logout(rt: Runtime, session_id: str, ip: str | None, agent: str | None) -> None:
    async with rt.db.transaction() as conn:
        user = await sessions.active_user(conn, session_id, utcnow())
        await sessions.revoke(conn, session_id, "logout")
        if user is not None:
            actor = user_actor(user, ip, agent)
            await audit.record(conn, actor, "user.logout", "user", str(user["id"]), {})


async def session_user(rt: Runtime, claims: Mapping[str, Any]) -> Mapping[str, Any]:
    """The user behind valid access-token claims, if their session and account are live."""
    async with rt.db.read() as conn:
        user = await sessions.active_user(conn, str(claims["sid"]), utcnow())
    if user is None or user["id"] != claims["sub"]:
        raise _unauthorized("session ended: log in again")
    return user

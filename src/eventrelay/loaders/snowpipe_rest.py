"""The Snowpipe REST API: insertFiles, insertReport and loadHistoryScan, with key-pair JWT auth.

Checked against docs.snowflake.com/en/user-guide/data-load-snowpipe-rest-apis and
.../data-load-snowpipe-rest-overview:
- POST https://<account>.snowflakecomputing.com/v1/data/pipes/<db.schema.pipe>/insertFiles
  ?requestId=<uuid>, JSON body {"files": [{"path": ..., "size": ...}]} with paths relative to
  the pipe's stage; 200 means the files were queued, not loaded.
- GET .../insertReport?requestId= (recent load events of the pipe, about the last 10 minutes)
  and GET .../loadHistoryScan?startTimeInclusive=&endTimeExclusive= (a time range): per file
  `path`, `status` (LOADED, LOAD_IN_PROGRESS, LOAD_FAILED, PARTIALLY_LOADED), `rowsInserted`,
  `firstError`, `firstErrorLineNum`.
- `Authorization: Bearer <JWT>` signed RS256 with the user's private key
  (docs.snowflake.com/en/developer-guide/sql-api/authenticating, the same JWT as for the SQL
  API): `iss` = <ACCOUNT>.<USER>.SHA256:<base64 SHA-256 of the public key's DER>, `sub` =
  <ACCOUNT>.<USER>, `iat`, `exp` at most one hour later; the account is the locator without its
  region (xy12345 for xy12345.us-east-1), upper case.
Refusals: 401/403 (key, user, privileges) and 404 (pipe not visible to the role) put the
integration in error with Snowflake's message; 429 and 5xx are retried.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from eventrelay.destinations.base import OutcomeKind
from eventrelay.loaders.base import LoadError

JWT_LIFETIME = 59 * 60  # Snowflake refuses an `exp` more than one hour after `iat`


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def qualified_user(account: str, user: str) -> str:
    return f"{account.split('.')[0].upper()}.{user.upper()}"


def key_fingerprint(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def make_jwt(account: str, user: str, key: rsa.RSAPrivateKey, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    subject = qualified_user(account, user)
    claims = {
        "iss": f"{subject}.{key_fingerprint(key)}",
        "sub": subject,
        "iat": issued,
        "exp": issued + JWT_LIFETIME,
    }
    head = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    body = _b64url(json.dumps(claims).encode())
    signature = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{_b64url(signature)}"


@dataclass(slots=True)
class FileReport:
    path: str
    status: str  # LOADED, LOAD_IN_PROGRESS, LOAD_FAILED, PARTIALLY_LOADED
    rows_inserted: int = 0
    first_error: str | None = None
    first_error_line: int | None = None


class SnowpipeRest:
    def __init__(
        self, base_url: str, account: str, user: str, key: rsa.RSAPrivateKey, timeout: float
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.account = account
        self.user = user
        self._key = key
        self._token: tuple[str, float] | None = None
        self._client = httpx.AsyncClient(timeout=timeout)

    def _jwt(self) -> str:
        now = time.time()
        if self._token is None or self._token[1] < now:
            self._token = (make_jwt(self.account, self.user, self._key, now), now + 50 * 60)
        return self._token[0]

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, pipe: str, endpoint: str, **kw: Any) -> dict[str, Any]:
        url = f"{self.base_url}/v1/data/pipes/{pipe}/{endpoint}"
        params = {"requestId": str(uuid.uuid4()), **kw.pop("params", {})}
        headers = {"Authorization": f"Bearer {self._jwt()}", "Accept": "application/json"}
        what = f"{endpoint} {pipe}"
        try:
            response = await self._client.request(method, url, params=params, headers=headers, **kw)
        except httpx.TimeoutException:
            raise LoadError(
                OutcomeKind.RETRY, "snowpipe_timeout", f"{what}: timed out", committed=None
            ) from None
        except httpx.HTTPError as exc:
            raise LoadError(
                OutcomeKind.RETRY,
                "snowpipe_unreachable",
                f"{what}: {type(exc).__name__}",
                committed=None,
            ) from None
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
        raise _refusal(response, what)

    async def insert_files(self, pipe: str, files: list[tuple[str, int]]) -> None:
        body = {"files": [{"path": path, "size": size} for path, size in files]}
        await self._call("POST", pipe, "insertFiles", json=body)

    async def insert_report(self, pipe: str) -> list[FileReport]:
        return _files(await self._call("GET", pipe, "insertReport"))

    async def load_history(self, pipe: str, since: str) -> list[FileReport]:
        params = {"startTimeInclusive": since}
        return _files(await self._call("GET", pipe, "loadHistoryScan", params=params))


def _files(body: dict[str, Any]) -> list[FileReport]:
    out = []
    for item in body.get("files") or []:
        line = item.get("firstErrorLineNum")
        out.append(
            FileReport(
                str(item.get("path", "")),
                str(item.get("status", "")),
                int(item.get("rowsInserted") or 0),
                item.get("firstError"),
                int(line) if isinstance(line, int | float) else None,
            )
        )
    return out


def _refusal(response: httpx.Response, what: str) -> LoadError:
    status = response.status_code
    try:
        body = response.json()
        text = str(body.get("message") or f"HTTP {status}")
        if body.get("code"):
            text = f"{body['code']}: {text}"
    except ValueError:
        text = f"HTTP {status}"
    message = f"{what}: {text}"
    reason = f"snowpipe_{status}"
    if status == 429 or status >= 500:
        retry = response.headers.get("Retry-After")
        return LoadError(
            OutcomeKind.RETRY,
            reason,
            message,
            retry_after=float(retry) if retry and retry.isdigit() else None,
            committed=None,
        )
    return LoadError(OutcomeKind.AUTH, reason, message, committed=None)

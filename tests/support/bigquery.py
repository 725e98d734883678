"""The BigQuery stand-in: bqemulator (DuckDB-backed, run from .venv/bqemulator, see the
Makefile) behind a small front of our own that adds what a delivery needs and the emulator
lacks. eventrelay reaches it through EVENTRELAY_VENDOR_BASE_URLS ("bigquery" for the API,
"bigquery.token" for the OAuth token endpoint), the path a real delivery takes.

The front:
- is Google's OAuth token endpoint for service accounts: it checks the JWT's RS256 signature
  against the registered accounts' public keys and answers `invalid_grant` / "Invalid JWT
  Signature." as Google does (developers.google.com/identity/protocols/oauth2/service-account);
- checks the bearer token of every API call (401), and refuses writes by a read-only account
  with BigQuery's `accessDenied` (403);
- imitates insertAll's `insertId` dedup (best effort for about a minute in BigQuery; bqemulator
  has none): a row whose insertId the table saw in the last minute is not inserted again;
- completes tables.patch: bqemulator records new columns in its catalog but not in its storage,
  so the front adds them with ALTER TABLE (one column per statement, all DuckDB takes);
- rewrites the resumable-upload `Location` to itself;
- injects scripted failures (`fail`) and holds requests (`hold`) for the crash tests.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.bqemulator import PROJECT, VENV, Emulator, emulator_available
from tests.support.server import serve_in_thread
from tests.support.services import require

DEDUP_SECONDS = 60.0


def error_body(status: int, reason: str, message: str) -> dict[str, Any]:
    """Google's error envelope (cloud.google.com/bigquery/docs/error-messages)."""
    return {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": {
                400: "INVALID_ARGUMENT",
                401: "UNAUTHENTICATED",
                403: "PERMISSION_DENIED",
            }.get(status, "UNAVAILABLE"),
        }
    }


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    reason: str
    message: str
    times: int


@dataclass
class Hold:
    """Requests matching `path` wait (before reaching the emulator, or `after` it answered)
    until `release`; `arrived` counts them."""

    method: str
    path: re.Pattern[str]
    after: bool = False
    arrived: int = 0
    released: threading.Event = field(default_factory=threading.Event)
    abandoned: bool = False  # released after its client died: answered 503, never forwarded


@dataclass
class ServiceAccount:
    email: str
    key_pem: str
    info: dict[str, Any]

    def json(self) -> str:
        return json.dumps(self.info)


def make_account(email: str) -> ServiceAccount:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": secrets.token_hex(8),
        "private_key": pem,
        "client_email": email,
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    return ServiceAccount(email, pem, info)


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class Front:
    def __init__(self, emulator: str) -> None:
        self.emulator = emulator
        self.url = ""
        self.public_keys: dict[str, Any] = {}
        self.readonly: set[str] = set()
        self.tokens: dict[str, str] = {}
        self.faults: list[Fault] = []
        self.holds: list[Hold] = []
        self.insert_ids: dict[tuple[str, str], float] = {}
        self.calls: list[tuple[str, str]] = []
        self.app = Starlette(
            routes=[
                Route("/token", self.token, methods=["POST"]),
                Route(
                    "/{path:path}", self.forward, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]
                ),
            ]
        )

    def register(self, account: ServiceAccount, readonly: bool = False) -> None:
        key = serialization.load_pem_private_key(account.key_pem.encode(), None)
        self.public_keys[account.email] = key.public_key()
        if readonly:
            self.readonly.add(account.email)

    def fail(
        self,
        method: str,
        path: str,
        times: int,
        status: int = 503,
        reason: str = "backendError",
        message: str = "Error encountered during execution. Retrying may solve the problem.",
    ) -> None:
        self.faults.append(Fault(method, re.compile(path), status, reason, message, times))

    def hold(self, method: str, path: str, after: bool = False) -> Hold:
        held = Hold(method, re.compile(path), after)
        self.holds.append(held)
        return held

    def abandon(self, held: Hold) -> None:
        """Let go of a hold whose client died: the held requests are answered 503 and never
        reach the emulator; later ones pass."""
        held.abandoned = True
        self.holds.remove(held)
        held.released.set()

    def reset(self) -> None:
        for held in self.holds:
            held.released.set()
        self.faults.clear()
        self.holds.clear()
        self.calls.clear()

    # --- OAuth ----------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        try:
            head, body, signature = str(form.get("assertion", "")).split(".")
            claims = json.loads(_b64(body))
            key = self.public_keys[claims["iss"]]
            key.verify(
                _b64(signature), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            if claims["exp"] < time.time():
                raise ValueError("expired")
        except Exception:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
                status_code=400,
            )
        token = "ya29." + secrets.token_urlsafe(24)
        self.tokens[token] = claims["iss"]
        return JSONResponse({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    # --- API ------------------------------------------------------------------------------

    async def forward(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        method = request.method
        self.calls.append((method, path))
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        account = self.tokens.get(bearer)
        if account is None:
            message = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."
            return JSONResponse(error_body(401, "unauthorized", message), status_code=401)
        if account in self.readonly and method != "GET":
            table = "/".join(path.split("/")[4:8:2]) or PROJECT
            message = f"Access Denied: Table {PROJECT}:{table.replace('/', '.')}: Permission bigquery.tables.updateData denied on table (or it may not exist)."
            return JSONResponse(error_body(403, "accessDenied", message), status_code=403)
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and fault.path.search(path):
                fault.times -= 1
                body = error_body(fault.status, fault.reason, fault.message)
                return JSONResponse(body, status_code=fault.status)
        held = next((h for h in self.holds if h.method == method and h.path.search(path)), None)
        if held is not None and not held.after:
            await self._wait(held)
            if held.abandoned:
                return JSONResponse(error_body(503, "backendError", "abandoned"), status_code=503)
        body = await request.body()
        if method == "POST" and path.endswith("/insertAll"):
            response = await self._insert_all(request, path, body)
        else:
            response = await self._send(request, path, body)
            if method in ("PATCH", "PUT") and "/tables/" in path and response.status_code == 200:
                await self._add_columns(path, body)
        if held is not None and held.after:
            await self._wait(held)
        return response

    async def _wait(self, held: Hold) -> None:
        held.arrived += 1
        while not held.released.is_set():
            await asyncio.sleep(0.05)

    async def _send(self, request: Request, path: str, body: bytes) -> Response:
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("host", "content-length", "authorization")
        }
        async with httpx.AsyncClient(timeout=120) as client:
            upstream = await client.request(
                request.method,
                self.emulator + path,
                params=list(request.query_params.multi_items()),
                content=body,
                headers=headers,
            )
        out = {
            k: v
            for k, v in upstream.headers.items()
            if k.lower()
            not in ("content-length", "content-encoding", "transfer-encoding", "connection")
        }
        if "location" in out:
            out["location"] = out["location"].replace(self.emulator, self.url)
        return Response(upstream.content, status_code=upstream.status_code, headers=out)

    async def _insert_all(self, request: Request, path: str, body: bytes) -> Response:
        payload = json.loads(body)
        now = time.monotonic()
        kept: list[int] = []
        for index, row in enumerate(payload.get("rows", [])):
            key = (path, row.get("insertId") or f"-{secrets.token_hex(8)}")
            seen = self.insert_ids.get(key)
            if seen is None or now - seen > DEDUP_SECONDS:
                kept.append(index)
        if not kept:
            return JSONResponse({"kind": "bigquery#tableDataInsertAllResponse"})
        forwarded = dict(payload, rows=[payload["rows"][i] for i in kept])
        response = await self._send(request, path, json.dumps(forwarded).encode())
        if response.status_code != 200:
            return response
        answer = json.loads(response.body)
        errors = answer.get("insertErrors") or []
        for error in errors:
            error["index"] = kept[error["index"]]
        if not errors:
            for index in kept:
                insert_id = payload["rows"][index].get("insertId")
                if insert_id:
                    self.insert_ids[(path, insert_id)] = now
        return JSONResponse(answer)

    async def _add_columns(self, path: str, body: bytes) -> None:
        """bqemulator keeps a patched schema in its catalog only: add the new columns to its
        storage too (it reports an existing one as an error, which is ignored)."""
        parts = path.strip("/").split("/")
        project, dataset, table = parts[3], parts[5], parts[7]
        fields = json.loads(body).get("schema", {}).get("fields", [])
        async with httpx.AsyncClient(timeout=60) as client:
            for f in fields:
                query = f"ALTER TABLE `{project}.{dataset}.{table}` ADD COLUMN IF NOT EXISTS `{f['name']}` {f['type']}"
                await client.post(
                    f"{self.emulator}/bigquery/v2/projects/{project}/queries",
                    json={"query": query, "useLegacySql": False},
                )


@dataclass
class BigQueryStandIn:
    front: Front
    emulator: Emulator
    account: ServiceAccount  # registered: may read and write
    reader: ServiceAccount  # registered read-only: writes get accessDenied
    stranger: ServiceAccount  # unknown to the token endpoint

    @property
    def base_urls(self) -> dict[str, str]:
        return {"bigquery": self.front.url, "bigquery.token": self.front.url}

    def client(self) -> Any:
        """A client of the emulator itself, for the tests' own checks."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=PROJECT,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=self.emulator.url),
        )


@contextmanager
def bigquery_stand_in(root: Path) -> Iterator[BigQueryStandIn]:
    require(
        emulator_available(),
        f"bqemulator (expected in {VENV})",
        "`make install-test` creates its virtualenv (.venv/bqemulator)",
    )
    emulator = Emulator(root)
    front = Front(emulator.url)
    account = make_account(f"loader@{PROJECT}.iam.gserviceaccount.com")
    reader = make_account(f"reader@{PROJECT}.iam.gserviceaccount.com")
    stranger = make_account(f"stranger@{PROJECT}.iam.gserviceaccount.com")
    front.register(account)
    front.register(reader, readonly=True)
    try:
        with serve_in_thread(front.app) as url:
            front.url = url
            yield BigQueryStandIn(front, emulator, account, reader, stranger)
    finally:
        emulator.stop()

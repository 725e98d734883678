"""The Snowflake stand-in: fakesnow's server (DuckDB; it speaks the HTTP protocol of
snowflake-connector-python) behind a small front of our own. eventrelay reaches it through
EVENTRELAY_VENDOR_BASE_URLS ("snowflake": the host the connector logs in to and queries), the
path a real delivery takes.

The front adds what fakesnow does not check:
- key-pair login: the connector's JWT (RS256, `iss` = ACCOUNT.USER.SHA256:<public key
  fingerprint>) is verified against the user's registered public key, and refused as Snowflake
  does (390144 "JWT token is invalid.", docs.snowflake.com/en/user-guide/key-pair-auth-troubleshooting);
- read-only users: writes get 003001 "Insufficient privileges";
- scripted failures (`fail`) and held statements (`hold`) for the retry and crash tests;
- Snowpipe: CREATE PIPE and the Snowpipe REST API (tests/support/snowpipe.py).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.server import serve_in_thread
from tests.support.snowpipe import Snowpipe

WRITES = re.compile(r"^\s*(INSERT|CREATE|ALTER|PUT|COPY|UPDATE|DELETE|MERGE|DROP)\b", re.I)


@dataclass
class Fault:
    sql: re.Pattern[str]
    code: str
    message: str
    times: int
    status: int = 200


@dataclass
class Hold:
    sql: re.Pattern[str]
    after: bool = False
    arrived: int = 0
    released: threading.Event = field(default_factory=threading.Event)
    abandoned: bool = False  # released after its client died: refused, never run


@dataclass
class KeyPair:
    user: str
    pem: str
    public: Any

    @property
    def fingerprint(self) -> str:
        der = self.public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def make_key(user: str) -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return KeyPair(user, pem, key.public_key())


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _failure(code: str, message: str, state: str = "42501") -> bytes:
    body = {
        "data": {"errorCode": code, "sqlState": state, "nextAction": None},
        "code": code,
        "message": message,
        "success": False,
    }
    return json.dumps(body).encode()


class Front:
    """An ASGI app in front of fakesnow's."""

    def __init__(self) -> None:
        import fakesnow.server

        self.inner = fakesnow.server.app
        self.keys: dict[str, KeyPair] = {}
        self.readonly: set[str] = set()
        self.sessions: dict[str, str] = {}  # token -> user
        self.faults: list[Fault] = []
        self.holds: list[Hold] = []
        self.statements: list[str] = []
        self.url = ""
        self.snowpipe = Snowpipe(self)

    def register(self, key: KeyPair, readonly: bool = False) -> None:
        self.keys[key.user.upper()] = key
        if readonly:
            self.readonly.add(key.user.upper())

    def fail(
        self,
        sql: str,
        times: int,
        code: str = "000625",
        message: str = "Statement reached its statement or warehouse timeout of 60 second(s) and was canceled.",
        status: int = 200,
    ) -> None:
        self.faults.append(Fault(re.compile(sql, re.I | re.S), code, message, times, status))

    def hold(self, sql: str, after: bool = False) -> Hold:
        held = Hold(re.compile(sql, re.I | re.S), after)
        self.holds.append(held)
        return held

    def abandon(self, held: Hold) -> None:
        """Let go of a hold whose client died: a statement held before running is refused,
        never run; later ones pass."""
        held.abandoned = True
        self.holds.remove(held)
        held.released.set()

    def reset(self) -> None:
        for held in self.holds:
            held.released.set()
        self.faults.clear()
        self.holds.clear()
        self.statements.clear()
        self.snowpipe.reset()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        body = gzip.decompress(raw) if headers.get("content-encoding") == "gzip" else raw
        path = scope["path"]
        held: Hold | None = None
        if path.startswith("/v1/data/pipes/"):
            query = scope.get("query_string", b"").decode()
            status, answer = self.snowpipe.handle(scope["method"], path, query, headers, body)
            await self._answer(send, json.dumps(answer).encode(), status)
            return
        if path == "/session/v1/login-request":
            refused = self._login(json.loads(body))
            if refused is not None:
                await self._answer(send, refused)
                return
        elif path == "/queries/v1/query-request":
            text = str(json.loads(body).get("sqlText", ""))
            self.statements.append(text)
            token = headers.get("authorization", "")[17:-1]
            if self.sessions.get(token) in self.readonly and WRITES.match(text):
                table = text.split()[2] if len(text.split()) > 2 else "?"
                await self._answer(
                    send,
                    _failure(
                        "003001",
                        f"SQL access control error:\nInsufficient privileges to operate on table '{table}'",
                    ),
                )
                return
            for fault in self.faults:
                if fault.times > 0 and fault.sql.search(text):
                    fault.times -= 1
                    await self._answer(
                        send, _failure(fault.code, fault.message, "57014"), fault.status
                    )
                    return
            if self.snowpipe.create(text, self.sessions.get(token, "")):
                # fakesnow has no pipes: it answers a SELECT in the statement's place
                statement = json.loads(body)
                statement["sqlText"] = "SELECT 'Pipe successfully created.' AS \"status\""
                raw = json.dumps(statement).encode()
                if headers.get("content-encoding") == "gzip":
                    raw = gzip.compress(raw)
            held = next((h for h in self.holds if h.sql.search(text)), None)
            if held is not None and not held.after:
                await self._wait(held)
                if held.abandoned:
                    await self._answer(send, _failure("000604", "SQL execution canceled", "57014"))
                    return

        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        buffered: list[dict[str, Any]] = []

        async def capture(message: dict[str, Any]) -> None:
            buffered.append(message)

        await self.inner(scope, replay, capture)
        if path == "/session/v1/login-request":
            self._remember(buffered, body)
        if held is not None and held.after:
            await self._wait(held)
        for message in buffered:
            await send(message)

    def _login(self, body: dict[str, Any]) -> bytes | None:
        data = body.get("data", {})
        user = str(data.get("LOGIN_NAME", "")).upper()
        key = self.keys.get(user)
        try:
            if data.get("AUTHENTICATOR") != "SNOWFLAKE_JWT" or key is None:
                raise ValueError("no key")
            head, payload, signature = str(data.get("TOKEN", "")).split(".")
            claims = json.loads(_b64(payload))
            if not str(claims.get("iss", "")).endswith(f".{user}.{key.fingerprint}"):
                raise ValueError("fingerprint")
            key.public.verify(
                _b64(signature), f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except Exception:
            return _failure("390144", f"JWT token is invalid. [{uuid.uuid4()}]", "08004")
        return None

    def _remember(self, messages: list[dict[str, Any]], request: bytes) -> None:
        for message in messages:
            if message["type"] == "http.response.body" and message.get("body"):
                token = json.loads(message["body"]).get("data", {}).get("token")
                user = str(json.loads(request).get("data", {}).get("LOGIN_NAME", "")).upper()
                if token:
                    self.sessions[token] = user

    async def _wait(self, held: Hold) -> None:
        held.arrived += 1
        while not held.released.is_set():
            await asyncio.sleep(0.05)

    async def _answer(self, send: Any, body: bytes, status: int = 200) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


@dataclass
class SnowflakeStandIn:
    front: Front
    loader: KeyPair  # registered: may read and write
    reader: KeyPair  # registered read-only
    stranger: KeyPair  # a key Snowflake does not know for LOADER

    @property
    def base_urls(self) -> dict[str, str]:
        return {"snowflake": self.front.url}

    def connect(self, database: str, schema: str = "PUBLIC") -> Any:
        """A session of the tests' own, for their checks."""
        import snowflake.connector

        host, port = self.front.url.removeprefix("http://").split(":")
        key = serialization.load_pem_private_key(self.loader.pem.encode(), None)
        return snowflake.connector.connect(
            account="eventrelay",
            user=self.loader.user,
            private_key=key,
            host=host,
            port=int(port),
            protocol="http",
            database=database,
            schema=schema,
            platform_detection_timeout_seconds=0.0,  # no cloud-metadata probes
        )


@contextmanager
def snowflake_stand_in() -> Iterator[SnowflakeStandIn]:
    front = Front()
    loader = make_key("LOADER")
    reader = make_key("READER")
    stranger = make_key("LOADER")
    front.register(loader)
    front.register(reader, readonly=True)
    with serve_in_thread(front) as url:
        front.url = url
        yield SnowflakeStandIn(front, loader, reader, stranger)


class Warehouse:
    """A database of the test's own, and the tests' own session to look into it."""

    def __init__(self, sf: SnowflakeStandIn) -> None:
        self.database = f"DB_{uuid.uuid4().hex[:10]}".upper()
        self.conn = sf.connect(self.database)
        self.query(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        self.query(f"CREATE SCHEMA IF NOT EXISTS {self.database}.PUBLIC")

    def query(self, text: str) -> list[tuple[Any, ...]]:
        cur = self.conn.cursor()
        cur.execute(text)
        return list(cur.fetchall())

    def counts(self, table: str = "EVENTS") -> tuple[int, int]:
        try:
            ((total, distinct),) = self.query(
                f'SELECT COUNT(*), COUNT(DISTINCT "MESSAGE_ID") FROM {self.database}.PUBLIC."{table}"'
            )
        except Exception:
            return 0, 0
        return int(total), int(distinct)

    def ledger(self) -> int:
        try:
            ((total,),) = self.query(
                f"SELECT COALESCE(SUM(ROW_COUNT), 0) FROM {self.database}.PUBLIC.EVENTRELAY_LOADS"
            )
        except Exception:
            return 0
        return int(total)

    def close(self) -> None:
        self.conn.close()

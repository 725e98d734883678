"""S3 stand-in for the tests: moto in server mode (a real HTTP server implementing the S3 API),
behind a small forwarding proxy that can misbehave the way S3 does (503 SlowDown, 403 for a
refused key, an answer that never comes after the object was stored).

The proxy forwards every request unchanged (moto does not check signatures); faults are
answered with S3's own XML error bodies (docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html).
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import boto3
import orjson
from aiohttp import web

from tests.support.pipeline import Pipeline
from tests.support.server import free_port

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"


class MotoS3:
    """One moto server per test process; a fresh bucket per test."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        self.client = boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self) -> str:
        name = f"er-{uuid.uuid4().hex[:20]}"
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    def read(self, bucket: str, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def events(self, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
        """Every event stored under `prefix` (gzip NDJSON objects)."""
        out: list[dict[str, Any]] = []
        for key in self.keys(bucket, prefix):
            if key.endswith(".json.gz"):
                text = gzip.decompress(self.read(bucket, key))
                out.extend(orjson.loads(line) for line in text.splitlines())
        return out

    def stop(self) -> None:
        self._server.stop()


def s3_error(status: int, code: str, message: str) -> web.Response:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message><RequestId>er-test</RequestId></Error>"
    )
    return web.Response(status=status, body=body.encode(), content_type="application/xml")


@dataclass
class Fault:
    matches: Callable[[web.Request], bool]
    respond: Callable[[], web.Response] | None  # None: forward, then never answer
    times: int  # how many requests it applies to (-1: all)


@dataclass
class S3Proxy:
    """Forwards to moto; `fail`, `deny_key` and `hang_after_store` script S3's failures."""

    upstream: str
    faults: list[Fault] = field(default_factory=list)
    seen: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    preconditions: list[str] = field(default_factory=list)  # x-goog-if-generation-match values
    stored_then_hung: asyncio.Event = field(default_factory=asyncio.Event)
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    url: str = ""

    async def start(self) -> S3Proxy:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        self._release.set()  # hung answers end (their client is gone by now)
        if self._runner:
            await self._runner.cleanup()
        if self._session:
            await self._session.close()

    def fail(
        self,
        method: str,
        times: int,
        status: int = 503,
        code: str = "SlowDown",
        message: str = "Please reduce your request rate.",
        path: str = "",
    ) -> None:
        self.faults.append(
            Fault(
                lambda r: r.method == method and path in r.path,
                lambda: s3_error(status, code, message),
                times,
            )
        )

    def deny_key(
        self,
        access_key: str,
        code: str = "InvalidAccessKeyId",
        message: str = "The AWS Access Key Id you provided does not exist in our records.",
    ) -> None:
        """Requests signed with this access key id get a 403 (S3's InvalidAccessKeyId unless
        told otherwise)."""
        self.faults.append(
            Fault(
                lambda r: f"Credential={access_key}/" in r.headers.get("Authorization", ""),
                lambda: s3_error(403, code, message),
                -1,
            )
        )

    def hang_after_store(self, method: str = "PUT", path: str = "") -> None:
        """The next matching request reaches S3 (the object is stored) but its answer never
        comes back: the client is left between upload and acknowledgement."""
        self.faults.append(Fault(lambda r: r.method == method and path in r.path, None, 1))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, request.path))
        fault = next((f for f in self.faults if f.times != 0 and f.matches(request)), None)
        if fault is not None:
            if fault.times > 0:
                fault.times -= 1
            if fault.respond is not None:
                return fault.respond()
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        assert self._session is not None
        generation = request.headers.get("x-goog-if-generation-match")
        if generation is not None:
            # Cloud Storage's create-only precondition (moto knows only If-None-Match).
            self.preconditions.append(generation)
            auth = {"Authorization": request.headers.get("Authorization", "")}
            async with self._session.head(self.upstream + request.path, headers=auth) as found:
                if generation == "0" and found.status == 200:
                    return s3_error(
                        412,
                        "PreconditionFailed",
                        "At least one of the pre-conditions you specified did not hold.",
                    )
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body
        ) as upstream:
            payload = await upstream.read()
            if fault is not None:  # stored; now never answer
                self.stored_then_hung.set()
                await self._release.wait()
                return s3_error(500, "InternalError", "the test is over")
            skip = {"content-length", "transfer-encoding", "content-encoding", "connection"}
            return web.Response(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in skip},
                body=payload,
            )


def iter_ids(events: list[dict[str, Any]]) -> Iterator[str]:
    return (str(e["messageId"]) for e in events)


async def stored_ids(moto: MotoS3, bucket: str) -> Counter[str]:
    """How many times each messageId is stored under `events/` in the bucket."""
    stored = await asyncio.to_thread(moto.events, bucket, "events/")
    return Counter(str(e["messageId"]) for e in stored)


async def landed_once(
    pipe: Pipeline, moto: MotoS3, bucket: str, sent: list[dict[str, Any]]
) -> None:
    """Wait until every sent event is in the bucket, then check each is there exactly once."""

    async def all_there() -> Counter[str] | None:
        ids = await stored_ids(moto, bucket)
        return ids if len(ids) == len(sent) else None

    ids = await pipe.eventually(all_there, timeout=60)
    assert set(ids) == {e["messageId"] for e in sent}
    assert set(ids.values()) == {1}

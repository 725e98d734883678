"""Property-based run of the OpenAPI document (schemathesis) against a real server, in three
phases: schema-valid requests to every operation (ingest with a real write key, the admin API
with the owner's token), schema-invalid requests, and stateful sequences that follow the
document's links from created resources to the operations on them. No 5xx anywhere; responses
conform to the document in the positive phase.

Nothing leaves the machine: vendors are a local stand-in (EVENTRELAY_VENDOR_BASE_URLS), every
host name resolves through the runtime's injected resolver (to nothing), and a connection a
generated webhook URL makes to a public IP literal is refused by the offline guard (and only
those are allowed to be tried).
"""

from __future__ import annotations

import base64
import os
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import schemathesis
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import FlakyFailure, FlakyStrategyDefinition, Unsatisfiable
from schemathesis.checks import positive_data_acceptance
from schemathesis.generation import GenerationMode

from eventrelay.app import create_app
from eventrelay.destinations import registry
from eventrelay.runtime import Runtime
from eventrelay.settings import Settings
from eventrelay.store import migrate
from tests.support.offline import OfflineGuard, offline
from tests.support.server import serve_in_thread

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("openapi-fuzz")]

# Examples per operation and phase; EVENTRELAY_FUZZ_SCALE=0.1 for a quick local run. The
# defaults make over 5,000 requests: ADMIN_CASES + INGEST_CASES.
_SCALE = float(os.environ.get("EVENTRELAY_FUZZ_SCALE", "1"))
POSITIVE_EXAMPLES = int(80 * _SCALE)
NEGATIVE_EXAMPLES = int(40 * _SCALE)
STATEFUL_SCENARIOS = int(60 * _SCALE)
STATEFUL_CASES = int(400 * _SCALE)
ADMIN_CASES = int(2800 * _SCALE)
INGEST_CASES = int(1500 * _SCALE)


class _VendorStandIn(BaseHTTPRequestHandler):
    """Every vendor: 200 with an empty JSON object (tokens for the OAuth vendors)."""

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = b'{"access_token":"fuzz-token","expires_in":3600}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = _answer

    def log_message(self, *args: Any) -> None:
        pass


async def _no_dns(host: str, port: int) -> list[str]:
    raise OSError(f"{host}: not resolved in the fuzz run")


@dataclass
class Live:
    base_url: str
    token: str
    write_key: str
    guard: OfflineGuard
    statuses: Counter[str] = field(default_factory=Counter)
    # Every 5xx as it happened: hypothesis may not reproduce one on replay (the server's state
    # or load moved on) and then reports "flaky" instead of the response.
    server_errors: list[str] = field(default_factory=list)

    def headers_for(self, path: str) -> dict[str, str]:
        if path.startswith("/v1/admin"):
            return {"Authorization": f"Bearer {self.token}"}
        if path.startswith("/v1/"):
            auth = base64.b64encode(f"{self.write_key}:".encode()).decode()
            return {"Authorization": f"Basic {auth}"}
        return {}

    def call(self, case: schemathesis.Case, phase: str) -> Any:
        headers = {**(case.headers or {}), **self.headers_for(case.path)}
        response = case.call(base_url=self.base_url, headers=headers)
        self.statuses[f"{phase} {response.status_code // 100}xx"] += 1
        if response.status_code >= 500:
            error = (
                f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
            )
            self.server_errors.append(f"{phase} {error}")
            raise AssertionError(error)
        return response


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    vendors = ThreadingHTTPServer(("127.0.0.1", 0), _VendorStandIn)
    threading.Thread(target=vendors.serve_forever, daemon=True).start()
    vendor_url = f"http://127.0.0.1:{vendors.server_address[1]}"
    data = tmp_path_factory.mktemp("fuzz")
    conf = Settings(
        data_dir=data,
        secret_key=Fernet.generate_key().decode(),
        vendor_base_urls={
            **{t: vendor_url for t in registry.DESTINATIONS},
            "google_ads.oauth": vendor_url,
            "linkedin.oauth": vendor_url,
        },
    )
    migrate.upgrade(conf.resolved_database_url)
    rt = Runtime.create(conf)
    rt.resolver = _no_dns
    guard = OfflineGuard()
    with (
        offline(guard),
        serve_in_thread(create_app(rt, bootstrap_owner=True), keep_alive=300) as base_url,
    ):
        token = (data / "owner-token").read_text().strip()
        admin = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"})
        source = admin.post(
            "/v1/admin/sources", json={"name": "fuzz", "consent_default": "allow"}
        ).json()
        # Ingested events are routed and delivered (to the stand-in).
        r = admin.post(
            "/v1/admin/integrations",
            json={
                "source_id": source["id"],
                "type": "ga4",
                "name": "fuzz ga4",
                "config": {"measurement_id": "G-FUZZ1234", "api_secret": "fuzz-secret"},
            },
        )
        assert r.status_code == 201, r.text
        yield Live(base_url, token, source["write_key"], guard)
    vendors.shutdown()
    # Only connections to IP literals a generated webhook URL named were tried (and refused);
    # every host name went to the injected resolver, never to DNS.
    tried = guard.take()
    assert all(entry.startswith("connect ") for entry in tried), tried


def _schema(live: Live) -> Any:
    document = httpx.get(f"{live.base_url}/openapi.json").json()
    # Stateful runs: the link from a created source creates a deliverable integration.
    create = document["paths"]["/v1/admin/sources"]["post"]["responses"]["201"]
    create["links"]["CreateIntegration"]["requestBody"] = {
        "source_id": "$response.body#/id",
        "type": "webhook",
        "name": "fuzz hook",
        "config": {"url": "https://hooks.fuzz.invalid/in"},
    }
    return schemathesis.openapi.from_dict(document)


def _settings(examples: int) -> settings:
    # No shrinking: a failure is reported as found (shrinking one costs minutes of requests).
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def _run_phase(live: Live, schema: Any, mode: GenerationMode, examples: int) -> list[str]:
    """Every operation of `schema`; returns the failures."""
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @_settings(examples)
        def run(case: schemathesis.Case) -> None:
            response = live.call(case, mode.value)  # fails on any 5xx
            if mode == GenerationMode.POSITIVE:
                # Business rules may refuse schema-valid data (an unknown source id, a cursor
                # this API never issued): a 4xx by design, not a defect.
                case.validate_response(response, excluded_checks=[positive_data_acceptance])

        try:
            run()
        except Unsatisfiable:
            pass  # nothing to make invalid (an operation without parameters or body)
        except (FlakyFailure, FlakyStrategyDefinition):
            pass  # a replay went differently; any 5xx is in live.server_errors already
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{mode.value} {operation.label}: {_describe(exc)}")
    return failures


def _describe(exc: BaseException) -> str:
    """The error with every sub-exception (hypothesis groups them)."""
    parts = [f"{type(exc).__name__}: {exc}"]
    if exc.__cause__ is not None and not str(exc):  # hypothesis wraps BaseExceptions bare
        parts.append("  caused by " + _describe(exc.__cause__))
    for sub in getattr(exc, "exceptions", ()):
        parts.append("  " + _describe(sub).replace("\n", "\n  "))
    return "\n".join(parts)


def test_admin_api(live: Live) -> None:
    """The admin and health endpoints: positive, negative and stateful phases, no 5xx."""
    schema = _schema(live).exclude(
        path_regex="^/v1/(track|identify|page|screen|group|alias|batch)$"
    )
    errors_before = len(live.server_errors)
    failures = _run_phase(live, schema, GenerationMode.POSITIVE, POSITIVE_EXAMPLES)
    failures += _run_phase(live, schema, GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)

    stateful_failures: list[str] = []

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def call(self, case: schemathesis.Case, **kwargs: Any) -> Any:
            # Failures are collected, not raised: replaying a sequence against a server whose
            # state moved on cannot reproduce it (hypothesis would report "flaky" instead).
            try:
                return live.call(case, "stateful")
            except Exception as exc:
                stateful_failures.append(_describe(exc))
                raise

        def validate_response(self, response: Any, case: schemathesis.Case, **kw: Any) -> None:
            pass  # live.call checked the status

    # Hypothesis explores by replaying earlier sequences with changes; against a live server
    # whose state has moved on, a replay can draw differently and hypothesis stops with
    # FlakyStrategyDefinition. Every request was checked as it was made (failures above), so
    # such a stop only ends that run: more runs follow until enough sequences were made.
    for _ in range(10):
        if live.statuses["stateful 2xx"] + live.statuses["stateful 4xx"] >= STATEFUL_CASES:
            break
        try:
            Machine.run(
                settings=settings(
                    _settings(STATEFUL_SCENARIOS),
                    stateful_step_count=10,
                    max_examples=STATEFUL_SCENARIOS,
                )
            )
        except (FlakyStrategyDefinition, FlakyFailure):
            # A replay that drew or ended differently (the server's state moved on, or a
            # request was cut short under load): requests that failed are in
            # `stateful_failures`, so only this run ends.
            if stateful_failures:
                break
        except Exception as exc:
            failures.append(f"stateful: {_describe(exc)}")
            break
    failures += [f"stateful: {failure}" for failure in stateful_failures]
    print(dict(sorted(live.statuses.items())))
    failures += [e for e in live.server_errors[errors_before:] if e not in "".join(failures)]
    assert not failures, "\n\n".join(failures)
    assert live.statuses["positive 2xx"] > 500 * _SCALE
    assert live.statuses["stateful 2xx"] > 100 * _SCALE  # links led to real resources
    assert sum(live.statuses.values()) >= ADMIN_CASES, live.statuses


def test_ingest_with_a_valid_write_key(live: Live) -> None:
    """Every ingest endpoint with the write key of a source that routes to an integration: the
    bodies are parsed, validated, stored and delivered. No 5xx."""
    before = sum(live.statuses.values())
    errors_before = len(live.server_errors)
    schema = _schema(live).include(
        path_regex="^/v1/(track|identify|page|screen|group|alias|batch)$"
    )
    failures = _run_phase(live, schema, GenerationMode.POSITIVE, POSITIVE_EXAMPLES * 2)
    failures += _run_phase(live, schema, GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES * 2)
    print(dict(sorted(live.statuses.items())))
    failures += [e for e in live.server_errors[errors_before:] if e not in "".join(failures)]
    assert not failures, "\n\n".join(failures)
    assert live.statuses["positive 2xx"] > 500 * _SCALE  # events were accepted, not refused
    assert sum(live.statuses.values()) - before >= INGEST_CASES

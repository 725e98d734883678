"""The admin API commands (sources, integrations, send, tail, apply, sink) against a real
`eventrelay serve` process, delivering to a real `eventrelay sink` process."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from eventrelay.cli import main
from tests.support.process import Server, eventrelay_process
from tests.support.server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cli-commands")]

SECRET = "whsec_" + base64.b64encode(b"secret signing key, 32 bytes...").decode()
ROTATED = "whsec_" + base64.b64encode(b"rotated signing key, 32 bytes..").decode()


@dataclass
class Installation:
    server: Server
    data_dir: Path
    sink_url: str
    sink_out: Path
    root: Path

    def env(self, **extra: str) -> dict[str, str | None]:
        return {
            "EVENTRELAY_URL": self.server.base_url,
            "EVENTRELAY_DATA_DIR": str(self.data_dir),
            "EVENTRELAY_TOKEN": None,
            **extra,
        }

    def cli(self, *args: str, ok: bool = True, **env: str) -> Result:
        result = CliRunner().invoke(main, list(args), env=self.env(**env))
        if ok:
            assert result.exit_code == 0, result.output + repr(result.exception)
        return result

    def api(self, method: str, path: str) -> Any:
        token = (self.data_dir / "owner-token").read_text().strip()
        r = httpx.request(
            method, self.server.base_url + path, headers={"Authorization": f"Bearer {token}"}
        )
        return r.json()


def wait_for_text(path: Path, text: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {path}: {content[-2000:]}")


@pytest.fixture(scope="module")
def inst(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    root = tmp_path_factory.mktemp("cli")
    sink_port = free_port()
    sink_out = root / "sink.out"
    with open(sink_out, "w") as out, open(root / "sink.err", "w") as err:
        sink = subprocess.Popen(
            [sys.executable, "-m", "eventrelay", "sink", "--port", str(sink_port)],
            stdout=out,
            stderr=err,
        )
    try:
        wait_for_text(root / "sink.err", "listening")
        env = {"EVENTRELAY_ALLOW_PRIVATE_TARGETS": "1"}
        with eventrelay_process(root, env=env) as server:
            yield Installation(
                server, root / ".eventrelay", f"http://127.0.0.1:{sink_port}", sink_out, root
            )
    finally:
        sink.terminate()
        sink.wait(timeout=30)


def test_sources_and_integrations(inst: Installation, tmp_path: Path) -> None:
    created = inst.cli("sources", "create", "--name", "Shop")
    write_key = created.stdout.strip()
    assert write_key.startswith("wk_")
    assert "created source src_" in created.stderr
    listed = json.loads(inst.cli("sources", "list", "--json").stdout)
    assert [s["write_key"] for s in listed if s["name"] == "Shop"] == [write_key]
    table = inst.cli("sources", "list").stdout
    assert table.splitlines()[0].split()[:2] == ["ID", "NAME"] and "Shop" in table

    spec = tmp_path / "hook.yaml"
    spec.write_text(
        "type: webhook\nname: Orders hook\n"
        f"config:\n  url: {inst.sink_url}/orders\n  signing_secret: ${{HOOK_SECRET}}\n"
    )
    missing = inst.cli("integrations", "create", "-f", str(spec), "--source", "Shop", ok=False)
    assert missing.exit_code == 1 and "HOOK_SECRET is not set" in missing.output
    made = inst.cli(
        "integrations", "create", "-f", str(spec), "--source", "Shop", HOOK_SECRET=SECRET
    )
    assert "created integration int_" in made.stderr
    got = json.loads(inst.cli("integrations", "get", "Orders hook", "--json").stdout)
    assert got["config"] == {"url": f"{inst.sink_url}/orders", "signing_secret": "***"}
    assert SECRET not in made.output

    assert "is paused" in inst.cli("integrations", "disable", "Orders hook").stderr
    assert "is active" in inst.cli("integrations", "enable", got["id"]).stderr
    change = tmp_path / "change.json"
    change.write_text(json.dumps({"name": "Orders webhook"}))
    shown = inst.cli("integrations", "update", "Orders hook", "-f", str(change)).stdout
    assert "Orders webhook" in shown and "status" in shown and "filtered (1 h)" in shown
    rows = inst.cli("integrations", "list", "--source", "Shop").stdout.splitlines()
    assert rows[0].split()[:3] == ["ID", "NAME", "TYPE"]
    assert "Orders webhook" in rows[1]

    unknown = inst.cli("integrations", "get", "nope", ok=False)
    assert unknown.exit_code == 1 and "no integration with id or name 'nope'" in unknown.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": "webhook", "name": "Bad", "config": {"url": "ftp://x"}}))
    refused = inst.cli("integrations", "create", "-f", str(bad), "--source", "Shop", ok=False)
    assert refused.exit_code == 1
    assert "HTTP 422" in refused.output and "config.url" in refused.output
    assert "Traceback" not in refused.output


def test_send_and_tail(inst: Installation, tmp_path: Path) -> None:
    inst.cli("sources", "create", "--name", "Tail shop")
    spec = tmp_path / "hook.json"
    spec.write_text(
        json.dumps({"type": "webhook", "name": "Tail hook", "config": {"url": inst.sink_url}})
    )
    inst.cli("integrations", "create", "-f", str(spec), "--source", "Tail shop")
    ga4 = tmp_path / "ga4.json"
    ga4.write_text(
        json.dumps(
            {
                "type": "ga4",
                "name": "Tail GA4",
                "enabled": False,
                "config": {"measurement_id": "G-XXXXXXXXXX", "api_secret": "s"},
            }
        )
    )
    inst.cli("integrations", "create", "-f", str(ga4), "--source", "Tail shop")
    env = {
        **os.environ,
        "EVENTRELAY_URL": inst.server.base_url,
        "EVENTRELAY_DATA_DIR": str(inst.data_dir),
    }
    err_path = tmp_path / "tail.err"
    with open(err_path, "w") as err:
        tail = subprocess.Popen(
            [sys.executable, "-m", "eventrelay", "tail", "Tail shop", "--count", "2", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        wait_for_text(err_path, "following Tail shop")
        sent = inst.cli("send", "--source", "Tail shop", "--event", "Tail Test", "--user-id", "u-7")
        assert sent.stdout.startswith('accepted: track "Tail Test" (messageId ')
        assert "eventrelay tail 'Tail shop'" in sent.stderr
        inst.cli("send", "--source", "Tail shop", "--type", "page", "--name", "Home")
        out, _ = tail.communicate(timeout=30)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait()
    assert tail.returncode == 0
    lines = [json.loads(line) for line in out.splitlines()]
    first, second = (line for line in lines if "outcome" not in line)
    # Then each event's outcome from the hook's worker (GA4 is paused: nothing to wait for).
    outcomes = {(o["outcome"]["message_id"], o["outcome"]["name"]) for o in lines if "outcome" in o}
    assert outcomes == {
        (first["event"]["messageId"], "Tail hook"),
        (second["event"]["messageId"], "Tail hook"),
    }
    assert all(o["outcome"]["outcome"] == "delivered" for o in lines if "outcome" in o)
    assert first["event"]["event"] == "Tail Test" and first["event"]["userId"] == "u-7"
    decisions = {d["name"]: d for d in first["routing"]}
    assert decisions["Tail hook"]["decision"] == "queued"
    assert decisions["Tail GA4"] == {
        **decisions["Tail GA4"],
        "decision": "filtered",
        "reason": "disabled",
    }
    assert second["type"] == "page" and second["event"]["name"] == "Home"
    wait_for_text(inst.sink_out, '"event": "Tail Test"')  # delivered, printed by the sink

    refused = inst.cli("send", "--write-key", "wk_nope", ok=False)
    assert refused.exit_code == 1
    assert "refused" in refused.output and "401" in refused.output


def test_apply_is_config_as_code(inst: Installation, tmp_path: Path) -> None:
    spec = tmp_path / "eventrelay.yaml"
    spec.write_text(
        f"""
sources:
  - name: Applied shop
    consent_default: deny
    integrations:
      - name: Applied hook
        type: webhook
        config:
          url: {inst.sink_url}/applied
          signing_secret: ${{APPLY_SECRET}}
      - name: Applied GA4
        type: ga4
        config:
          measurement_id: G-XXXXXXXXXX
          api_secret: ${{GA4_SECRET}}
"""
    )
    secrets = {"APPLY_SECRET": SECRET, "GA4_SECRET": "ga4-secret-1"}
    missing = inst.cli("apply", str(spec), ok=False, APPLY_SECRET=SECRET)
    assert missing.exit_code == 1 and "GA4_SECRET is not set" in missing.output

    plan = inst.cli("apply", str(spec), "--dry-run", **secrets).stdout
    assert "+ create    source      Applied shop" in plan
    assert "Plan: 3 to create, 0 to update, 0 unchanged." in plan
    names = [s["name"] for s in inst.api("GET", "/v1/admin/sources")["data"]]
    assert "Applied shop" not in names  # a dry run changes nothing

    applied = inst.cli("apply", str(spec), **secrets)
    assert "Applied: 3 created, 0 updated." in applied.stdout
    audit = inst.api("GET", "/v1/admin/audit-log?limit=100")["data"]

    again = inst.cli("apply", str(spec), **secrets).stdout
    assert "Plan: 0 to create, 0 to update, 3 unchanged." in again
    assert inst.api("GET", "/v1/admin/audit-log?limit=100")["data"] == audit  # nothing written

    spec.write_text(spec.read_text().replace("type: ga4", "type: ga4\n        enabled: false"))
    rotated = {**secrets, "APPLY_SECRET": ROTATED}
    changed = inst.cli("apply", str(spec), "--dry-run", "--json", **rotated)
    steps = {s["name"]: s for s in json.loads(changed.stdout)["plan"]}
    assert steps["Applied GA4"]["action"] == "update"
    assert steps["Applied GA4"]["changes"]["enabled"] == {"old": True, "new": False}
    assert steps["Applied hook"]["changes"] == {
        "config.signing_secret": {"old": "***", "new": "***"}
    }
    assert steps["Applied shop"]["action"] == "unchanged"
    human = inst.cli("apply", str(spec), **rotated).stdout
    assert "config.signing_secret: secret set" in human
    assert "Applied: 0 created, 2 updated." in human
    for text in (plan, applied.output, again, changed.output, human, spec.read_text()):
        assert SECRET not in text and "ga4-secret-1" not in text and ROTATED not in text
    ga4 = [
        i for i in inst.api("GET", "/v1/admin/integrations")["data"] if i["name"] == "Applied GA4"
    ]
    assert ga4[0]["enabled"] is False

    typo = tmp_path / "typo.yaml"
    typo.write_text("sources:\n  - name: X\n    integrations:\n      - nam: Y\n")
    refused = inst.cli("apply", str(typo), ok=False)
    assert refused.exit_code == 1
    assert "sources[0].integrations[0].name" in refused.output


def test_clear_errors_without_a_server_or_a_token(inst: Installation, tmp_path: Path) -> None:
    down = inst.cli("sources", "list", ok=False, EVENTRELAY_URL=f"http://127.0.0.1:{free_port()}")
    assert down.exit_code == 1
    assert "cannot reach eventrelay at http://127.0.0.1:" in down.output
    assert "EVENTRELAY_URL" in down.output
    no_token = inst.cli("sources", "list", ok=False, EVENTRELAY_DATA_DIR=str(tmp_path))
    assert no_token.exit_code == 1
    assert "no admin token" in no_token.output and "EVENTRELAY_TOKEN" in no_token.output
    assert list(tmp_path.iterdir()) == []
    bad_token = inst.cli("sources", "list", ok=False, EVENTRELAY_TOKEN="ert_wrong")
    assert bad_token.exit_code == 1 and "HTTP 401" in bad_token.output


def test_tail_prints_an_outcome_under_its_event() -> None:
    from eventrelay.commands.tail import describe_outcome, sse_messages

    line = describe_outcome(
        {
            "message_id": "0123456789abcdef",
            "name": "Orders hook",
            "outcome": "retried",
            "reason": "server_error",
            "status": 503,
            "attempt": 2,
            "at": 0,
        }
    )
    assert (
        line == "  00:00:00  0123456789ab  Orders hook: retried (HTTP 503, server_error), attempt 2"
    )
    stream = [": keepalive", "", "event: outcomes", 'data: {"outcomes": []}', ""]
    assert list(sse_messages(stream)) == [("outcomes", '{"outcomes": []}')]
    assert list(sse_messages(stream, comments=True)) == [
        (":", "keepalive"),
        ("outcomes", '{"outcomes": []}'),
    ]

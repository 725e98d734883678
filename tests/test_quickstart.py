"""`eventrelay serve` as a user starts it, and the README Quickstart word for word: the server
with the environment of its first block, the sink of its second, the script of its third, on a
fresh data directory. The event must reach the sink, and GA4's filtering must be reported."""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.process import eventrelay_process
from tests.support.server import free_port

README = Path(__file__).resolve().parents[1] / "README.md"
VENV_BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def quickstart_blocks() -> list[str]:
    text = README.read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert len(blocks) == 3, "the Quickstart has three terminals: server, sink, script"
    return blocks


def server_environment(block: str) -> dict[str, str]:
    """`VAR=value ... make run` -> {VAR: value}; the command must be `make run`."""
    words = shlex.split(block.strip())
    env = dict(w.split("=", 1) for w in words if re.match(r"^[A-Z_]+=", w))
    assert words[len(env) :] == ["make", "run"], block
    return env


def test_first_start_prints_owner_token_once_and_quickstart_delivers(tmp_path: Path) -> None:
    server_block, sink_block, script = quickstart_blocks()
    port, sink_port = free_port(), free_port()
    # `make run` created .venv at the repository root; the Quickstart calls its eventrelay.
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "bin").symlink_to(VENV_BIN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTRELAY_")}
    sink_command = sink_block.strip().replace("9000", str(sink_port))
    sink_out = tmp_path / "sink.out"
    with open(sink_out, "w") as out:
        sink = subprocess.Popen(
            ["bash", "-c", f"exec {sink_command}"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
    try:
        with eventrelay_process(tmp_path, env=server_environment(server_block), port=port) as srv:
            token_file = tmp_path / ".eventrelay" / "owner-token"
            assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
            assert stat.S_IMODE((tmp_path / ".eventrelay" / "secret.key").stat().st_mode) == 0o600
            token = token_file.read_text().strip()
            before = set(tmp_path.iterdir())
            text = script.replace("localhost:8084", f"localhost:{port}")
            text = text.replace("127.0.0.1:9000", f"127.0.0.1:{sink_port}")
            out = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", text],
                cwd=tmp_path,
                # The shell of a user who ran `make run` (default port) in this directory.
                env={**env, "EVENTRELAY_PORT": str(port)},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert out.returncode == 0, out.stderr
            lines = out.stdout.strip().splitlines()
            assert lines[0].startswith("src_")
            assert '"type":"webhook"' in out.stdout and '"type":"ga4"' in out.stdout
            assert '"api_secret":"***"' in out.stdout
            assert "your_mp_api_secret" not in out.stdout
            assert '{"success":true}' in out.stdout
            # Visible: the CLI's list says GA4 filtered the event, and why.
            rows = [line for line in lines if line.startswith("int_")]
            [ga4_row] = [row for row in rows if "GA4 Production" in row]
            assert "consent 1" in ga4_row
            [sink_row] = [row for row in rows if "Local sink" in row]
            assert " active " in sink_row and "consent" not in sink_row
            # Delivered: the sink printed it.
            deadline = time.monotonic() + 20
            while '"event": "Order Completed"' not in sink_out.read_text():
                assert time.monotonic() < deadline, sink_out.read_text()
                time.sleep(0.1)
            assert "webhook-id: msg_" in sink_out.read_text()
            # The API says the same as the CLI.
            listed = httpx.get(
                f"{srv.base_url}/v1/admin/integrations",
                headers={"Authorization": f"Bearer {token}"},
            ).json()["data"]
            by_type = {i["type"]: i for i in listed}
            assert by_type["ga4"]["filtered_last_hour"] == {"consent": 1}
            assert by_type["webhook"]["filtered_last_hour"] == {}
            # No file holds the write key: the Quickstart keeps it in shell variables.
            assert set(tmp_path.iterdir()) == before
            srv.stop()
            printed = srv.proc.stdout.read() if srv.proc.stdout else ""
            assert token in printed
    finally:
        sink.terminate()
        sink.wait(timeout=30)
    with eventrelay_process(tmp_path) as again:
        again.stop()
        printed = again.proc.stdout.read() if again.proc.stdout else ""
        assert token not in printed  # shown once only

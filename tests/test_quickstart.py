"""`eventrelay serve` as a user starts it, and the README quickstart word for word."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.process import eventrelay_process

README = Path(__file__).resolve().parents[1] / "README.md"

pytestmark = pytest.mark.slow


def quickstart_script() -> str:
    text = README.read_text()
    section = text.split("## Quickstart", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "README has no quickstart block"
    return match.group(1)


def test_first_start_prints_owner_token_once_and_quickstart_works(tmp_path: Path) -> None:
    with eventrelay_process(tmp_path) as server:
        token_file = tmp_path / ".eventrelay" / "owner-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / ".eventrelay" / "secret.key").stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        port = server.base_url.rsplit(":", 1)[1]
        script = quickstart_script().replace("localhost:8084", f"localhost:{port}")
        out = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        lines = out.stdout.strip().splitlines()
        assert lines[0].startswith("src_")
        assert '"type":"ga4"' in out.stdout
        assert '"api_secret":"***"' in out.stdout
        assert '"has_more":false' in out.stdout
        assert "your_mp_api_secret" not in out.stdout
        assert out.stdout.rstrip().endswith('{"success":true}')
        server.stop()
        printed = server.proc.stdout.read() if server.proc.stdout else ""
        assert token in printed
    with eventrelay_process(tmp_path) as again:
        again.stop()
        printed = again.proc.stdout.read() if again.proc.stdout else ""
        assert token not in printed  # shown once only

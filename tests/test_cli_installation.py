"""The command line and the installation: the data directory is found as the server finds it,
named on stderr, never created by a command that only uses it; a second server on a data
directory says plainly who holds it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from eventrelay.app import create_app
from eventrelay.queue.sqlite import SqliteQueue
from eventrelay.runtime import Runtime
from eventrelay.settings import Settings
from tests.support.process import eventrelay_process
from tests.support.server import free_port


def run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("EVENTRELAY_")}
    return subprocess.run(
        [sys.executable, "-m", "eventrelay", *args],
        cwd=cwd,
        env={**base, "EVENTRELAY_LOG_LEVEL": "WARNING", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("tokens", "list"),
        ("tokens", "create", "--role", "viewer", "--name", "x"),
        ("orgs", "list"),
        ("orgs", "create", "--name", "x"),
        ("secrets", "rotate"),
    ],
)
def test_commands_that_use_an_installation_never_create_one(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    out = run(tmp_path, *args)
    assert out.returncode == 1
    data_dir = tmp_path / ".eventrelay"
    assert f"data directory {data_dir}" in out.stderr  # resolved as the server does, and said
    assert "EVENTRELAY_DATA_DIR" in out.stderr and "--data-dir" in out.stderr
    assert "Traceback" not in out.stderr
    assert list(tmp_path.iterdir()) == []  # nothing created: no directory, database or key


def test_commands_find_the_installation_the_server_uses(tmp_path: Path) -> None:
    created = run(tmp_path, "migrate")  # creates one on purpose
    assert created.returncode == 0, created.stderr
    assert (tmp_path / ".eventrelay" / "secret.key").exists()
    listed = run(tmp_path, "orgs", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"data directory {tmp_path / '.eventrelay'}" in listed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pointed = run(elsewhere, "--data-dir", str(tmp_path / ".eventrelay"), "orgs", "list")
    assert pointed.returncode == 0, pointed.stderr
    assert list(elsewhere.iterdir()) == []
    by_env = run(
        elsewhere, "orgs", "list", env={"EVENTRELAY_DATA_DIR": str(tmp_path / ".eventrelay")}
    )
    assert by_env.returncode == 0, by_env.stderr


def test_postgres_installation_needs_no_data_directory(
    tmp_path: Path, postgres_database: str | None
) -> None:
    if postgres_database is None:
        pytest.skip("PostgreSQL is not reachable")
    env = {
        "EVENTRELAY_DATABASE_URL": postgres_database,
        "EVENTRELAY_SECRET_KEY": Fernet.generate_key().decode(),
    }
    out = run(tmp_path, "orgs", "list", env=env)
    assert out.returncode == 0, out.stderr
    assert "database postgresql://postgres@127.0.0.1:5432/" in out.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("second", [("serve",), ("worker",)])
def test_a_second_process_on_a_data_directory_says_who_holds_it(
    tmp_path: Path, second: tuple[str, ...]
) -> None:
    port = free_port()
    with eventrelay_process(tmp_path, port=port) as first:
        env = {"EVENTRELAY_DATA_DIR": str(tmp_path / ".eventrelay")}
        out = run(tmp_path, *second, "--port", str(free_port()), env=env)
        assert out.returncode != 0
        assert "Traceback" not in out.stderr
        assert len(out.stderr) < 1000
        expected = f"(pid {first.proc.pid}, `eventrelay serve` on http://127.0.0.1:{port})"
        assert expected in out.stderr
        assert f"holds the data directory {tmp_path / '.eventrelay'}" in out.stderr


async def test_a_start_refused_inside_the_server_is_one_sentence(tmp_path: Path) -> None:
    """If a second server loses the race after the command line's check, the lifespan failure
    uvicorn logs is the same plain sentence, not a traceback."""
    settings = Settings(data_dir=tmp_path / "data", secret_key=Fernet.generate_key().decode())
    holder = SqliteQueue(settings.queue_path, holder={"command": "worker", "address": None})
    await holder.start()
    try:
        from eventrelay.store import migrate

        await asyncio.to_thread(migrate.upgrade, settings.resolved_database_url)
        app = create_app(Runtime.create(settings))
        sent: list[dict[str, Any]] = []
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        await inbox.put({"type": "lifespan.startup"})

        async def send(message: Any) -> None:
            sent.append(dict(message))

        with pytest.raises(Exception):
            await app(
                {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send
            )
        [failed] = [m for m in sent if m["type"] == "lifespan.startup.failed"]
        assert "Traceback" not in failed["message"]
        assert failed["message"].startswith(f"another eventrelay process (pid {os.getpid()}")
        assert "`eventrelay worker`" in failed["message"]
    finally:
        await holder.close()

"""`eventrelay secrets rotate` next to a running server (issue 10.7): with a key file the server
picks up the new key; with keys from the environment the rotation refuses while a running
process lacks the new key; and a key mismatch is a clear 503, never a 500."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from eventrelay.control.secrets import reencrypt_all
from eventrelay.runtime import Runtime
from eventrelay.settings import Settings
from eventrelay.store.tables import integrations
from eventrelay.store.vault import Vault, read_key_file
from tests.support.api import Api, running_api
from tests.support.sink import Sink

SIGNING = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


async def cli(conf: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, as an operator runs it next to the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTRELAY_")} | {
        "EVENTRELAY_DATA_DIR": str(conf.data_dir),
        "EVENTRELAY_DATABASE_URL": conf.database_url or "",
        "EVENTRELAY_LOG_LEVEL": "WARNING",
    }
    if conf.secret_key is not None:
        env["EVENTRELAY_SECRET_KEY"] = conf.secret_key.get_secret_value()
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "eventrelay", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def hook(api: Api, sink: Sink) -> str:
    source = await api.make_source()
    body = await api.make_integration(
        source["id"],
        type="webhook",
        config={"url": sink.url + "/h", "headers": {"X-API-Key": "k1"}, "signing_secret": SIGNING},
    )
    return str(body["id"])


async def stored_token(api: Api, integration_id: str) -> str:
    async with api.runtime.db.read() as conn:
        query = select(integrations.c.secrets).where(integrations.c.id == integration_id)
        return str((await conn.execute(query)).scalar_one())


async def edit_and_test(api: Api, integration_id: str, sink: Sink) -> tuple[Any, Any]:
    edit = await api.put(
        f"/v1/admin/integrations/{integration_id}",
        json={"config": {"url": sink.url + "/h", "batch": True}},  # secrets kept
    )
    test = await api.post(f"/v1/admin/integrations/{integration_id}/test")
    return edit, test


async def test_a_running_server_picks_up_a_rotated_key_file(settings: Settings) -> None:
    conf = settings.model_copy(update={"secret_key": None})
    sink = await Sink().start()
    try:
        async with running_api(conf) as api:
            integration = await hook(api, sink)
            rotated = await cli(conf, "secrets", "rotate")
            assert rotated.returncode == 0, rotated.stderr
            assert "re-encrypted 1 integration" in rotated.stdout
            edit, test = await edit_and_test(api, integration, sink)
            assert edit.status_code == 200, edit.text
            assert test.status_code == 200, test.text
            assert test.json()["ok"] is True
            assert sink.requests[-1].headers["X-API-Key"] == "k1"
            # The edit was encrypted with the new key: it alone opens it.
            newest = read_key_file(conf.key_file)[0]
            secrets = Vault([newest]).decrypt_json(await stored_token(api, integration))
            assert secrets["/headers/X-API-Key"] == "k1"
    finally:
        await sink.close()


async def test_rotation_with_environment_keys_waits_for_running_processes(
    settings: Settings,
) -> None:
    old = settings.secret_key.get_secret_value()  # type: ignore[union-attr]
    new = Fernet.generate_key().decode()
    both = settings.model_copy(update={"secret_key": SecretStr(f"{new},{old}")})
    sink = await Sink().start()
    try:
        async with running_api(settings) as api:  # knows only the old key
            integration = await hook(api, sink)
            before = await stored_token(api, integration)
            refused = await cli(both, "secrets", "rotate")
            assert refused.returncode != 0
            assert "do not have the newest key" in refused.stderr
            assert "Nothing was changed" in refused.stderr
            assert await stored_token(api, integration) == before
            edit, test = await edit_and_test(api, integration, sink)
            assert (edit.status_code, test.status_code) == (200, 200)
        # Restarted with the new key list: the rotation goes ahead and everything works.
        async with running_api(both) as api:
            rotated = await cli(both, "secrets", "rotate")
            assert rotated.returncode == 0, rotated.stderr
            edit, test = await edit_and_test(api, integration, sink)
            assert (edit.status_code, test.status_code) == (200, 200), edit.text
            assert Vault([new.encode()]).decrypt_json(await stored_token(api, integration))
    finally:
        await sink.close()


async def test_credentials_under_an_unknown_key_are_503_not_500(settings: Settings) -> None:
    old = settings.secret_key.get_secret_value()  # type: ignore[union-attr]
    both = settings.model_copy(
        update={"secret_key": SecretStr(f"{Fernet.generate_key().decode()},{old}")}
    )
    sink = await Sink().start()
    try:
        async with running_api(settings) as api:
            integration = await hook(api, sink)
            # Re-encrypted behind the server's back (what the rotation check now prevents).
            other = Runtime.create(both)
            try:
                assert await reencrypt_all(other) == 1
            finally:
                await other.close()
            edit, test = await edit_and_test(api, integration, sink)
            for r in (edit, test):
                assert r.status_code == 503, r.text
                assert r.json()["error"]["code"] == "secrets_unavailable"
                assert "EVENTRELAY_SECRET_KEY" in r.json()["error"]["message"]
    finally:
        await sink.close()

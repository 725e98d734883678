"""Encryption at rest and key rotation."""

from __future__ import annotations

from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from eventrelay.control.secrets import reencrypt_all
from eventrelay.delivery.stored_config import vendor_settings
from eventrelay.runtime import Runtime
from eventrelay.settings import Settings
from eventrelay.store.tables import integrations
from eventrelay.store.vault import VaultError
from tests.support.api import Api, running_api
from tests.support.examples import valid_configs


async def _rows(rt: Runtime) -> list[dict[str, object]]:
    async with rt.db.read() as conn:
        return [dict(r._mapping) for r in await conn.execute(select(integrations))]


async def test_rotation_keeps_old_data_readable(settings: Settings) -> None:
    old_key = settings.secret_key.get_secret_value()  # type: ignore[union-attr]
    async with running_api(settings) as api:
        source = await api.make_source()
        created = await api.make_integration(
            source["id"], type="ga4", config=valid_configs()["ga4"]
        )
    new_key = Fernet.generate_key().decode()
    both = settings.model_copy(update={"secret_key": SecretStr(f"{new_key},{old_key}")})
    rt = Runtime.create(both)
    try:
        [row] = await _rows(rt)
        assert vendor_settings(rt.vault, row).api_secret.get_secret_value() == "your_mp_api_secret"  # type: ignore[attr-defined]
        assert await reencrypt_all(rt) == 1
        [rotated] = await _rows(rt)
        assert rotated["secrets"] != row["secrets"]
    finally:
        await rt.close()
    only_new = settings.model_copy(update={"secret_key": SecretStr(new_key)})
    rt = Runtime.create(only_new)
    try:
        [row] = await _rows(rt)
        assert row["id"] == created["id"]
        assert vendor_settings(rt.vault, row).api_secret.get_secret_value() == "your_mp_api_secret"  # type: ignore[attr-defined]
    finally:
        await rt.close()
    only_old_wrong = settings.model_copy(
        update={"secret_key": SecretStr(Fernet.generate_key().decode())}
    )
    rt = Runtime.create(only_old_wrong)
    try:
        [row] = await _rows(rt)
        try:
            vendor_settings(rt.vault, row)
            raise AssertionError("decrypted with an unrelated key")
        except VaultError:
            pass
    finally:
        await rt.close()


async def test_raw_row_has_no_plaintext(api: Api) -> None:
    source = await api.make_source()
    config = valid_configs()["webhook"]
    config["signing_secret"] = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    await api.make_integration(source["id"], type="webhook", config=config)
    [row] = await _rows(api.runtime)
    raw = repr(row)
    assert "your_api_key" not in raw
    assert "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" not in raw
    assert row["config"]["headers"] == {"X-API-Key": "***"}  # type: ignore[index]

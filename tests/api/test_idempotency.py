"""Idempotency-Key on creating POSTs."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from eventrelay.store.tables import idempotency_keys
from eventrelay.timeutil import utcnow
from tests.support.api import Api
from tests.support.examples import valid_configs


async def test_same_key_same_body_replays(api: Api) -> None:
    headers = {"Idempotency-Key": "create-web-1"}
    first = await api.post("/v1/admin/sources", json={"name": "Web"}, headers=headers)
    assert first.status_code == 201
    assert "idempotency-replay" not in first.headers
    again = await api.post("/v1/admin/sources", json={"name": "Web"}, headers=headers)
    assert again.status_code == 201
    assert again.headers["idempotency-replay"] == "true"
    assert again.json() == first.json()
    listed = (await api.get("/v1/admin/sources")).json()["data"]
    assert len(listed) == 1


async def test_same_key_other_body_is_422(api: Api) -> None:
    headers = {"Idempotency-Key": "k1"}
    await api.post("/v1/admin/sources", json={"name": "Web"}, headers=headers)
    r = await api.post("/v1/admin/sources", json={"name": "App"}, headers=headers)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "idempotency_key_reused"


async def test_in_progress_duplicate_is_409(api: Api) -> None:
    from eventrelay.api.deps import Principal
    from eventrelay.store import idempotency, tokens

    async with api.runtime.db.transaction() as conn:
        owner = await tokens.find_active(conn, api.owner_token)
        assert owner is not None
        # Claim the key as a request that has not finished yet would.
        import hashlib

        digest = hashlib.sha256()
        import orjson

        for part in (b"POST", b"/v1/admin/sources", orjson.dumps({"name": "Web"})):
            digest.update(part)
            digest.update(b"\0")
        assert await idempotency.claim(conn, owner["org_id"], "busy", digest.hexdigest()) is None
    _ = Principal
    r = await api.post(
        "/v1/admin/sources", json={"name": "Web"}, headers={"Idempotency-Key": "busy"}
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "idempotency_in_progress"
    assert r.headers["retry-after"] == "1"


async def test_keys_are_per_organisation_and_expire(api: Api) -> None:
    headers = {"Idempotency-Key": "shared"}
    await api.post("/v1/admin/sources", json={"name": "Web"}, headers=headers)
    async with api.runtime.db.transaction() as conn:
        await conn.execute(
            update(idempotency_keys).values(expires_at=utcnow() - timedelta(seconds=1))
        )
    r = await api.post("/v1/admin/sources", json={"name": "Other"}, headers=headers)
    assert r.status_code == 201
    assert "idempotency-replay" not in r.headers


async def test_failed_request_does_not_burn_the_key(api: Api) -> None:
    headers = {"Idempotency-Key": "retry-me"}
    body = {
        "source_id": "src_missing",
        "type": "ga4",
        "name": "x",
        "config": valid_configs()["ga4"],
    }
    assert (await api.post("/v1/admin/integrations", json=body, headers=headers)).status_code == 422
    source = await api.make_source()
    body["source_id"] = source["id"]
    # Same key, corrected body: the failed attempt created nothing and stored nothing.
    r = await api.post("/v1/admin/integrations", json=body, headers=headers)
    assert r.status_code == 201


async def test_integration_and_token_creation_are_idempotent(api: Api) -> None:
    source = await api.make_source()
    body = {"source_id": source["id"], "type": "ga4", "name": "x", "config": valid_configs()["ga4"]}
    headers = {"Idempotency-Key": "int-1"}
    a = await api.post("/v1/admin/integrations", json=body, headers=headers)
    b = await api.post("/v1/admin/integrations", json=body, headers=headers)
    assert a.json()["id"] == b.json()["id"]
    assert b.headers["idempotency-replay"] == "true"
    assert b.json()["config"]["api_secret"] == "***"
    headers = {"Idempotency-Key": "tok-1"}
    t1 = await api.post("/v1/admin/tokens", json={"name": "x", "role": "viewer"}, headers=headers)
    t2 = await api.post("/v1/admin/tokens", json={"name": "x", "role": "viewer"}, headers=headers)
    assert t1.status_code == 201
    # Created once; the secret is not replayed (test_secret_responses_are_never_stored).
    assert t2.status_code == 409
    assert t1.json()["id"] in t2.json()["error"]["message"]
    tokens = (await api.get("/v1/admin/tokens")).json()["data"]
    assert [t["name"] for t in tokens].count("x") == 1


async def _idempotency_rows(api: Api) -> list[dict[str, object]]:
    from sqlalchemy import select

    async with api.runtime.db.read() as conn:
        return [dict(r._mapping) for r in await conn.execute(select(idempotency_keys))]


async def test_secret_responses_are_never_stored(api: Api) -> None:
    """A token created with an Idempotency-Key is not kept in the idempotency table, and a
    replay never returns it (before or after revocation): 409 naming the token instead."""
    headers = {"Idempotency-Key": "tok-secret"}
    body = {"name": "ci", "role": "admin"}
    first = await api.post("/v1/admin/tokens", json=body, headers=headers)
    assert first.status_code == 201
    secret, token_id = first.json()["token"], first.json()["id"]
    [row] = await _idempotency_rows(api)
    assert secret not in repr(row)
    assert secret[8:] not in repr(row)
    assert row["resource_id"] == token_id
    for _ in range(2):
        again = await api.post("/v1/admin/tokens", json=body, headers=headers)
        assert again.status_code == 409, again.text
        assert again.json()["error"]["code"] == "idempotency_secret_not_kept"
        assert token_id in again.json()["error"]["message"]
        assert secret not in again.text
        assert (await api.delete(f"/v1/admin/tokens/{token_id}")).status_code in (204, 404)


async def test_source_replays_render_the_current_state(api: Api) -> None:
    """Sources (whose responses carry write keys) are rendered again on replay from what is
    stored now, so a revoked key shows as revoked; the idempotency row holds only the id."""
    headers = {"Idempotency-Key": "src-1"}
    first = (await api.post("/v1/admin/sources", json={"name": "Web"}, headers=headers)).json()
    key_id = first["write_keys"][0]["id"]
    rotate_headers = {"Idempotency-Key": "rot-1"}
    path = f"/v1/admin/sources/{first['id']}/write-keys/rotate"
    rotated = (await api.post(path, json={}, headers=rotate_headers)).json()
    for row in await _idempotency_rows(api):
        assert first["write_key"] not in repr(row)
        assert rotated["write_key"] not in repr(row)
        assert row["resource_id"] == first["id"]
    assert (
        await api.delete(f"/v1/admin/sources/{first['id']}/write-keys/{key_id}")
    ).status_code == 204
    for h, url, body in (
        (headers, "/v1/admin/sources", {"name": "Web"}),
        (rotate_headers, path, {}),
    ):
        again = await api.post(url, json=body, headers=h)
        assert again.status_code == 201
        assert again.headers["idempotency-replay"] == "true"
        keys = {k["id"]: k for k in again.json()["write_keys"]}
        assert keys[key_id]["revoked_at"] is not None
        assert len(keys) == 2  # the replayed rotation did not rotate again


async def test_replay_of_a_deleted_resource_is_409(api: Api) -> None:
    source = await api.make_source()
    body = {"source_id": source["id"], "type": "ga4", "name": "x", "config": valid_configs()["ga4"]}
    headers = {"Idempotency-Key": "int-gone"}
    created = (await api.post("/v1/admin/integrations", json=body, headers=headers)).json()
    assert (await api.delete(f"/v1/admin/integrations/{created['id']}")).status_code == 204
    again = await api.post("/v1/admin/integrations", json=body, headers=headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "idempotency_resource_gone"


async def test_overlong_key_is_422(api: Api) -> None:
    r = await api.post(
        "/v1/admin/sources", json={"name": "Web"}, headers={"Idempotency-Key": "x" * 256}
    )
    assert r.status_code == 422

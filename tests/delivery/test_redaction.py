"""Issue 9.9: every credential a request carries is redacted from the failure log and the
integration's last error: stored secrets, OAuth access tokens obtained by refresh (derived),
the credential part of auth headers, and secrets shorter than 4 characters. Both shapes."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from eventrelay.logs import Redactor
from eventrelay.settings import Settings
from tests.support.pipeline import Pipeline, running_pipeline
from tests.support.sink import Received, Sink
from tests.support.vendor import purchase, vendor_run

SECRETS = st.text(
    alphabet=st.characters(categories=["L", "N"], include_characters="-_.~+/="),
    min_size=1,
    max_size=40,
)


@given(secret=SECRETS, other=st.text(max_size=20))
def test_a_secret_of_any_length_is_hidden_where_it_stands_alone(secret: str, other: str) -> None:
    redactor = Redactor([secret])
    for text in (
        orjson.dumps({"key": secret, "other": other}).decode(),
        f"https://v.example/x?key={secret}&other=1",
        f"Authorization: Bearer {secret}",
    ):
        assert redactor.text(text).count(secret) <= text.count(secret) - 1
        assert redactor.value(secret) == "***"


def test_short_secrets_do_not_mask_every_word() -> None:
    redactor = Redactor(["ab1"])
    assert redactor.text('{"key":"ab1","note":"cab1 ab12"}') == '{"key":"***","note":"cab1 ab12"}'
    assert redactor.text("key=ab1&x=2") == "key=***&x=2"
    long = Redactor(["secret-value"])
    assert long.text("xsecret-valuex") == "x***x"  # 4 characters or more: anywhere


def test_text_is_made_storable() -> None:
    assert Redactor([]).text("a\x00b") == "a\ufffdb"


def _echo(status: int) -> Any:
    """A vendor that quotes the request's credentials back in its error."""

    def respond(r: Received) -> tuple[int, dict[str, str], bytes]:
        auth = r.headers.get("Authorization", "")
        body = {
            "error": "unauthorized",
            "received_key": r.headers.get("X-Api-Key"),
            "received_auth": auth,
            "credential": auth.partition(" ")[2],
            "note": "k9x",
        }
        return status, {"Content-Type": "application/json"}, orjson.dumps(body)

    return respond


async def _failure_text(pipe: Pipeline, integration_id: str) -> str:
    async def recorded() -> list[dict[str, Any]]:
        return await pipe.failures(integration_id)

    failures = await pipe.eventually(recorded)
    current = await pipe.integration(integration_id)
    return orjson.dumps({"failures": failures, "integration": current}).decode()


async def test_short_and_derived_webhook_credentials_are_redacted(
    settings: Settings, sink: Sink
) -> None:
    basic = "Basic " + base64.b64encode(b"user:pa55word").decode()
    sink.responder = _echo(400)
    async with running_pipeline(settings) as pipe:
        src = await pipe.api.make_source()
        integration = await pipe.api.make_integration(
            src["id"],
            type="webhook",
            config={
                "url": sink.url + "/hook",
                "headers": {"X-Api-Key": "k9", "Authorization": basic},
            },
        )
        await pipe.track(src["write_key"])
        text = await _failure_text(pipe, integration["id"])
        [failure] = await pipe.failures(integration["id"])
    body = failure["response"]["body"]
    assert '"received_key":"***"' in body  # a 2-character secret, quoted back
    assert '"note":"k9x"' in body  # ...without masking every word that contains it
    assert failure["request"]["headers"]["X-Api-Key"] == "***"
    assert basic.partition(" ")[2] not in text  # the base64 pair alone
    assert "pa55word" not in text


async def test_an_oauth_access_token_echoed_by_the_vendor_is_redacted(settings: Settings) -> None:
    config = {
        "account_id": "508123456",
        "access_token": "AQX-stored-token",
        "conversion_rules": {"Order Completed": "123456"},
        "client_id": "86app",
        "client_secret": "client-secret-value",
        "refresh_token": "AQR-refresh-token",
    }
    async with vendor_run(settings, "linkedin", config, endpoints=("oauth",)) as run:
        echo = _echo(400)

        def respond(r: Received) -> tuple[int, dict[str, str], bytes]:
            if r.path == "/oauth/v2/accessToken":
                token = {"access_token": "AQX-fresh-from-refresh", "expires_in": 3600}
                return 200, {"Content-Type": "application/json"}, orjson.dumps(token)
            return echo(r)  # type: ignore[no-any-return]

        run.vendor.responder = respond
        await run.send(**purchase(campaign={"li_fat_id": "fat-ABC-123"}))
        text = await _failure_text(run.pipe, run.integration["id"])
    assert "AQX-fresh-from-refresh" not in text
    assert "unauthorized" in text

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eventrelay.core.config_secrets import (
    from_pointer,
    merge_secrets,
    restore_masked,
    split_secrets,
    to_pointer,
)
from eventrelay.destinations.webhook import WebhookSettings


@given(st.lists(st.text(), max_size=4))
def test_pointer_round_trip(parts: list[str]) -> None:
    assert from_pointer(to_pointer(tuple(parts))) == tuple(parts)


def test_split_merge_round_trip_with_dotted_header_names() -> None:
    settings = WebhookSettings.model_validate(
        {"url": "https://x.example/h", "headers": {"X.Api~Key": "s3cret", "Other": "v"}}
    )
    public, secrets = split_secrets(settings)
    assert public["headers"] == {"X.Api~Key": "***", "Other": "***"}
    assert secrets == {"/headers/X.Api~0Key": "s3cret", "/headers/Other": "v"}
    merged = merge_secrets(public, secrets)
    assert WebhookSettings.model_validate(merged) == settings
    restored = restore_masked({"url": "https://x.example/h", "headers": {"Other": "***"}}, secrets)
    assert restored["headers"] == {"Other": "v"}

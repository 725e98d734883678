from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eventrelay.core.config_secrets import (
    MASK,
    from_pointer,
    keep_stored,
    merge_secrets,
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
    restored, kept = keep_stored(
        {"url": "https://x.example/h", "headers": {"Other": "***"}}, secrets
    )
    # Left out or "***": both keep the stored value.
    assert restored["headers"] == {"Other": "v", "X.Api~Key": "s3cret"}
    assert sorted(kept) == [("headers", "Other"), ("headers", "X.Api~Key")]


_ACTIONS = st.sampled_from(["omit", "mask", "null", "replace"])


@given(
    st.dictionaries(
        st.text(alphabet="abcXYZ-_.~/", min_size=1, max_size=8),
        st.tuples(st.text(min_size=1, max_size=8), _ACTIONS),
        max_size=5,
    ),
    st.sampled_from(["omit", "mask", "null", "replace"]),
)
def test_keep_stored_follows_the_rule(headers: dict[str, tuple[str, str]], top: str) -> None:
    """Left out or "***" keeps the stored secret, null removes it, a value replaces it; for
    nested (header) secrets and top-level ones alike, in any combination."""
    stored = {to_pointer(("headers", name)): value for name, (value, _) in headers.items()}
    stored["/signing_secret"] = "whsec_stored"
    incoming: dict[str, object] = {"url": "https://x.example/h", "headers": {}}

    def apply(parent: dict[str, object], key: str, action: str) -> None:
        if action == "mask":
            parent[key] = MASK
        elif action == "null":
            parent[key] = None
        elif action == "replace":
            parent[key] = "new-" + key

    for name, (_, action) in headers.items():
        apply(incoming["headers"], name, action)  # type: ignore[arg-type]
    apply(incoming, "signing_secret", top)
    result, kept = keep_stored(incoming, stored)

    def expect(parent: dict[str, object], key: str, stored_value: str, action: str) -> None:
        if action == "null":
            assert key not in parent
        elif action == "replace":
            assert parent[key] == "new-" + key
        else:
            assert parent[key] == stored_value

    for name, (value, action) in headers.items():
        expect(result["headers"], name, value, action)
    expect(result, "signing_secret", "whsec_stored", top)
    expected_kept = {("headers", n) for n, (_, a) in headers.items() if a in ("omit", "mask")}
    if top in ("omit", "mask"):
        expected_kept.add(("signing_secret",))
    assert set(kept) == expected_kept
    assert incoming["headers"] is not result["headers"]  # the request body is not modified

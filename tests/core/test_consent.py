from __future__ import annotations

from eventrelay.core.consent import allows, granted_categories


def event(prefs: object) -> dict[str, object]:
    return {"context": {"consent": {"categoryPreferences": prefs}}}


def test_granted_categories() -> None:
    assert granted_categories({}) is None
    assert granted_categories({"context": {}}) is None
    assert granted_categories(event({"Advertising": True, "Analytics": False})) == {"advertising"}


def test_allows() -> None:
    granted = granted_categories(event({"Advertising": True, "Analytics": True}))
    assert allows(["advertising"], granted)
    assert allows([], None)
    assert not allows(["advertising", "marketing"], granted)
    assert not allows(["analytics"], None, "deny")
    assert allows(["analytics"], None, "allow")
    # Consent present but category missing: denied even when the source default is allow.
    assert not allows(["marketing"], granted, "allow")

"""PII rules: the reference's hash vectors, and Meta's rules against facebook-business."""

from __future__ import annotations

import pytest
from facebook_business.adobjects.serverside.normalize import Normalize
from hypothesis import given, settings
from hypothesis import strategies as st

from eventrelay.destinations.common import normalize as n
from eventrelay.destinations.common import pii

VECTORS = [
    # (rule, raw input, expected sha256) from ../shared/reference/vendors-ads.md section 0.2
    (
        n.email,
        "Person@Example.com",
        "542d240129883c019e106e3b1b2d3f3cb3537c43c425364de8e951d5a3083345",
    ),
    (
        n.phone_digits,
        "+44 844 412 4653",
        "dc008fda46e2e64002cf2f82a4906236282d431c4f75e5b60bfe79fc48546383",
    ),
    (n.name_letters, "John", "96d9632f363564cc3032521409cf22a852f2032eec099ed5967c0d000cec607a"),
    (
        n.email,
        " Test.User+promo@GMail.com ",
        "32a9e04e3ad492cdf6aa11f7795002253c9952f832f3e3764865a0a39f7c1053",
    ),
    (
        n.email_google,
        " Test.User+promo@GMail.com ",
        "dae9c7c55697ba170d6b494c458649bd469af525520280d0dcfc98d74d13b17e",
    ),
    (
        n.phone_e164,
        "+1 (650) 555-1234",
        "a2996076d3ad4af5dc818b908b3d8e354f26ededf7df0e0aa6ac354143805ee0",
    ),
    (
        n.phone_digits,
        "+1 (650) 555-1234",
        "6069d14bf122fdfd931dc7beb58e5dfbba395b1faf05bdcd42d12358d63d8599",
    ),
]


@pytest.mark.parametrize(("rule", "raw", "expected"), VECTORS)
def test_reference_vectors(rule: n.Rule, raw: str, expected: str) -> None:
    assert n.hash_value(raw, rule) == expected


def test_meta_vectors() -> None:
    assert n.meta_hash("em", " Test.User+promo@GMail.com ") == VECTORS[3][2]
    assert n.meta_hash("ph", "+1 (650) 555-1234") == VECTORS[6][2]


def test_already_hashed_values_pass_through() -> None:
    digest = VECTORS[0][2]
    assert n.hash_value(digest.upper(), n.email) == digest
    assert n.hash_value(digest, n.phone_e164) == digest
    assert n.meta_hash("em", digest.upper()) == digest


def test_invalid_values_are_left_out() -> None:
    assert n.hash_value("not an email", n.email) is None
    assert n.hash_value("", n.email) is None
    assert n.hash_value(None, n.email) is None
    assert n.hash_value("12", n.phone_e164) is None
    assert n.meta_hash("ph", "650.555.1234") is None
    assert n.meta_hash("country", "Atlantis") is None


def test_google_email_keeps_dots_elsewhere() -> None:
    assert n.email_google("First.Last+x@Example.com") == "first.last+x@example.com"
    assert n.email_google("f.l+tag@googlemail.com") == "fl@googlemail.com"


def test_small_rules() -> None:
    assert n.gender("Female") == "f"
    assert n.birthdate("1990-04-23") == "19900423"
    assert n.country_code("United States") == "us"
    assert n.country_code("DEU") == "de"
    assert n.phone_e164("0044 20 7946 0958") == "+442079460958"
    # Without a country code nothing is invented (issue 8): no "+6505551234".
    assert n.phone_e164("(650) 555-1234") is None
    assert n.phone_digits("650.555.1234") is None


def test_vendor_specific_rules() -> None:
    assert n.gender_mfn("Non-Binary") == "n"
    assert n.gender_mfn("male") == "m"
    assert n.state_code(" CA ") == "ca"
    assert n.state_code("California") == "ca"  # a US state name becomes its code
    assert n.state_code("Bavaria") is None
    assert n.zip_digits("94107-1234") == "94107"
    assert n.zip_digits("SW1A 1AA") is None
    assert n.street("  12 Main St., Apt #4  ") == "12 main st apt 4"
    assert n.place(" São Paulo 2 ") == "são paulo"
    assert n.country_upper("Germany") == "DE"


def test_hashed_list_drops_empties_and_repeats() -> None:
    assert pii.unique(["a", None, "", "b", "a"]) == ["a", "b"]
    assert pii.unique([None, ""]) is None


def _person(**values: str | None) -> pii.Reader:
    return lambda name: (values.get(name),)


def test_vendor_tables_keep_their_phone_and_email_rules() -> None:
    """The same person, through each vendor's table: section 0.2's forms, per vendor."""
    read = _person(email=" Test.User+promo@GMail.com ", phone="+1 (650) 555-1234")
    email_other, email_google = VECTORS[3][2], VECTORS[4][2]
    phone_plus, phone_digits = VECTORS[5][2], VECTORS[6][2]
    assert pii.GOOGLE_ADS.apply(read) == {
        "hashedEmail": email_google,
        "hashedPhoneNumber": phone_plus,
    }
    assert pii.GA4.apply(read, arrays=True) == {
        "sha256_email_address": [email_google],
        "sha256_phone_number": [phone_plus],
    }
    assert pii.TIKTOK.apply(read) == {"email": email_other, "phone": phone_plus}
    for table in (pii.META, pii.PINTEREST, pii.SNAPCHAT):
        assert table.apply(read, arrays=True) == {"em": [email_other], "ph": [phone_digits]}
    assert pii.LINKEDIN.apply(read) == {"SHA256_EMAIL": email_other}


def test_clear_fields_are_normalised_not_hashed() -> None:
    read = _person(city="New York 2", state="NY", country="United States", postal_code="10001")
    assert pii.TIKTOK.apply(read) == {
        "city": "newyork2",
        "state": "ny",
        "country": "us",
        "zip_code": n.sha256("10001"),
    }
    assert pii.GA4_ADDRESS.apply(read) == {
        "city": "new york",
        "region": "ny",
        "postal_code": "10001",
        "country": "US",
    }


def test_meta_table_prepares_gender_birthday_country() -> None:
    read = _person(gender="Female", birthday="1990-04-23", country="Germany")
    assert pii.META.apply(read) == {
        "ge": n.sha256("f"),
        "db": n.sha256("19900423"),
        "country": n.sha256("de"),
    }


def test_both_ids_are_hashed_as_given() -> None:
    def read(name: str) -> tuple[str | None, ...]:
        return ("User-1", "anon-1") if name == "user_ids" else (None,)

    assert pii.PINTEREST.apply(read, arrays=True) == {
        "external_id": [n.sha256("User-1"), n.sha256("anon-1")]
    }


def _normalize(field: str, value: str) -> str | None:
    """facebook-business's answer: None when it refuses the value."""
    try:
        result = Normalize.normalize_field(field, value)
    except (TypeError, ValueError, AttributeError):
        return None
    # We leave a field out instead of sending the hash of an empty string.
    return None if result == n.sha256("") else result


emails = st.one_of(
    st.emails().map(lambda e: e.upper() if len(e) % 3 == 0 else e),
    st.text(max_size=30),
    st.builds(
        lambda a, b: f" {a}@{b}.com ",
        st.text(min_size=1, max_size=10),
        st.text(min_size=1, max_size=8),
    ),
)
phones = st.one_of(
    st.from_regex(r"\+?(00)?[0-9 ()\-.]{4,20}", fullmatch=True),
    st.text(alphabet="0123456789+-() .", max_size=20),
)
places = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=25)
countries = st.one_of(
    st.sampled_from(["US", "us", " de ", "GB", "u.s.", "United States", "zz", "FRA", "1"]),
    st.text(max_size=5),
)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(["em"]), value=emails)
def test_meta_email_matches_facebook_business(field: str, value: str) -> None:
    assert n.meta_hash(field, value) == _normalize(field, value)


@settings(max_examples=300, deadline=None)
@given(value=phones)
def test_meta_phone_matches_facebook_business(value: str) -> None:
    assert n.meta_hash("ph", value) == _normalize("ph", value)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(["fn", "ln", "ct", "st", "zp", "ge", "db"]), value=places)
def test_meta_other_fields_match_facebook_business(field: str, value: str) -> None:
    assert n.meta_hash(field, value) == _normalize(field, value)


@settings(max_examples=200, deadline=None)
@given(value=countries)
def test_meta_country_matches_facebook_business(value: str) -> None:
    assert n.meta_hash("country", value) == _normalize("country", value)

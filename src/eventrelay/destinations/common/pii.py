"""Every vendor's user-data fields: the user attribute each is read from and its rule.

One table per vendor (`FieldRules`), so the vendors' differences stand side by side; a vendor
module applies its table and never writes a rule of its own. The rules are in `normalize`;
reading the attributes from an event (and turning phone numbers into E.164 first) is
`segment.attributes`.

Sources per vendor: ../shared/reference/vendors-ads.md section 0.2 and each vendor section;
Google's name rule (digits and symbols removed, lower-cased, trimmed: inner spaces stay) from
https://developers.google.com/analytics/devguides/collection/ga4/uid-data; Snap's from
https://developers.snap.com/api/marketing-api/Conversions-API/Parameters ("use lower case
letters only ... remove any punctuation"; Snap's own Segment integration also removes every
space, segmentio/action-destinations snap-capi-v3.ts); Meta's external_id as facebook-business
`UserData.normalize` passes it (untouched).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from eventrelay.destinations.common import normalize as n

# Reads a user attribute by name ("email", "phone", "city", "user_ids", ...): its values, most
# often one. `segment.attributes(event)` is the reader for a Segment event.
Reader = Callable[[str], Sequence[object]]


def unique(values: Iterable[str | None]) -> list[str] | None:
    """The non-empty values once each, in order; None when none is left (vendors that take
    arrays want the field left out rather than sent empty)."""
    return list(dict.fromkeys(v for v in values if v)) or None


@dataclass(frozen=True, slots=True)
class FieldRule:
    source: str  # the user attribute the field is read from
    rule: n.Rule
    hashed: bool = True  # False: normalised and sent in clear


class FieldRules:
    """One vendor's fields, each with the attribute it is read from and its rule. `hasher`
    normalises with the rule and hashes (`hash_value` unless the vendor's own, as for Meta)."""

    __slots__ = ("fields", "hasher")

    def __init__(
        self,
        fields: Mapping[str, FieldRule],
        hasher: Callable[[object, n.Rule], str | None] = n.hash_value,
    ) -> None:
        self.fields: Mapping[str, FieldRule] = MappingProxyType(dict(fields))
        self.hasher = hasher

    def apply(self, read: Reader, arrays: bool = False) -> dict[str, Any]:
        """Every field that has a value, in table order: its normalised (and, unless clear,
        hashed) value, or with `arrays` the list of its distinct values. Fields with nothing
        valid are left out."""
        out: dict[str, Any] = {}
        for name, field in self.fields.items():
            values = read(field.source)
            if field.hashed:
                found = unique(self.hasher(value, field.rule) for value in values)
            else:
                found = unique(_normalised(value, field.rule) for value in values)
            if found:
                out[name] = found if arrays else found[0]
        return out


def _normalised(value: object, rule: n.Rule) -> str | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    return rule(str(value))


def _hashed(source: str, rule: n.Rule) -> FieldRule:
    return FieldRule(source, rule)


def _clear(source: str, rule: n.Rule) -> FieldRule:
    return FieldRule(source, rule, hashed=False)


# Meta user_data (reference 2.4): facebook-business's rules (`meta_hash`), with gender, birth
# date, state and country first brought to the form they check (m/f, YYYYMMDD, the 2-letter
# state code Meta documents, an ISO code). external_id as given (not lower-cased).
META = FieldRules(
    {
        "em": _hashed("email", n.meta("em")),
        "ph": _hashed("phone", n.meta("ph")),
        "fn": _hashed("first_name", n.meta("fn")),
        "ln": _hashed("last_name", n.meta("ln")),
        "ge": _hashed("gender", n.then(n.gender, n.meta("ge"))),
        "db": _hashed("birthday", n.then(n.birthdate, n.meta("db"))),
        "ct": _hashed("city", n.meta("ct")),
        "st": _hashed("state", n.then(n.us_state, n.meta("st"))),
        "zp": _hashed("postal_code", n.meta("zp")),
        "country": _hashed("country", n.then(n.country_code, n.meta("country"))),
        "external_id": _hashed("user_ids", n.meta_external_id),
    },
    hasher=n.meta_hash_value,
)

# GA4 user_data (reference 1.4), Google's rules: email and phone at the top (arrays) ...
GA4 = FieldRules(
    {
        "sha256_email_address": _hashed("email", n.email_google),
        "sha256_phone_number": _hashed("phone", n.phone_e164),
    }
)
# ... and one `address` entry: names and street hashed, the rest in clear.
GA4_ADDRESS = FieldRules(
    {
        "sha256_first_name": _hashed("first_name", n.name_google),
        "sha256_last_name": _hashed("last_name", n.name_google),
        "sha256_street": _hashed("street", n.street),
        "city": _clear("city", n.place),
        "region": _clear("state", n.place),
        "postal_code": _clear("postal_code", n.exact),
        "country": _clear("country", n.country_upper),  # [unverified: case]
    }
)

# Google Ads userIdentifiers (reference 3.2, 3.4): only email and phone (a click conversion
# takes no names, so Google's name rule has nothing to apply to here).
GOOGLE_ADS = FieldRules(
    {
        "hashedEmail": _hashed("email", n.email_google),
        "hashedPhoneNumber": _hashed("phone", n.phone_e164),
    }
)

# TikTok `user` (reference 4.4). external_id keeps its case, as TikTok's template does; city,
# state and country go in clear ([impl] Segment).
TIKTOK = FieldRules(
    {
        "email": _hashed("email", n.email),
        "phone": _hashed("phone", n.phone_e164),  # E.164 with + [impl]
        "external_id": _hashed("external_id", n.exact),
        "first_name": _hashed("first_name", n.no_spaces_lower),
        "last_name": _hashed("last_name", n.no_spaces_lower),
        "zip_code": _hashed("postal_code", n.no_spaces_lower),
        "city": _clear("city", n.alnum_lower),
        "state": _clear("state", n.alnum_lower),
        "country": _clear("country", n.country_code),
    }
)

# Pinterest user_data (reference 5.4).
PINTEREST = FieldRules(
    {
        "em": _hashed("email", n.email),
        "ph": _hashed("phone", n.phone_digits),
        # Names: "lowercase" per the spec; Segment also removes inner spaces [impl], not done.
        "fn": _hashed("first_name", n.lower),
        "ln": _hashed("last_name", n.lower),
        "ge": _hashed("gender", n.gender_mfn),
        "db": _hashed("birthday", n.birthdate),
        # "lowercase without spaces/punctuation": letters only.
        "ct": _hashed("city", n.name_letters),
        "st": _hashed("state", n.state_code),
        "zp": _hashed("postal_code", n.zip_digits),
        "country": _hashed("country", n.country_code),
        # Both ids, hashed as given: they are case-sensitive.
        "external_id": _hashed("user_ids", n.exact),
        # GAID/IDFA: no normalisation is documented; lower-cased here [unverified].
        "hashed_maids": _hashed("advertising_id", n.lower),
    }
)

# Snap user_data (reference 6.4, Snap's Parameters page): names letters only; ct and
# external_id lower-case without whitespace ([impl] Segment); st the 2-letter code of a US
# state, zp a US ZIP's 5 digits (as for Meta).
SNAPCHAT = FieldRules(
    {
        "em": _hashed("email", n.email),
        "ph": _hashed("phone", n.phone_digits),
        "fn": _hashed("first_name", n.name_letters),
        "ln": _hashed("last_name", n.name_letters),
        "ct": _hashed("city", n.no_spaces_lower),
        "st": _hashed("state", n.state_snap),
        "zp": _hashed("postal_code", n.zip_snap),
        "country": _hashed("country", n.country_code),
        "external_id": _hashed("external_id", n.no_spaces_lower),
    }
)

# LinkedIn (reference 7.2, 7.4): the ids by idType, hashed ...
LINKEDIN = FieldRules({"SHA256_EMAIL": _hashed("email", n.email)})
# ... and the parts of userInfo that need a rule (it goes in clear).
LINKEDIN_USER_INFO = FieldRules({"countryCode": _clear("country", n.country_upper)})

# The Trade Desk takes no PII: only the US state of a limited-data-use region ("us-<state>").
THE_TRADE_DESK = FieldRules({"region_state": _clear("state", n.state_code)})

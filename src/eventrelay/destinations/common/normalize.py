"""Normalising and SHA-256 hashing user data, one rule per kind of value.

Vendors disagree (../shared reference, section 0.2): Google and TikTok keep `+` in phone
numbers, Meta, Pinterest and Snap want digits only; Google removes dots and `+tag` in gmail
local parts, the others do not. The rules are here; which vendor field uses which rule is the
vendor's table in `pii`.

`hash_value(value, rule)` returns lowercase hex SHA-256 of the normalised value, passes a value
that already is 64 hex characters (a hash) through lower-cased, and returns None when the value
is empty or not valid for the rule (the field is then left out rather than sent wrong).

Phone numbers reach these rules already in E.164 (`phone.to_e164`, with the phonenumbers
library and a default country); the rules only write them the vendor's way and refuse a
number without a country code rather than invent one.

The Meta rules reproduce facebook-business's `Normalize.normalize_field` exactly (checked by a
property-based test against the package), except `external_id`, which facebook-business's
`UserData.normalize` passes through untouched (no lower-casing): it is hashed as given.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import date, datetime

import pycountry

Rule = Callable[[str], str | None]

_SHA256 = re.compile(r"^[a-f0-9]{64}$")
_MD5 = re.compile(r"^[a-f0-9]{32}$")
_EMAIL = re.compile(r".+@.+\..+")
_NOT_DIGIT = re.compile(r"\D")
_PHONE_SEPARATORS = re.compile(r"[\s\-()]")
_INTERNATIONAL = re.compile(r"^\d{1,4}\(?\d{2,3}\)?\d{4,}$")
_LOCATION_EXCLUDED = re.compile(r"[0-9.\s\-()]")
_NOT_A_TO_Z = re.compile(r"[^a-z]")
_WHITESPACE = re.compile(r"\s")
_NOT_LETTER = re.compile(r"[^\w]|[\d_]", re.UNICODE)
_ALNUM = re.compile(r"[^a-z0-9]")
_SYMBOLS = re.compile(r"[^\w\s]|_", re.UNICODE)
_SYMBOLS_DIGITS = re.compile(r"[^\w\s]|[\d_]", re.UNICODE)
_SPACES = re.compile(r"\s+")
_DIGITS = re.compile(r"^[0-9]+$")
_US_ZIP = re.compile(r"^(\d{5})(-?\d{4})?$")
_COUNTRY_CODES = frozenset(c.alpha_2.lower() for c in pycountry.countries)
# US state and territory names -> 2-letter codes ("California" -> "ca").
_US_STATES: dict[str, str] = {
    _ALNUM.sub("", str(s.name).lower()): str(s.code).split("-")[1].lower()
    for s in pycountry.subdivisions  # the US states and territories
    if str(s.country_code) == "US"
}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_hashed(text: str) -> bool:
    return bool(_SHA256.match(text.strip().lower()))


def hash_value(value: object, rule: Rule) -> str | None:
    """Normalise with `rule` and hash; pass through values already hashed."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = str(value).strip()
    if not text:
        return None
    lowered = text.lower()
    if _SHA256.match(lowered):
        return lowered
    normalised = rule(text)
    return sha256(normalised) if normalised else None


# --- shared rules ----------------------------------------------------------------------------


def lower(text: str) -> str | None:
    return text.strip().lower() or None


def exact(text: str) -> str | None:
    """No change but trimming (case-sensitive ids: TikTok and Meta external_id)."""
    return text.strip() or None


def email(text: str) -> str | None:
    """Trim and lower-case; must look like an address (Meta, TikTok, Pinterest, Snap, LinkedIn)."""
    value = text.strip().lower()
    return value if _EMAIL.match(value) else None


def email_google(text: str) -> str | None:
    """Google's rule: trim, lower-case; for gmail.com/googlemail.com also drop every `.` and any
    `+suffix` of the local part (Data Manager formatting guide)."""
    value = text.strip().lower()
    if not _EMAIL.match(value):
        return None
    local, _, domain = value.rpartition("@")
    if domain in ("gmail.com", "googlemail.com"):
        local = local.split("+", 1)[0].replace(".", "")
        if not local:
            return None
    return f"{local}@{domain}"


def _international_digits(text: str) -> str | None:
    """The digits of a number written with its country code (`+` or a leading `00`); None for
    a number without one: nothing here can tell which country it belongs to."""
    value = text.strip()
    digits = _NOT_DIGIT.sub("", value)
    if value.startswith("+"):
        pass
    elif digits.startswith("00"):
        digits = digits[2:]
    else:
        return None
    return digits if 7 <= len(digits) <= 15 and not digits.startswith("0") else None


def phone_e164(text: str) -> str | None:
    """`+` and digits (Google, TikTok): '+1 (650) 555-1234' -> '+16505551234'."""
    digits = _international_digits(text)
    return "+" + digits if digits else None


def phone_digits(text: str) -> str | None:
    """Digits only with the country code, no `+` (Pinterest, Snap): '+44 844 412 4653' ->
    '448444124653'."""
    return _international_digits(text)


def name_google(text: str) -> str | None:
    """Google's name rule (GA4 user-provided data, Google Ads enhanced conversions): digits and
    symbols removed, lower-cased, trimmed; inner spaces stay ("Van der Berg" -> "van der berg")."""
    value = _SPACES.sub(" ", _SYMBOLS_DIGITS.sub("", text.strip().lower())).strip()
    return value or None


def name_letters(text: str) -> str | None:
    """Lower-case letters only: digits, punctuation and spaces removed (Snap fn/ln: "use lower
    case letters only ... remove any punctuation", and Snap's own Segment integration strips
    every space; Pinterest city)."""
    value = _NOT_LETTER.sub("", text.strip().lower())
    return value or None


def no_spaces_lower(text: str) -> str | None:
    """Lower-case with all whitespace removed (TikTok names and zip, Snap city)."""
    value = _WHITESPACE.sub("", text.strip().lower())
    return value or None


def alnum_lower(text: str) -> str | None:
    value = _ALNUM.sub("", text.strip().lower())
    return value or None


def gender(text: str) -> str | None:
    value = text.strip().lower()
    if value in ("m", "male", "man"):
        return "m"
    if value in ("f", "female", "woman"):
        return "f"
    return None


def gender_mfn(text: str) -> str | None:
    """`m`, `f` or `n` (non-binary): Pinterest's values."""
    if text.strip().lower() in ("n", "non-binary", "nonbinary"):
        return "n"
    return gender(text)


def us_state(text: str) -> str:
    """A US state's name as its 2-letter code ("New York" -> "ny"); anything else as given."""
    return _US_STATES.get(_ALNUM.sub("", text.strip().lower()), text)


def state_code(text: str) -> str | None:
    """A 2-letter state code, lower-case (Pinterest `st`, Snap `st`, The Trade Desk's
    `us-<state>`); a US state's full name becomes its code. Anything else would be a value the
    vendor can never match."""
    code = alnum_lower(us_state(text))
    return code if code and len(code) == 2 and code.isalpha() else None


def state_snap(text: str) -> str | None:
    """Snap `st`: the 2-letter code for a US state (by code or full name), other regions
    lower-cased without spaces (Snap's own Segment integration maps US state names to codes)."""
    return state_code(text) or no_spaces_lower(text)


def zip_digits(text: str) -> str | None:
    """Digits only (Pinterest `zp`). A US ZIP+4 keeps its 5-digit ZIP; a postcode with letters,
    which cannot be written in digits, is left out: our reading of the rule [unverified]."""
    head = _WHITESPACE.sub("", text.split("-", 1)[0])
    return head if _DIGITS.match(head) else None


def zip_snap(text: str) -> str | None:
    """Snap `zp`: a US ZIP+4 as its 5-digit ZIP (as Meta's rule does), other postcodes
    lower-cased without spaces."""
    value = _WHITESPACE.sub("", text.strip().lower())
    match = _US_ZIP.match(value)
    return match.group(1) if match else (value or None)


def street(text: str) -> str | None:
    """Google's street rule (GA4 reference 1.4): symbols removed, lower-cased, trimmed
    (inner runs of spaces folded to one)."""
    value = _SPACES.sub(" ", _SYMBOLS.sub("", text.strip().lower())).strip()
    return value or None


def place(text: str) -> str | None:
    """A city or region sent in clear (GA4): normalised like the hashed parts, lower case, no
    digits or symbols, trimmed [unverified: the reference only says they are not hashed]."""
    value = _SPACES.sub(" ", _SYMBOLS_DIGITS.sub("", text.strip().lower())).strip()
    return value or None


def birthdate(text: str) -> str | None:
    """YYYYMMDD from an ISO date or date-time."""
    value = text.strip()
    try:
        if len(value) == 8 and value.isdigit():
            parsed = date(int(value[:4]), int(value[4:6]), int(value[6:]))
        else:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None
    return parsed.strftime("%Y%m%d")


def country_code(text: str) -> str | None:
    """ISO 3166-1 alpha-2, lower-case; also accepts a country name, an alpha-3 code or "UK"."""
    value = text.strip()
    if value.lower() in _COUNTRY_CODES:
        return value.lower()
    if value.lower() in ("uk", "u.k."):
        return "gb"
    try:
        return str(pycountry.countries.lookup(value).alpha_2).lower()
    except LookupError:
        return None


def country_upper(text: str) -> str | None:
    """ISO 3166-1 alpha-2 in upper case, as the standard writes it (Google, LinkedIn, sent in
    clear)."""
    code = country_code(text)
    return code.upper() if code else None


def then(first: Rule, second: Rule) -> Rule:
    """`first`, then `second` on its result."""

    def rule(text: str) -> str | None:
        value = first(text)
        return second(value) if value else None

    return rule


# --- Meta (facebook-business Normalize.normalize_field, exactly) ----------------------------


def meta(field: str) -> Rule:
    def rule(text: str) -> str | None:
        value = text.lower().strip()
        if _MD5.match(value) or _SHA256.match(value):
            return value
        if field == "em":
            return value if _EMAIL.match(value) else None
        if field in ("ct", "st"):
            return _LOCATION_EXCLUDED.sub("", value)
        if field == "zp":
            return _WHITESPACE.sub("", value).split("-")[0]
        if field == "country":
            code = _NOT_A_TO_Z.sub("", value)
            return code if code in _COUNTRY_CODES else None
        if field == "ph":
            value = _PHONE_SEPARATORS.sub("", value)
            value = re.sub(r"^\+?0{0,2}", "", value)
            value = re.sub(r"^\+?0{0,2}", "", value)
            if value.startswith("0"):
                return None
            match = _INTERNATIONAL.match(value)
            return match.group() if match else None
        return value

    return rule


def meta_external_id(text: str) -> str | None:
    """Meta external_id: as given, only trimmed (facebook-business passes it through; a
    lower-cased id would not equal the Pixel's for case-sensitive ids); a hash in upper-case hex
    is lower-cased so that it passes through."""
    value = text.strip()
    lowered = value.lower()
    return lowered if _MD5.match(lowered) or _SHA256.match(lowered) else (value or None)


def meta_hash(field: str, value: object) -> str | None:
    """Meta's normalisation for a user_data field (em, ph, fn, ln, ge, db, ct, st, zp, country),
    then SHA-256. Like facebook-business, an MD5 or SHA-256 hex value passes through. One
    deliberate difference: where Normalize would hash an empty string (a value of only spaces,
    a city of only digits), the field is left out instead."""
    return meta_hash_value(value, meta(field))


def meta_hash_value(value: object, rule: Rule) -> str | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    normalised = rule(str(value))
    if not normalised:
        return None
    if _MD5.match(normalised) or _SHA256.match(normalised):
        return normalised
    return sha256(normalised)

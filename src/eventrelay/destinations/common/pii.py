"""PII normalisation and SHA-256 hashing, one rule per kind of value, chosen per vendor field.

Vendors disagree (../shared reference, section 0.2): Google and TikTok keep `+` in phone
numbers, Meta, Pinterest and Snap want digits only; Google removes dots and `+tag` in gmail
local parts, the others do not. A vendor module picks a rule per field and never writes its own.

`hash_value(value, rule)` returns lowercase hex SHA-256 of the normalised value, passes a value
that already is 64 hex characters (a hash) through lower-cased, and returns None when the value
is empty or not valid for the rule (the field is then left out rather than sent wrong).

The Meta rules reproduce facebook-business's `Normalize.normalize_field` exactly (checked by a
property-based test against the package).
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
_COUNTRY_CODES = frozenset(c.alpha_2.lower() for c in pycountry.countries)


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
    """No change but trimming (case-sensitive ids, e.g. TikTok external_id)."""
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


def phone_e164(text: str) -> str | None:
    """`+` and digits (Google, TikTok): '+1 (650) 555-1234' -> '+16505551234'. A leading
    international `00` becomes `+`. Without a country code nothing can add one: digits are kept
    as given."""
    value = text.strip()
    digits = _NOT_DIGIT.sub("", value)
    if not value.startswith("+") and digits.startswith("00"):
        digits = digits[2:]
    if not 7 <= len(digits) <= 15:
        return None
    return "+" + digits


def phone_digits(text: str) -> str | None:
    """Digits only with the country code, no `+`, no leading zeros (Pinterest, Snap)."""
    digits = _NOT_DIGIT.sub("", text).lstrip("0")
    return digits if 7 <= len(digits) <= 15 else None


def name_letters(text: str) -> str | None:
    """Lower-case letters only: digits, punctuation and spaces removed (Snap, Google names)."""
    value = _NOT_LETTER.sub("", text.strip().lower())
    return value or None


def no_spaces_lower(text: str) -> str | None:
    """Lower-case with all whitespace removed (TikTok names and zip, Pinterest city)."""
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
    """ISO 3166-1 alpha-2, lower-case; also accepts a country name or alpha-3 code."""
    value = text.strip()
    if value.lower() in _COUNTRY_CODES:
        return value.lower()
    try:
        return str(pycountry.countries.lookup(value).alpha_2).lower()
    except LookupError:
        return None


def unhashed_country(value: object) -> str | None:
    """Country as a plain lower-case code (vendors that take it unhashed)."""
    if value is None:
        return None
    return country_code(str(value))


# --- Meta (facebook-business Normalize.normalize_field, exactly) ----------------------------


def _meta(field: str) -> Rule:
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


def meta_hash(field: str, value: object) -> str | None:
    """Meta's normalisation for a user_data field (em, ph, fn, ln, ge, db, ct, st, zp, country,
    external_id), then SHA-256. Like facebook-business, an MD5 or SHA-256 hex value passes
    through. One deliberate difference: where Normalize would hash an empty string (a value of
    only spaces, a city of only digits), the field is left out instead."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    normalised = _meta(field)(str(value))
    if not normalised:
        return None
    if _MD5.match(normalised) or _SHA256.match(normalised):
        return normalised
    return sha256(normalised)

"""PII normalisation and SHA-256 hashing, one rule per kind of value, chosen per vendor field.

Vendors disagree (../shared reference, section 0.2): Google and TikTok keep `+` in phone
numbers, Meta, Pinterest and Snap want digits only; Google removes dots and `+tag` in gmail
local parts, the others do not. Every vendor field is an entry of that vendor's table at the
end of this module (`FieldRules`: the user attribute it is read from and its rule), so the
differences stand side by side; a vendor module applies its table and never writes a rule of
its own.

`hash_value(value, rule)` returns lowercase hex SHA-256 of the normalised value, passes a value
that already is 64 hex characters (a hash) through lower-cased, and returns None when the value
is empty or not valid for the rule (the field is then left out rather than sent wrong).

The Meta rules reproduce facebook-business's `Normalize.normalize_field` exactly (checked by a
property-based test against the package).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

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


def unique(values: Iterable[str | None]) -> list[str] | None:
    """The non-empty values once each, in order; None when none is left (vendors that take
    arrays want the field left out rather than sent empty)."""
    return list(dict.fromkeys(v for v in values if v)) or None


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


def gender_mfn(text: str) -> str | None:
    """`m`, `f` or `n` (non-binary): Pinterest's values."""
    if text.strip().lower() in ("n", "non-binary", "nonbinary"):
        return "n"
    return gender(text)


def state_code(text: str) -> str | None:
    """A 2-letter state code, lower-case (Pinterest `st`, The Trade Desk's `us-<state>`):
    anything else would be a value the vendor can never match."""
    code = alnum_lower(text)
    return code if code and len(code) == 2 and code.isalpha() else None


def zip_digits(text: str) -> str | None:
    """Digits only (Pinterest `zp`). A US ZIP+4 keeps its 5-digit ZIP; a postcode with letters,
    which cannot be written in digits, is left out: our reading of the rule [unverified]."""
    head = _WHITESPACE.sub("", text.split("-", 1)[0])
    return head if _DIGITS.match(head) else None


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
    """ISO 3166-1 alpha-2, lower-case; also accepts a country name or alpha-3 code."""
    value = text.strip()
    if value.lower() in _COUNTRY_CODES:
        return value.lower()
    try:
        return str(pycountry.countries.lookup(value).alpha_2).lower()
    except LookupError:
        return None


def country_upper(text: str) -> str | None:
    """ISO 3166-1 alpha-2 in upper case, as the standard writes it (Google, LinkedIn, sent in
    clear)."""
    code = country_code(text)
    return code.upper() if code else None


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
    return _meta_hash_value(value, _meta(field))


def _meta_hash_value(value: object, rule: Rule) -> str | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    normalised = rule(str(value))
    if not normalised:
        return None
    if _MD5.match(normalised) or _SHA256.match(normalised):
        return normalised
    return sha256(normalised)


def _then(first: Rule, second: Rule) -> Rule:
    def rule(text: str) -> str | None:
        value = first(text)
        return second(value) if value else None

    return rule


# --- every vendor field's rule ----------------------------------------------------------------

# Reads a user attribute by name ("email", "phone", "city", "user_ids", ...): its values, most
# often one. `segment.attributes(event)` is the reader for a Segment event.
Reader = Callable[[str], Sequence[object]]


@dataclass(frozen=True, slots=True)
class FieldRule:
    source: str  # the user attribute the field is read from
    rule: Rule
    hashed: bool = True  # False: normalised and sent in clear


class FieldRules:
    """One vendor's fields, each with the attribute it is read from and its rule. `hasher`
    normalises with the rule and hashes (`hash_value` unless the vendor's own, as for Meta)."""

    __slots__ = ("fields", "hasher")

    def __init__(
        self,
        fields: Mapping[str, FieldRule],
        hasher: Callable[[object, Rule], str | None] = hash_value,
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


def _normalised(value: object, rule: Rule) -> str | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    return rule(str(value))


def _hashed(source: str, rule: Rule) -> FieldRule:
    return FieldRule(source, rule)


def _clear(source: str, rule: Rule) -> FieldRule:
    return FieldRule(source, rule, hashed=False)


# Meta user_data (reference 2.4): facebook-business's rules (`meta_hash`), with gender, birth
# date and country first brought to the form they check (m/f, YYYYMMDD, an ISO code).
META = FieldRules(
    {
        "em": _hashed("email", _meta("em")),
        "ph": _hashed("phone", _meta("ph")),
        "fn": _hashed("first_name", _meta("fn")),
        "ln": _hashed("last_name", _meta("ln")),
        "ge": _hashed("gender", _then(gender, _meta("ge"))),
        "db": _hashed("birthday", _then(birthdate, _meta("db"))),
        "ct": _hashed("city", _meta("ct")),
        "st": _hashed("state", _meta("st")),
        "zp": _hashed("postal_code", _meta("zp")),
        "country": _hashed("country", _then(country_code, _meta("country"))),
        "external_id": _hashed("user_ids", _meta("external_id")),
    },
    hasher=_meta_hash_value,
)

# GA4 user_data (reference 1.4), Google's rules: email and phone at the top (arrays) ...
GA4 = FieldRules(
    {
        "sha256_email_address": _hashed("email", email_google),
        "sha256_phone_number": _hashed("phone", phone_e164),
    }
)
# ... and one `address` entry: names and street hashed, the rest in clear.
GA4_ADDRESS = FieldRules(
    {
        "sha256_first_name": _hashed("first_name", name_letters),
        "sha256_last_name": _hashed("last_name", name_letters),
        "sha256_street": _hashed("street", street),
        "city": _clear("city", place),
        "region": _clear("state", place),
        "postal_code": _clear("postal_code", exact),
        "country": _clear("country", country_upper),  # [unverified: case]
    }
)

# Google Ads userIdentifiers (reference 3.2, 3.4): only email and phone.
GOOGLE_ADS = FieldRules(
    {
        "hashedEmail": _hashed("email", email_google),
        "hashedPhoneNumber": _hashed("phone", phone_e164),
    }
)

# TikTok `user` (reference 4.4). external_id keeps its case, as TikTok's template does; city,
# state and country go in clear ([impl] Segment).
TIKTOK = FieldRules(
    {
        "email": _hashed("email", email),
        "phone": _hashed("phone", phone_e164),  # E.164 with + [impl]
        "external_id": _hashed("external_id", exact),
        "first_name": _hashed("first_name", no_spaces_lower),
        "last_name": _hashed("last_name", no_spaces_lower),
        "zip_code": _hashed("postal_code", no_spaces_lower),
        "city": _clear("city", alnum_lower),
        "state": _clear("state", alnum_lower),
        "country": _clear("country", country_code),
    }
)

# Pinterest user_data (reference 5.4).
PINTEREST = FieldRules(
    {
        "em": _hashed("email", email),
        "ph": _hashed("phone", phone_digits),
        # Names: "lowercase" per the spec; Segment also removes inner spaces [impl], not done.
        "fn": _hashed("first_name", lower),
        "ln": _hashed("last_name", lower),
        "ge": _hashed("gender", gender_mfn),
        "db": _hashed("birthday", birthdate),
        # "lowercase without spaces/punctuation": letters only.
        "ct": _hashed("city", name_letters),
        "st": _hashed("state", state_code),
        "zp": _hashed("postal_code", zip_digits),
        "country": _hashed("country", country_code),
        # Both ids, hashed as given: they are case-sensitive.
        "external_id": _hashed("user_ids", exact),
        # GAID/IDFA: no normalisation is documented; lower-cased here [unverified].
        "hashed_maids": _hashed("advertising_id", lower),
    }
)

# Snap user_data (reference 6.4): ct/st/zp/external_id lower-case without whitespace
# ([impl] Segment).
SNAPCHAT = FieldRules(
    {
        "em": _hashed("email", email),
        "ph": _hashed("phone", phone_digits),
        "fn": _hashed("first_name", name_letters),
        "ln": _hashed("last_name", name_letters),
        "ct": _hashed("city", no_spaces_lower),
        "st": _hashed("state", no_spaces_lower),
        "zp": _hashed("postal_code", no_spaces_lower),
        "country": _hashed("country", country_code),
        "external_id": _hashed("external_id", no_spaces_lower),
    }
)

# LinkedIn (reference 7.2, 7.4): the ids by idType, hashed ...
LINKEDIN = FieldRules({"SHA256_EMAIL": _hashed("email", email)})
# ... and the parts of userInfo that need a rule (it goes in clear).
LINKEDIN_USER_INFO = FieldRules({"countryCode": _clear("country", country_upper)})

# The Trade Desk takes no PII: only the US state of a limited-data-use region ("us-<state>").
THE_TRADE_DESK = FieldRules({"region_state": _clear("state", state_code)})

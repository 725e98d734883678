"""Personal data in free-form values: the one detector every destination uses before it
forwards a value it did not build itself (GA4 custom params, TikTok/Snap/Pinterest/LinkedIn
free-text fields, The Trade Desk's td1-td10, page URLs, order ids, product names...).

Google forbids PII in GA4 params and user_id (https://support.google.com/analytics/answer/6366371)
and in Google Ads order ids (ORDER_ID_CONTAINS_PII); the other vendors take personal data only
hashed, in their user-data objects. So a value that looks like an email address or a phone
number is never forwarded in clear, whatever key it sits under, and a key whose name says it
holds personal data (email, phone, name, address, zip, birth date, IP, password...) is dropped
by pattern, not by an exact list of names.

Where the line is a judgement call we err towards leaving the value out (a lost custom param
costs less than a leaked phone number): any run of 7 to 15 digits written with phone
punctuation, or a whole number of 7 to 15 digits, counts as a phone number unless it reads as a
date, a decimal amount or an IPv4 address; inside a longer text, such a run standing apart from
the words around it counts too, but a single token that mixes digits with letters (a UUID, a
SKU) is an identifier. In URL paths only email addresses are looked for
(long product ids are common there); query parameters are checked one by one and removed.
"""

from __future__ import annotations

import re
from itertools import pairwise
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+\.[a-z]{2,}", re.IGNORECASE)
# A candidate phone number inside text: digits with the punctuation people write them with,
# standing apart from the words around it.
_PHONE_RUN = re.compile(r"(?<![\w:-])\+?\(?\d[\d\s().\-/]{5,}\d(?![\w:-])")
_PHONE_CHARS = re.compile(r"^\+?[\d\s().\-/]+$")
_NOT_DIGIT = re.compile(r"\D")
_DATE = re.compile(
    r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
    r"([ T]\d{1,2}[:.]\d{2}([:.]\d{2})?)?$"
)
_DECIMAL = re.compile(r"^-?\d+[.,]\d+$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")

# Key words that mark personal data on their own (one word of the key).
_PII_WORDS = frozenset(
    {
        "email",
        "emails",
        "mail",
        "phone",
        "phones",
        "telephone",
        "tel",
        "mobile",
        "cellphone",
        "msisdn",
        "fax",
        "whatsapp",
        "address",
        "addr",
        "street",
        "zip",
        "zipcode",
        "postal",
        "postcode",
        "birth",
        "birthday",
        "birthdate",
        "dob",
        "ssn",
        "passport",
        "ip",
        "ipaddress",
        "ipv4",
        "ipv6",
        "password",
        "passwd",
        "pwd",
        "iban",
        "cvv",
        "latitude",
        "longitude",
        "firstname",
        "lastname",
        "fullname",
        "surname",
        "username",
        "fname",
        "lname",
        "givenname",
        "familyname",
        "nickname",
        "displayname",
        "customername",
    }
)
# "<qualifier> name" marks a person's name ("customer_name", "billingName"); "product_name"
# does not.
_NAME_QUALIFIERS = frozenset(
    {
        "first",
        "last",
        "full",
        "customer",
        "user",
        "given",
        "family",
        "middle",
        "maiden",
        "nick",
        "display",
        "contact",
        "billing",
        "shipping",
        "real",
        "legal",
        "person",
        "member",
        "holder",
        "cardholder",
        "sur",
        "recipient",
        "sender",
        "buyer",
        "client",
    }
)
# Several words together: "e_mail", "social_security", "national_id", "credit_card".
_PII_PAIRS = frozenset(
    {
        ("e", "mail"),
        ("social", "security"),
        ("national", "id"),
        ("tax", "id"),
        ("credit", "card"),
        ("card", "number"),
    }
)


def key_words(key: str) -> list[str]:
    """A property name as lower-case words: "emailAddress" -> ["email", "address"]."""
    spaced = _CAMEL.sub("_", key.strip())
    return [w for w in _NOT_ALNUM.split(spaced.lower()) if w]


def pii_key(key: str) -> bool:
    """The property name says it holds personal data (by pattern, e.g. user_email, phoneNumber,
    customer_name, zip_code, E-Mail, date_of_birth, client_ip)."""
    words = key_words(key)
    if not words:
        return False
    if words == ["name"] or any(w in _PII_WORDS for w in words):
        return True
    if "".join(words) in _PII_WORDS:
        return True
    for first, second in pairwise(words):
        if (first, second) in _PII_PAIRS or (second == "name" and first in _NAME_QUALIFIERS):
            return True
    return False


def _phone_like(text: str) -> bool:
    """The whole text reads as a phone number (see the module comment for the line drawn)."""
    value = text.strip()
    if not _PHONE_CHARS.match(value):
        return False
    digits = _NOT_DIGIT.sub("", value)
    if not 7 <= len(digits) <= 15:
        return False
    return not (_DATE.match(value) or _DECIMAL.match(value) or _IPV4.match(value))


def has_email(text: str) -> bool:
    lowered = text.lower()
    if _EMAIL.search(lowered):
        return True
    if "%40" in lowered:
        return bool(_EMAIL.search(unquote(lowered)))
    return False


def has_phone(text: str) -> bool:
    """The text is a phone number, or has one among other words. A single token that mixes
    in letters (a UUID, "SKU-9866-0794") is an identifier, not a phone number."""
    value = text.strip()
    if value.lower().startswith("tel:"):
        value = value[4:]
    if _phone_like(value):
        return True
    if not any(c.isspace() for c in value):
        return False
    return any(_phone_like(match.group()) for match in _PHONE_RUN.finditer(value))


def personal(value: object) -> bool:
    """The value is, or contains, an email address or a phone number."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int):
        return 7 <= len(str(abs(value))) <= 15
    if isinstance(value, float):
        return value.is_integer() and 7 <= len(str(int(abs(value)))) <= 15
    if isinstance(value, str):
        return has_email(value) or has_phone(value)
    return False


def clean_text(value: str | None) -> str | None:
    """The value, or None when it holds an email address or a phone number."""
    if value is None or personal(value):
        return None
    return value


def clean_url(url: str | None) -> str | None:
    """The URL without query parameters that carry personal data (by name or by value); None
    when an email address sits anywhere else in it (path, fragment, user info)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return clean_text(url)  # not a URL: free text
    if has_email(parts.netloc + parts.path) or personal(unquote(parts.fragment)):
        return None
    kept = [(k, v) for k, v in query if not pii_key(k) and not personal(v)]
    if len(kept) == len(query):
        return url
    return urlunsplit(parts._replace(query=urlencode(kept)))

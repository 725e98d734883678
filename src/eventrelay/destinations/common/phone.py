"""Phone numbers to E.164 with Google's libphonenumber (the `phonenumbers` package).

A number written without its country code ("(650) 555-1234") is read in the first region of
`regions` where it is a valid number: the integration's `default_country`, then the event's
country, then the region of its locale (`geo.regions`). Without any region, or when the number
is valid in none of them, it is left out of the user data and the preview says why: a hash of a
number in the wrong country can never match, and every vendor's `ph` rule starts from the
country code (Google and TikTok `+` and digits, Meta, Pinterest and Snap digits only).
"""

from __future__ import annotations

from collections.abc import Sequence

import phonenumbers

NO_COUNTRY_CODE = "no_country_code"
INVALID = "invalid_phone"

MESSAGES = {
    NO_COUNTRY_CODE: "phone number left out: no country code, and no default_country or "
    "event country/locale to read it with",
    INVALID: "phone number left out: not a valid number",
}


def to_e164(raw: str, regions: Sequence[str]) -> tuple[str | None, str | None]:
    """(E.164 number, None), or (None, reason) when it cannot be known for sure."""
    text = raw.strip()
    if text.startswith("00"):
        # The international prefix used in most of the world (reference 6.4: "remove any
        # double 0 in front of the country code").
        text = "+" + text[2:]
    if text.startswith("+"):
        candidates: Sequence[str | None] = (None,)
    elif regions:
        candidates = regions
    else:
        return None, NO_COUNTRY_CODE
    for region in candidates:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        # With its country code a number only has to have a possible length for that
        # country (the metadata may not know a new range yet); read in a guessed region it
        # must be a valid number there, which is what tells the candidate regions apart.
        check = phonenumbers.is_possible_number if region is None else phonenumbers.is_valid_number
        if check(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None
    return None, INVALID

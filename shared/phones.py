"""Phone numbers: parsing to E.164, hashing for Redis keys, masking for logs."""

from __future__ import annotations

import hashlib
import re

import phonenumbers
from phonenumbers import timezone as phone_timezones

# International numbers (`+` then digits, maybe separated), or a bare run of 10-15 digits
# (national format). Dates, times and UUID fragments match neither.
_PHONE_LIKE = re.compile(r"\+\d[\d\s().-]{5,}\d|(?<![\w.+-])\d{10,15}(?!\w|[.-]\d)")


class InvalidPhone(ValueError):
    """The text is not a valid, dialable phone number."""


_PARSE_ERRORS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "missing or unknown country code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}


def to_e164(raw: str, default_region: str | None = None) -> str:
    """Parse `raw` (E.164, or national with `default_region`) into E.164, or raise."""
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(_PARSE_ERRORS.get(exc.error_type, "not a phone number")) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhone("not a valid number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# phonenumbers answers this for numbers it cannot place.
_UNKNOWN_ZONE = "Etc/Unknown"


def time_zones_of(e164: str) -> list[str]:
    """The IANA zones phonenumbers places the number in (several for some regions, none
    when it cannot tell). A lookup of some cost: computed once per lead, at intake."""
    names = phone_timezones.time_zones_for_number(phonenumbers.parse(e164))
    return [name for name in names if name != _UNKNOWN_ZONE]


def phone_digest(e164: str) -> str:
    """A stable, non-reversible-at-a-glance id for a phone, used in Redis keys."""
    return hashlib.sha256(e164.encode()).hexdigest()[:24]


def mask_phone(text: str) -> str:
    """Keep the first three and the last two digits: `+919•••••••10`."""
    digits = "".join(c for c in text if c.isdigit())
    if len(digits) < 7:
        return text
    plus = "+" if text.lstrip().startswith("+") else ""
    return plus + digits[:3] + "•" * (len(digits) - 5) + digits[-2:]


def mask_phones_in(text: str) -> str:
    """Mask every phone-like run of digits inside free text."""
    return _PHONE_LIKE.sub(lambda m: mask_phone(m.group(0)), text)

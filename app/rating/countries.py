"""Which country a dialling prefix belongs to, from libphonenumber's metadata.

Country calling codes shared by several countries (+1 NANP, +7, +44, +599…) are told apart by
each country's leading national digits (1876 -> JM, 77 -> KZ). A prefix too short to decide
gets the code's main country (1 -> US). Non-geographic codes (+800, +881, +882…) give ''.
"""
import re
from functools import lru_cache

import phonenumbers
import pycountry
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

_NON_GEOGRAPHIC = {"001", "ZZ"}


@lru_cache(maxsize=None)
def _regions_by_leading_digits(code: int) -> tuple:
    """(compiled leading-digits pattern, region) of the code's secondary countries."""
    main = phonenumbers.region_code_for_country_code(code)
    out = []
    for region in COUNTRY_CODE_TO_REGION_CODE.get(code, ()):
        meta = PhoneMetadata.metadata_for_region(region)
        if region != main and meta is not None and meta.leading_digits:
            out.append((re.compile(meta.leading_digits), region))
    return tuple(out)


def _main_country(code: int) -> str:
    main = phonenumbers.region_code_for_country_code(code)
    return "" if main in _NON_GEOGRAPHIC else main


# Calling codes used by one country only (most of them): the answer needs no more digits.
_ONE_COUNTRY = {str(code): _main_country(code) for code, regions in COUNTRY_CODE_TO_REGION_CODE.items()
                if len(regions) == 1}
_SHARED = frozenset(str(code) for code, regions in COUNTRY_CODE_TO_REGION_CODE.items() if len(regions) > 1)


def country_for_prefix(prefix: str) -> str:
    """ISO alpha-2 country of an E.164 prefix ('' if non-geographic or unknown)."""
    for n in (1, 2, 3):                      # calling codes are prefix-free: first hit is it
        head = prefix[:n]
        country = _ONE_COUNTRY.get(head)
        if country is not None:
            return country
        if head in _SHARED:
            national = prefix[n:]
            for pattern, region in _regions_by_leading_digits(int(head)):
                if pattern.match(national):
                    return region
            return _main_country(int(head))
    return ""


@lru_cache(maxsize=1)
def known_countries() -> frozenset:
    """ISO alpha-2 codes accepted in a deck: ISO 3166 plus the regions libphonenumber dials (XK)."""
    return frozenset(c.alpha_2 for c in pycountry.countries) | frozenset(phonenumbers.SUPPORTED_REGIONS)

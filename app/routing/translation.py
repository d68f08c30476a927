"""Number translation: the account's rules, first match by position wins."""
from __future__ import annotations

import phonenumbers
from sqlalchemy import select

from app.extensions import db

from .models import TranslationRule


def translate(rules, dialled: str, country: str) -> str:
    """rules: TranslationRule-like objects in position order. Digits only in and out."""
    for rule in rules:
        if not dialled.startswith(rule.match):
            continue
        number = rule.add_prefix + dialled[rule.strip_digits:]
        if rule.national_to_e164 and country:
            try:
                parsed = phonenumbers.parse(number, country.upper())
            except phonenumbers.NumberParseException:
                return number
            if phonenumbers.is_valid_number(parsed):    # else leave it as dialled
                return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164).lstrip("+")
        return number
    return dialled


def rules_of(account_id: int) -> list[TranslationRule]:
    return list(db.session.execute(select(TranslationRule).where(TranslationRule.account_id == account_id)
                                   .order_by(TranslationRule.position, TranslationRule.id)).scalars())

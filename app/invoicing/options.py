"""A reseller's invoice settings (seed 002, "auto invoice"): who issues the documents (legal name,
address, tax number, email, logo), how invoices are numbered and when they are due, and how
documents look (decimals shown, rate table, payment summary, footer). One row per tenant; no
row means InvoiceSettings.DEFAULTS.

`save_settings` checks every value first and raises FieldError naming the field (nothing is
written then); it flushes, never commits, and audits what changed. A changed prefix starts a
new numbering series (gapless within each series, app/invoicing/numbering.py): numbers
already issued never change.

Logo: PNG, JPEG or SVG, at most LOGO_MAX_BYTES. Raster images are opened with Pillow (the
real format decides, not the file name; at most LOGO_MAX_PIXELS a side, which also stops a
decompression bomb); an SVG must be an <svg> document without a DOCTYPE or entities (no XML
bombs), scripts, event handlers or references outside itself. Documents inline it as a
data: URI and WeasyPrint fetches nothing else (app/invoicing/render.py).
"""
from __future__ import annotations

import io
import re
from xml.etree import ElementTree

from sqlalchemy import select

from app import audit
from app.conflicts import FieldError
from app.extensions import db
from app.invoicing import numbering
from app.invoicing.models import InvoiceSettings
from app.money import DECIMALS_SHOWN_MAX

LOGO_MAX_BYTES = 512 * 1024
LOGO_MAX_PIXELS = 4000
LOGO_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg"}
SVG_TYPE = "image/svg+xml"
DIGITS_MIN, DIGITS_MAX = 3, 12
TERMS_MAX = 365
FORMATS = ("pdf", "html")
_SVG_FORBIDDEN = re.compile(rb"<!DOCTYPE|<!ENTITY|<script|<foreignObject|\son[a-z]+\s*=", re.IGNORECASE)
TEXT_LIMITS = {"legal_name": 200, "tax_number": 60, "email": 254, "address": 1000, "footer": 1000}


def settings_row(tenant_id: int) -> InvoiceSettings | None:
    return db.session.execute(select(InvoiceSettings).where(InvoiceSettings.tenant_id == tenant_id)
                              .execution_options(all_tenants=True)).scalar_one_or_none()


def current(tenant_id: int) -> dict:
    """The tenant's settings as a dict (its row, or the defaults), without the logo bytes."""
    row = settings_row(tenant_id)
    out = dict(InvoiceSettings.DEFAULTS)
    out["logo_type"] = ""
    if row is not None:
        out.update({key: getattr(row, key) for key in InvoiceSettings.DEFAULTS})
        out["logo_type"] = row.logo_type or ""
    return out


def _int_in(value, field: str, low: int, high: int, what: str) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise FieldError(field, f"Enter a whole number of {what} from {low} to {high}.") from None
    if not low <= number <= high:
        raise FieldError(field, f"Enter a whole number of {what} from {low} to {high}.")
    return number


def check_logo(data: bytes, filename: str = "") -> str:
    """The media type of an acceptable logo, or FieldError("logo", why)."""
    if not data:
        raise FieldError("logo", "The file is empty.")
    if len(data) > LOGO_MAX_BYTES:
        raise FieldError("logo", f"The logo is {len(data) // 1024} KB; at most {LOGO_MAX_BYTES // 1024} KB.")
    head = data[:512].lstrip()
    if head.startswith(b"<") or filename.lower().endswith(".svg"):
        return _check_svg(data)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            kind = img.format
            width, height = img.size
            if kind not in LOGO_TYPES:
                raise FieldError("logo", "Upload a PNG, JPEG or SVG image.")
            if width > LOGO_MAX_PIXELS or height > LOGO_MAX_PIXELS:
                raise FieldError("logo", f"The image is {width}×{height} pixels; at most {LOGO_MAX_PIXELS} a side.")
            img.verify()
    except FieldError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise FieldError("logo", "This file is not a PNG, JPEG or SVG image we can read.") from None
    return LOGO_TYPES[kind]


def _check_svg(data: bytes) -> str:
    if _SVG_FORBIDDEN.search(data):
        raise FieldError("logo", "This SVG has a DOCTYPE, entities, scripts or event handlers; save it as plain SVG.")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        raise FieldError("logo", "This SVG file cannot be read (it is not well-formed XML).") from None
    if root.tag not in ("svg", "{http://www.w3.org/2000/svg}svg"):
        raise FieldError("logo", "Upload a PNG, JPEG or SVG image.")
    for el in root.iter():
        for name, value in el.attrib.items():
            if name.endswith("href") and value and not value.startswith(("#", "data:image/")):
                raise FieldError("logo", "This SVG refers to other files or addresses; embed everything in it.")
    return SVG_TYPE


def save_settings(tenant_id: int, *, legal_name: str = "", address: str = "", tax_number: str = "",
                  email: str = "", number_prefix: str = "INV-{year}-", receipt_prefix: str = "RCT-{year}-",
                  number_digits=6, payment_terms_days=14, decimals_shown=None, include_rate_table: bool = False,
                  include_payment_summary: bool = True, skip_zero: bool = True, footer: str = "", issue_hour=0,
                  invoice_format: str = "pdf", logo: bytes | None = None, logo_filename: str = "",
                  remove_logo: bool = False) -> InvoiceSettings:
    """Check and store a tenant's invoice settings. FieldError (nothing written) for a bad value."""
    values = {"legal_name": (legal_name or "").strip(), "address": (address or "").strip(),
              "tax_number": (tax_number or "").strip(), "email": (email or "").strip(), "footer": (footer or "").strip()}
    for key, limit in TEXT_LIMITS.items():
        if len(values[key]) > limit:
            raise FieldError(key, f"At most {limit} characters.")
    if values["email"]:
        from email_validator import EmailNotValidError, validate_email

        try:
            values["email"] = validate_email(values["email"], check_deliverability=False).normalized
        except EmailNotValidError as e:
            raise FieldError("email", str(e)) from None
    values["number_prefix"] = numbering.check_prefix(number_prefix, "number_prefix")
    values["receipt_prefix"] = numbering.check_prefix(receipt_prefix, "receipt_prefix")
    if values["number_prefix"] == values["receipt_prefix"]:
        raise FieldError("receipt_prefix", "Receipts need a prefix of their own (they are numbered apart).")
    values["number_digits"] = _int_in(number_digits, "number_digits", DIGITS_MIN, DIGITS_MAX, "digits")
    values["payment_terms_days"] = _int_in(payment_terms_days, "payment_terms_days", 0, TERMS_MAX, "days")
    values["issue_hour"] = _int_in(issue_hour, "issue_hour", 0, 23, "hours")
    if decimals_shown in (None, ""):
        values["decimals_shown"] = None
    else:
        values["decimals_shown"] = _int_in(decimals_shown, "decimals_shown", 0, DECIMALS_SHOWN_MAX, "decimals")
    if invoice_format not in FORMATS:
        raise FieldError("invoice_format", "Choose PDF or HTML.")
    values["invoice_format"] = invoice_format
    values.update(include_rate_table=bool(include_rate_table), include_payment_summary=bool(include_payment_summary),
                  skip_zero=bool(skip_zero))
    logo_type = check_logo(logo, logo_filename) if logo else None

    row = settings_row(tenant_id)
    if row is None:
        row = InvoiceSettings(tenant_id=tenant_id, **{k: v for k, v in InvoiceSettings.DEFAULTS.items()})
        db.session.add(row)
    changed = {k: v for k, v in values.items() if getattr(row, k) != v}
    for key, value in values.items():
        setattr(row, key, value)
    if logo_type:
        row.logo, row.logo_type = logo, logo_type
        changed["logo"] = f"{logo_type}, {len(logo)} bytes"
    elif remove_logo and row.logo_type:
        row.logo, row.logo_type = None, ""
        changed["logo"] = "removed"
    db.session.flush()
    if changed:
        audit.record("invoice_settings.changed", row, **{k: str(v) for k, v in changed.items()})
    return row


def logo_of(tenant_id: int) -> tuple[bytes, str] | None:
    row = settings_row(tenant_id)
    if row is None or not row.logo_type or row.logo is None:
        return None
    return bytes(row.logo), row.logo_type

"""Rate decks (A–Z CSV files) in and out.

`parse_deck` reads what carriers and resellers actually send: the header row names the columns
(in any order, many spellings), the delimiter is sniffed (comma, semicolon or tab), a UTF-8 BOM
or a title line above the header is fine. Each bad line is reported with its line number and
the reason, and left out; good lines become Tariffs. `export_deck` writes a deck that
`parse_deck` reads back to the same rows.
"""
import csv
import io
import os
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from app.bulk import collector_paused
from app.money import RATE_PLACES, ZERO

from .cost import MAX_AMOUNT, MAX_PREFIX_DIGITS, Tariff
from .countries import country_for_prefix, known_countries

# Canonical field -> header spellings, most specific first. Headers are compared lower-case,
# without anything in brackets ("Rate (USD)") and without spaces or punctuation.
HEADER_ALIASES = {
    "prefix": ("prefix", "dialcode", "dialingcode", "diallingcode", "code", "destinationcode",
               "prefixes", "number"),
    "country": ("iso", "iso2", "isocode", "countryiso", "countryisocode", "isocountry",
                "isocountrycode", "alpha2", "countryalpha2"),
    "description": ("description", "destination", "destinationname", "countryname", "country",
                    "name", "dest"),
    "rate": ("rate", "rateperminute", "ratepermin", "ratemin", "perminute", "permin", "price",
             "priceperminute", "pricepermin", "ppm", "minuterate", "cost", "costperminute", "tariff"),
    "connect_fee": ("connectfee", "connectionfee", "connectcharge", "connectioncharge", "connect",
                    "setupfee", "setup", "setupcharge"),
    "billing": ("billing", "billingincrement", "billingincrements", "billinginterval",
                "billingscheme", "billingunit", "interval", "increments", "blocks"),
    "first_block": ("firstblock", "initial", "initialincrement", "initialblock", "initialinterval",
                    "firstinterval", "firstincrement", "minduration", "minimumduration"),
    "increment": ("increment", "nextincrement", "subsequentincrement", "nextinterval",
                  "subsequentinterval"),
    "minimum_charge": ("minimumcharge", "mincharge", "minimum", "minimumcost", "mincost"),
    "effective_from": ("effectivefrom", "effectivedate", "effective", "validfrom", "startdate",
                       "date"),
}
EXPORT_HEADER = ("Prefix", "ISO", "Destination", "Rate", "Connect Fee", "First Block",
                 "Increment", "Minimum Charge", "Effective From")
_RATE_UNIT = Decimal(1).scaleb(-RATE_PLACES)
MAX_DESCRIPTION = 120                   # Rate.description is String(120)
_LONGEST_BLOCK = 86_400                 # a first block or increment longer than a day is a typo
_HEADER_SEARCH_LINES = 20       # a title or notes block above the header is tolerated
# Text a spreadsheet would run as a formula is exported behind a quote, and so is text that
# already starts with one, so the guard always comes off on import.
_GUARDED = ("=", "+", "-", "@", "'")


class DeckRow(NamedTuple):
    line: int
    tariff: Tariff
    effective_from: date | None = None


class DeckError(NamedTuple):
    line: int
    reason: str

    def __str__(self):
        return f"line {self.line}: {self.reason}"


@dataclass
class ParseResult:
    rows: list[DeckRow] = field(default_factory=list)
    errors: list[DeckError] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)   # field -> header as written
    delimiter: str = ","

    @property
    def tariffs(self) -> list[Tariff]:
        return [r.tariff for r in self.rows]


class _Bad(Exception):
    """One cell's reason for rejecting its line."""


# -- reading ---------------------------------------------------------------------------------
def _read_text(source) -> str:
    if isinstance(source, os.PathLike):
        with open(source, "rb") as f:
            source = f.read()
    elif hasattr(source, "read"):
        source = source.read()
    if isinstance(source, (bytes, bytearray)):
        try:
            source = bytes(source).decode("utf-8-sig")
        except UnicodeDecodeError:
            source = bytes(source).decode("cp1252", errors="replace")   # Excel's "CSV" on Windows
    if not isinstance(source, str):
        raise TypeError("parse_deck takes the deck's text, bytes, a file or a path.")
    return source.lstrip("\ufeff")


def _sniff_delimiter(text: str) -> str:
    """The delimiter under which a header row (prefix and rate columns) appears, the one that
    names the most columns if several do; else the most frequent of comma, semicolon, tab.
    Counting alone is fooled by semicolon decks full of decimal commas."""
    head = text[:65536].splitlines()[:_HEADER_SEARCH_LINES]
    best, best_named = None, 0
    for delimiter in (",", ";", "\t"):
        for row in csv.reader(head, delimiter=delimiter):
            found = _map_columns(row)
            if "prefix" in found and "rate" in found:
                if len(found) > best_named:
                    best, best_named = delimiter, len(found)
                break
    if best:
        return best
    counts = {d: sum(line.count(d) for line in head) for d in (",", ";", "\t")}
    return max(counts, key=counts.get) if any(counts.values()) else ","


def _header_key(cell: str) -> str:
    return re.sub(r"[^a-z0-9]", "", re.sub(r"\(.*?\)|\[.*?\]", "", cell.lower()))


def _map_columns(header: list[str]) -> dict[str, int]:
    keys = [_header_key(c) for c in header]
    found = {}
    for name, aliases in HEADER_ALIASES.items():
        for alias in aliases:
            if alias in keys and keys.index(alias) not in found.values():
                found[name] = keys.index(alias)
                break
    return found


# -- cells -----------------------------------------------------------------------------------
def _prefix(cell: str) -> str:
    p = cell.strip()
    if p.startswith("+"):
        p = p[1:]
    elif p.startswith("00"):
        p = p[2:]
    if not p:
        raise _Bad("prefix is missing")
    if not (p.isascii() and p.isdigit()):
        raise _Bad(f"prefix “{cell.strip()}” must contain digits only")
    if p[0] == "0":
        raise _Bad(f"prefix “{cell.strip()}” starts with 0: write it country code first (E.164)")
    if len(p) > MAX_PREFIX_DIGITS:
        raise _Bad(f"prefix “{p}” is longer than {MAX_PREFIX_DIGITS} digits")
    return p


def _amount(cell: str, what: str, required: bool) -> Decimal:
    s = cell.strip()
    if not s:
        if required:
            raise _Bad(f"{what} is missing")
        return ZERO
    if "," in s:
        # 0,0123 is a decimal comma (semicolon decks); 1,234.5 and 1.234,5 carry thousands marks
        if "." in s:
            s = s.replace(".", "").replace(",", ".") if s.rfind(",") > s.rfind(".") else s.replace(",", "")
        else:
            s = s.replace(",", ".") if s.count(",") == 1 else s.replace(",", "")
    try:
        d = Decimal(s.replace(" ", ""))
    except InvalidOperation:
        raise _Bad(f"{what} “{cell.strip()}” is not a number") from None
    if not d.is_finite():
        raise _Bad(f"{what} “{cell.strip()}” is not a number")
    if d < 0:
        raise _Bad(f"{what} {cell.strip()} cannot be negative")
    if d >= MAX_AMOUNT:
        raise _Bad(f"{what} {cell.strip()} is too large (under {MAX_AMOUNT:,})")
    if d.quantize(_RATE_UNIT) != d:
        raise _Bad(f"{what} {cell.strip()} has more than {RATE_PLACES} decimal places")
    return d


def _seconds(cell: str, what: str) -> int:
    s = cell.strip()
    if s.isdigit() and len(s) < 5:
        return int(s)
    try:
        d = Decimal(s)
    except InvalidOperation:
        d = None
    if d is not None and d.is_finite() and d == d.to_integral_value():
        if d < 0:
            raise _Bad(f"{what} {s} cannot be negative")
        if d > _LONGEST_BLOCK:
            raise _Bad(f"{what} {s} s is longer than a day")
        return int(d)                         # "60.0" from a spreadsheet
    raise _Bad(f"{what} “{s}” is not a whole number of seconds")


_BILLING = re.compile(r"^\s*(\d+)\s*[/+:-]\s*(\d+)\s*$")


def _billing(cell: str) -> tuple[int, int] | None:
    """'30/6' -> (30, 6); '60' -> (60, 60); '' -> None."""
    if not cell.strip():
        return None
    m = _BILLING.match(cell)
    if m:
        return _seconds(m[1], "first block"), _seconds(m[2], "increment")
    n = _seconds(cell, "billing increment")
    return n, n


_ISO_DATE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T]00:00(?::00(?:\.0+)?)?)?$")
_DOTTED_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_SLASHED_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def _effective(cell: str, day_first: bool | None) -> date | None:
    s = cell.strip()
    if not s:
        return None
    try:
        if m := _ISO_DATE.match(s):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _DOTTED_DATE.match(s):
            return date(int(m[3]), int(m[2]), int(m[1]))
        if m := _SLASHED_DATE.match(s):
            a, b, year = int(m[1]), int(m[2]), int(m[3])
            if a > 12 or (day_first and b <= 12):
                return date(year, b, a)            # a is the day
            if b > 12 or a == b or day_first is False:
                return date(year, a, b)            # b is the day
            raise _Bad(f"effective date {s} could be day/month or month/day: write it as YYYY-MM-DD")
    except ValueError:
        raise _Bad(f"effective date {s} is not a real date") from None
    raise _Bad(f"effective date “{s}” is not a date (use YYYY-MM-DD)")


def _country(cell: str) -> str:
    c = cell.strip().upper()
    if not c:
        return ""                              # derived from the prefix
    if len(c) != 2 or c not in known_countries():
        hint = " (the United Kingdom is GB)" if c == "UK" else ""
        raise _Bad(f"country “{cell.strip()}” is not an ISO 3166 alpha-2 code{hint}")
    return c


def _text(cell: str) -> str:
    s = cell.strip()
    if s[:1] == "'" and s[1:2] in _GUARDED:
        return s[1:]                          # undo export_deck's formula guard
    return s


def _blocks(billing: str, first: str, increment: str, default_first: int, default_increment: int):
    """(first block, increment) from a combined "30/6" column and/or separate columns; the
    separate columns win where both are filled."""
    fb, inc = _billing(billing) or (default_first, default_increment)
    if first.strip():
        fb = _seconds(first, "first block")
    if increment.strip():
        inc = _seconds(increment, "increment")
    if inc == 0:
        raise _Bad("increment is 0: use 1 for per-second billing")
    return fb, inc


class _Memo(dict):
    """cell -> parsed value. A hit is a plain dict lookup; a miss parses, keeps the value, or
    lets the parser's _Bad through (bad cells are rare enough to be parsed each time)."""

    def __init__(self, parse):
        super().__init__()
        self.parse = parse

    def __missing__(self, cell):
        value = self[cell] = self.parse(cell)
        return value


def parse_deck(source, *, first_block: int = 1, increment: int = 1,
               day_first: bool | None = None) -> ParseResult:
    """Read a rate deck. `first_block`/`increment` apply where the deck gives none (1/1 = per
    second); `day_first` settles dates like 03/04/2025 (None: such dates are reported)."""
    with collector_paused():
        return _parse(_read_text(source), first_block, increment, day_first)


def _parse(text: str, first_block: int, increment: int, day_first: bool | None) -> ParseResult:
    result = ParseResult(delimiter=_sniff_delimiter(text))
    reader = csv.reader(io.StringIO(text), delimiter=result.delimiter)

    columns = None
    for header in reader:
        found = _map_columns(header)
        if "prefix" in found and "rate" in found:
            columns = found
            break
        if reader.line_num >= _HEADER_SEARCH_LINES:
            break
    if columns is None:
        result.errors.append(DeckError(1, "no header row with a prefix column (Prefix, Code, "
                                          "Dial code…) and a rate column (Rate, Price, Per minute…)"))
        return result
    result.columns = {name: header[i].strip() for name, i in columns.items()}

    at = {name: columns.get(name, -1) for name in HEADER_ALIASES}   # -1: column absent
    i_prefix, i_rate, i_connect, i_minimum = at["prefix"], at["rate"], at["connect_fee"], at["minimum_charge"]
    i_billing, i_first, i_increment = at["billing"], at["first_block"], at["increment"]
    i_effective, i_country, i_description = at["effective_from"], at["country"], at["description"]
    width = max(columns.values()) + 1

    # Decks repeat the same few values: each distinct cell is parsed (or rejected) once.
    rates = _Memo(lambda c: _amount(c, "rate", True))
    connects = _Memo(lambda c: _amount(c, "connect fee", False))
    minimums = _Memo(lambda c: _amount(c, "minimum charge", False))
    blocks = _Memo(lambda cells: _blocks(*cells, first_block, increment))
    dates = _Memo(lambda c: _effective(c, day_first))
    isos = _Memo(_country)
    seen: dict = {}
    rows, errors = result.rows, result.errors

    for row in reader:
        line = reader.line_num
        if len(row) < width:
            row = row + [""] * (width - len(row))
        try:
            prefix = row[i_prefix]
            if not (prefix.isdigit() and prefix.isascii() and prefix[0] != "0"
                    and len(prefix) <= MAX_PREFIX_DIGITS):
                prefix = _prefix(prefix)       # spaces, '+', '00', or a reason to reject it
            rate = rates[row[i_rate]]
            connect = connects[row[i_connect]] if i_connect >= 0 else ZERO
            minimum = minimums[row[i_minimum]] if i_minimum >= 0 else ZERO
            fb, inc = blocks[(row[i_billing] if i_billing >= 0 else "",
                              row[i_first] if i_first >= 0 else "",
                              row[i_increment] if i_increment >= 0 else "")]
            effective = dates[row[i_effective]] if i_effective >= 0 else None
            country = isos[row[i_country]] if i_country >= 0 else ""
            if not country:
                country = country_for_prefix(prefix)
            description = _text(row[i_description]) if i_description >= 0 else ""
            if len(description) > MAX_DESCRIPTION:
                raise _Bad(f"description is longer than {MAX_DESCRIPTION} characters")
            key = (prefix, effective) if effective else prefix
            if key in seen:
                when = f" effective {effective.isoformat()}" if effective else ""
                raise _Bad(f"prefix {prefix}{when} is already on line {seen[key]}")
            tariff = Tariff(prefix, country, description, rate, connect, fb, inc, minimum)
        except (_Bad, ValueError) as e:        # ValueError: Tariff's own checks
            if "".join(row).strip():
                errors.append(DeckError(line, str(e)))
            continue                           # (a blank line, or only delimiters, is no error)
        seen[key] = line
        rows.append(DeckRow(line, tariff, effective))
    return result


# -- writing ---------------------------------------------------------------------------------
def _guard(text: str) -> str:
    return "'" + text if text[:1] in _GUARDED else text


def export_deck(rows) -> str:
    """CSV of Tariffs or DeckRows (with effective dates) that parse_deck reads back identically."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(EXPORT_HEADER)
    for item in rows:
        t, effective = (item.tariff, item.effective_from) if isinstance(item, DeckRow) else (item, None)
        w.writerow((t.prefix, t.country, _guard(t.description), format(t.rate_per_minute, "f"),
                    format(t.connect_fee, "f"), t.first_block, t.increment,
                    format(t.minimum_charge, "f"), effective.isoformat() if effective else ""))
    return out.getvalue()

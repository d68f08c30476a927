"""Guards for the holes the tenancy hook cannot close by itself (see tenants/scope.py)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PORTAL_FILES = sorted((ROOT / "portals").rglob("*.py"))
DOMAIN_FILES = sorted(p for d in ("app", "tenants", "portals", "provisioning", "workers") for p in (ROOT / d).rglob("*.py"))


def _offenders(files, pattern):
    rx = re.compile(pattern)
    return [f"{p.relative_to(ROOT)}:{n}" for p in files for n, line in enumerate(p.read_text().splitlines(), 1)
            if rx.search(line)]


def test_portals_never_load_by_primary_key_around_the_tenant_filter():
    # session.get() answers from the identity map without a query, so without the filter.
    assert _offenders(PORTAL_FILES, r"db\.session\.get\(|db\.get_or_404\(|\.query\.get\(") == []


def test_portals_write_no_raw_sql():
    assert _offenders(PORTAL_FILES, r"\btext\(\s*[\"']") == []


def test_money_columns_are_never_floats():
    assert _offenders(DOMAIN_FILES, r"\bFloat\b|Mapped\[float\]") == []

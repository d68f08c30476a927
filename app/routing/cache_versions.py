"""Version counters for what call control caches (workers/agi/cache.py): one row per account
(its profile: number rules, translation rules, extensions, DIDs, customer routes, service plan,
plan countries, the plan's rate sheet) and one for the routing snapshot (route groups, routes,
route carriers, carriers, their buy sheets). PostgreSQL triggers bump them in the transaction
that changes a row, so the version a call reads is exact the moment the change commits.

Each decision reads its two versions by primary key. Before, it hashed every row behind them
(`md5(string_agg(...))`): ~0.15 ms of PostgreSQL per call with one route, and growing with the
platform's routes. The embedded SQLite of a first run decides on the reference path and has no
triggers. An absent row is version 0.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, DDL, String, event, literal_column
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db

ACCOUNT, ROUTING = "account", "routing"


class CacheVersion(db.Model):
    """Platform-wide bookkeeping, not a tenant's data: read only by the AGI's own statement."""
    __tablename__ = "cache_versions"

    scope: Mapped[str] = mapped_column(String(10), primary_key=True)      # account / routing
    key: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)   # account id; 0
    version: Mapped[int] = mapped_column(BigInteger, default=0)


# The versions as text, correlated to the outer `accounts` row / for the whole platform.
ACCOUNT_VERSION = literal_column(
    "coalesce((SELECT v.version FROM cache_versions v WHERE v.scope = 'account' AND v.key = accounts.id), 0)::text")
ROUTING_VERSION = literal_column(
    "coalesce((SELECT v.version FROM cache_versions v WHERE v.scope = 'routing' AND v.key = 0), 0)::text")

# Statement-level triggers with transition tables: one upsert per statement, whatever the
# number of rows (a bulk DID import is one statement). DISTINCT: an upsert may not touch a row
# twice. An UPDATE counts only where a column the cache reads changed: the AMI watcher updates
# extensions' registration columns all day, and that must not reload profiles.
_BUMP = ("INSERT INTO cache_versions (scope, key, version) SELECT DISTINCT '{scope}', k, 1 FROM ({keys}) AS b(k) "
         "WHERE k IS NOT NULL ON CONFLICT (scope, key) DO UPDATE SET version = cache_versions.version + 1;")

# table -> (the columns the profile reads, the account of a row `r`)
ACCOUNT_TABLES = {
    "number_rules": ("account_id, kind, prefix", "r.account_id"),
    "translation_rules": ("account_id, position, match, strip_digits, add_prefix, national_to_e164", "r.account_id"),
    "extensions": ("account_id, number, sip_username, active", "r.account_id"),
    "numbers": ("account_id, number, status, extension_id", "r.account_id"),
    "customer_routes": ("account_id, extension_id, group_id", "r.account_id"),
    "service_plans": ("account_id, rate_sheet_id", "r.account_id"),
    "plan_countries": ("plan_id, country, minutes", "(SELECT p.account_id FROM service_plans p WHERE p.id = r.plan_id)"),
}
ROUTING_TABLES = ("route_groups", "routes", "route_carriers", "carriers")
SHEET_COLUMNS = "version, currency, short_call_seconds, short_call_charge"


def _changed(columns: str) -> str:
    """Join of an UPDATE's old and new rows, where one of `columns` changed."""
    cols = [c.strip() for c in columns.split(",")]
    return (f"changed_rows n JOIN old_rows o ON o.id = n.id WHERE ({', '.join('n.' + c for c in cols)}) "
            f"IS DISTINCT FROM ({', '.join('o.' + c for c in cols)})")


def _account_function(table: str, columns: str, account: str) -> str:
    of = account.replace("r.", "{0}.")
    updated = (f"SELECT {of.format('n')} FROM {_changed(columns)} "
               f"UNION SELECT {of.format('o')} FROM {_changed(columns)}")
    return f"""CREATE OR REPLACE FUNCTION rl_versions_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    {_BUMP.format(scope=ACCOUNT, keys=updated)}
  ELSE
    {_BUMP.format(scope=ACCOUNT, keys=f"SELECT {of.format('r')} FROM changed_rows r")}
  END IF;
  RETURN NULL;
END $$"""


_ROUTING_FUNCTION = f"""CREATE OR REPLACE FUNCTION rl_versions_routing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {_BUMP.format(scope=ROUTING, keys="SELECT 0")}
  RETURN NULL;
END $$"""

# A rate sheet edited (a deck import bumps its version): the accounts whose plan rates on it,
# and the routing snapshot when it is a carrier's buy sheet.
_SHEET_FUNCTION = f"""CREATE OR REPLACE FUNCTION rl_versions_rate_sheets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  {_BUMP.format(scope=ACCOUNT, keys="SELECT p.account_id FROM service_plans p WHERE p.rate_sheet_id IN "
                                     f"(SELECT n.id FROM {_changed(SHEET_COLUMNS)})")}
  IF EXISTS (SELECT 1 FROM carriers c WHERE c.buy_rate_sheet_id IN (SELECT n.id FROM {_changed("version")})) THEN
    {_BUMP.format(scope=ROUTING, keys="SELECT 0")}
  END IF;
  RETURN NULL;
END $$"""


def trigger_statements() -> list[str]:
    """Every statement creating the functions and triggers (idempotent: the migration and
    `create_all` both run them)."""
    out = [_ROUTING_FUNCTION, _SHEET_FUNCTION]
    for table, (columns, account) in ACCOUNT_TABLES.items():
        out.append(_account_function(table, columns, account))
        for event_, referencing in (("INSERT", "NEW TABLE AS changed_rows"), ("DELETE", "OLD TABLE AS changed_rows"),
                                    ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS changed_rows")):
            trigger = f"rl_versions_{table}_{event_.lower()}"
            out.append(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
            out.append(f"CREATE TRIGGER {trigger} AFTER {event_} ON {table} REFERENCING {referencing} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION rl_versions_{table}()")
    for table in ROUTING_TABLES:
        out.append(f"DROP TRIGGER IF EXISTS rl_versions_{table} ON {table}")
        out.append(f"CREATE TRIGGER rl_versions_{table} AFTER INSERT OR UPDATE OR DELETE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION rl_versions_routing()")
    out.append("DROP TRIGGER IF EXISTS rl_versions_rate_sheets_update ON rate_sheets")
    out.append("CREATE TRIGGER rl_versions_rate_sheets_update AFTER UPDATE ON rate_sheets "
               "REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION rl_versions_rate_sheets()")
    return out


for _statement in trigger_statements():      # `create_all` (tests, a first run) gets them too
    event.listen(db.metadata, "after_create", DDL(_statement).execute_if(dialect="postgresql"))

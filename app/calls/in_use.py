"""Calls in use, read from the AMI watchers' shared counts in Redis (for portal pages).

The watchers (workers/ami/counts.py) write one share per Asterisk server:
    {prefix}:servers                 set of server names
    {prefix}:{server}:account        hash account number -> admitted live calls on that server
    {prefix}:{server}:extension      hash endpoint (SIP username) -> live channels on that server
    {prefix}:{server}:alive          TTL key, refreshed while that server's watcher runs
and a reader sums the shares of the servers whose watcher is alive. Domain code does not
import workers, so the schema is repeated here (tests check both sides agree).

Every reader answers None when Redis is not configured or not reachable: a page shows "—"
rather than failing. Template globals (registered by `register_template_globals`):
`in_use(account_number)` and `extension_in_use(sip_username)`.
"""
import logging

from flask import current_app, g, has_app_context

log = logging.getLogger(__name__)
DEFAULT_PREFIX = "inuse"


def _prefix() -> str:
    return current_app.config.get("AMI_COUNTS_PREFIX") or DEFAULT_PREFIX


def _redis():
    if not has_app_context():
        return None
    from app.jobs import redis_connection

    return redis_connection()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _live_servers(conn, prefix: str) -> list[str]:
    servers = sorted(_text(s) for s in conn.smembers(f"{prefix}:servers"))
    if not servers:
        return []
    pipe = conn.pipeline(transaction=False)
    for server in servers:
        pipe.exists(f"{prefix}:{server}:alive")
    return [s for s, up in zip(servers, pipe.execute()) if up]


def _total(kind: str, name: str) -> int | None:
    try:
        conn = _redis()
        if conn is None:
            return None
        prefix = _prefix()
        servers = _live_servers(conn, prefix)
        if not servers:
            return 0
        pipe = conn.pipeline(transaction=False)
        for server in servers:
            pipe.hget(f"{prefix}:{server}:{kind}", name)
        return sum(int(v) for v in pipe.execute() if v is not None)
    except Exception as e:  # no Redis: the page still works
        log.warning("in-use counts not read: %s", e)
        return None


def _all(kind: str) -> dict[str, int] | None:
    try:
        conn = _redis()
        if conn is None:
            return None
        prefix = _prefix()
        servers = _live_servers(conn, prefix)
        pipe = conn.pipeline(transaction=False)
        for server in servers:
            pipe.hgetall(f"{prefix}:{server}:{kind}")
        totals: dict[str, int] = {}
        for share in pipe.execute() if servers else ():
            for name, n in share.items():
                totals[_text(name)] = totals.get(_text(name), 0) + int(n)
        return totals
    except Exception as e:
        log.warning("in-use counts not read: %s", e)
        return None


def account_in_use(account_number: str) -> int | None:
    """Live calls of an account on every Asterisk server (None: counts not available)."""
    return _total("account", account_number)


def extensions_in_use() -> dict[str, int] | None:
    """{SIP username: live channels} for every extension with a live channel (only those are
    stored, so this stays small); read once per request."""
    cache = g.get("_extensions_in_use", False) if has_app_context() else False
    if cache is not False:
        return cache
    counts = _all("extension")
    if has_app_context():
        g._extensions_in_use = counts
    return counts


def accounts_in_use() -> dict[str, int] | None:
    """{account number: live calls} for every account with a live call; read once per request."""
    cache = g.get("_accounts_in_use", False) if has_app_context() else False
    if cache is not False:
        return cache
    counts = _all("account")
    if has_app_context():
        g._accounts_in_use = counts
    return counts


def extension_in_use(sip_username: str) -> int | None:
    counts = extensions_in_use()
    return None if counts is None else counts.get(sip_username, 0)


def watcher_alive(server_name: str) -> bool | None:
    """Is a watcher keeping this server's counts right now? (None: Redis not available.)"""
    try:
        conn = _redis()
        if conn is None:
            return None
        return bool(conn.exists(f"{_prefix()}:{server_name}:alive"))
    except Exception as e:
        log.warning("watcher heartbeat not read: %s", e)
        return None


def register_template_globals(app) -> None:
    app.add_template_global(account_in_use, "in_use")
    app.add_template_global(accounts_in_use, "accounts_in_use")
    app.add_template_global(extension_in_use, "extension_in_use")

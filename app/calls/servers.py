"""Asterisk servers the AMI watcher follows: platform-level, managed by the platform admin.

Not tenant-owned: one switch cluster carries calls of every reseller, so the rows are seen
only by the platform admin (`/admin/servers`) and by the `ami` process. The watcher writes
the link status back (`last_connected_at`, `last_error`, `last_error_at`).

Operations flush, never commit; refusals are `FieldError`s naming the form field.
"""
import ipaddress
import re
from datetime import datetime

from sqlalchemy import String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from app import audit
from app.conflicts import FieldError
from app.extensions import db
from tenants.models import utcnow

DEFAULT_PORT = 5038
# The name keys the Redis in-use counts and every call ("<server>/<uniqueid>", Call.server):
# keep it to characters that are safe in both, and stable.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_USERNAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")
SECRET_MAX = 128


class AsteriskServer(db.Model):
    __tablename__ = "asterisk_servers"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(default=DEFAULT_PORT)
    username: Mapped[str] = mapped_column(String(64))   # manager.conf [user]
    secret: Mapped[str] = mapped_column(String(SECRET_MAX))  # AMI logs in with it: kept as is
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Link status, written by the watcher.
    last_connected_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str] = mapped_column(String(255), default="")
    last_error_at: Mapped[datetime | None] = mapped_column()

    @property
    def link_state(self) -> str:
        """'disabled', 'never' (not connected yet), 'up' or 'down' as last reported."""
        if not self.enabled:
            return "disabled"
        if self.last_connected_at is None:
            return "down" if self.last_error else "never"
        if self.last_error_at is not None and self.last_error_at >= self.last_connected_at:
            return "down"
        return "up"


# ---- validation ---------------------------------------------------------------------------
def clean_name(value) -> str:
    name = (value or "").strip()
    if not name:
        raise FieldError("name", "Enter a name, such as pbx1.")
    if not _NAME.match(name):
        raise FieldError("name", "Use 1–64 letters, digits, dots, dashes or underscores, starting with a "
                                 "letter or digit (the name keys live counts and call records).")
    return name


def clean_host(value) -> str:
    """A host name or an IP address, nothing else (no scheme, no port, no path)."""
    host = (value or "").strip()
    if not host:
        raise FieldError("host", "Enter the server's host name or IP address.")
    if "://" in host or "/" in host:
        raise FieldError("host", "Enter just the host name or IP address, without tcp:// or a path.")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if ":" in host:
        raise FieldError("host", "Enter the port in the Port field, not after the host.")
    name = host.rstrip(".").lower()
    labels = name.split(".")
    if (len(name) > 253 or not all(_LABEL.match(label) for label in labels)
            or labels[-1].isdigit()):
        raise FieldError("host", "This is not a valid host name or IP address "
                                 "(letters, digits, dashes and dots, such as pbx1.example.net or 10.0.0.11).")
    return name


def clean_port(value) -> int:
    text = "" if value is None or isinstance(value, bool) else str(value).strip()
    if not (text.isascii() and text.isdigit()):
        raise FieldError("port", "Enter the port as a whole number, digits only (Asterisk's default is 5038).")
    port = int(text)
    if not 1 <= port <= 65535:
        raise FieldError("port", "Choose a port from 1 to 65535 (Asterisk's default is 5038).")
    return port


def clean_username(value) -> str:
    username = (value or "").strip()
    if not username:
        raise FieldError("username", "Enter the AMI user (the [section] name in manager.conf).")
    if not _USERNAME.match(username):
        raise FieldError("username", "Use up to 64 letters, digits and . _ - @ + (as in manager.conf).")
    return username


def clean_secret(value, *, required: bool) -> str | None:
    """The AMI secret; None when not required and left blank (keep the current one)."""
    secret = value or ""
    if not secret:
        if required:
            raise FieldError("secret", "Enter the AMI secret (manager.conf `secret =`).")
        return None
    if len(secret) > SECRET_MAX:
        raise FieldError("secret", f"Use at most {SECRET_MAX} characters.")
    if any(ch in secret for ch in "\r\n") or secret != secret.strip():
        raise FieldError("secret", "The secret cannot contain line breaks or start or end with a space.")
    return secret


# ---- operations (flush, never commit) -------------------------------------------------------
def _name_taken(name: str, except_id: int | None = None) -> bool:
    q = select(AsteriskServer.id).where(AsteriskServer.name == name)
    if except_id is not None:
        q = q.where(AsteriskServer.id != except_id)
    return db.session.execute(q).first() is not None


def create_server(*, name, host, port=DEFAULT_PORT, username, secret, enabled=True) -> AsteriskServer:
    values = dict(name=clean_name(name), host=clean_host(host), port=clean_port(port),
                  username=clean_username(username), secret=clean_secret(secret, required=True),
                  enabled=bool(enabled))
    if _name_taken(values["name"]):
        raise FieldError("name", "Another server already has this name.")
    server = AsteriskServer(**values)
    db.session.add(server)
    _flush()
    audit.record("asterisk_server.created", server, name=server.name, host=server.host, port=server.port,
                 username=server.username, enabled=server.enabled)
    return server


def update_server(server: AsteriskServer, *, name, host, port, username, secret=None,
                  enabled=None) -> dict:
    """Save an edit; a blank secret keeps the current one. Returns {field: [old, new]}."""
    values = dict(name=clean_name(name), host=clean_host(host), port=clean_port(port),
                  username=clean_username(username))
    new_secret = clean_secret(secret, required=False)
    if enabled is not None:
        values["enabled"] = bool(enabled)
    if values["name"] != server.name and _name_taken(values["name"], server.id):
        raise FieldError("name", "Another server already has this name.")
    changes = {}
    for key, value in values.items():
        if getattr(server, key) != value:
            changes[key] = [getattr(server, key), value]
            setattr(server, key, value)
    if new_secret is not None and new_secret != server.secret:
        server.secret = new_secret
        changes["secret"] = ["…", "changed"]       # never the secret itself in the audit log
    if changes:
        if {"host", "port", "username", "secret"} & changes.keys():
            # The old link status says nothing about the new settings.
            server.last_connected_at, server.last_error, server.last_error_at = None, "", None
        _flush()
        audit.record("asterisk_server.updated", server, name=server.name, **changes)
    return changes


def set_enabled(server: AsteriskServer, enabled: bool) -> bool:
    """Returns True if it changed."""
    if server.enabled == bool(enabled):
        return False
    server.enabled = bool(enabled)
    _flush()
    audit.record("asterisk_server.enabled" if enabled else "asterisk_server.disabled", server, name=server.name)
    return True


def delete_server(server: AsteriskServer) -> None:
    """Calls recorded through it keep its name (Call.server is not a foreign key)."""
    audit.record("asterisk_server.deleted", server, name=server.name, host=server.host, port=server.port)
    db.session.delete(server)
    _flush()


def _flush() -> None:
    from sqlalchemy.exc import IntegrityError

    try:
        db.session.flush()
    except IntegrityError as e:
        raise FieldError("name", "Another server already has this name.") from e


def enabled_servers() -> list[AsteriskServer]:
    return list(db.session.execute(
        select(AsteriskServer).where(AsteriskServer.enabled.is_(True)).order_by(AsteriskServer.name)
    ).scalars())

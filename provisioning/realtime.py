"""Asterisk PJSIP realtime rows (res_pjsip over sorcery realtime: ps_endpoints, ps_auths, ps_aors).

Column names follow Asterisk's own realtime schema (contrib/ast-db-manage), so an Asterisk with
    sorcery.conf  [res_pjsip] endpoint=realtime,ps_endpoints  auth=realtime,ps_auths
                  aor=realtime,ps_aors
    extconfig.conf ps_endpoints => odbc,asterisk (and the same for ps_auths, ps_aors)
registers our extensions directly. Asterisk does not scope these tables by tenant; we add
tenant_id/account_id/extension_id anyway (our scoping hook filters them, and Asterisk's
res_sorcery_realtime filters out fields it does not know, so the extra columns are harmless).

One endpoint, one auth and one AOR per extension, all three with id = Extension.sip_username:
that id is the endpoint name in channel names (`PJSIP/<id>-0000001`), which the AMI watcher
reads as the extension. accountcode = the account number, so every call carries it.
"""
from sqlalchemy import ForeignKey, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.settings import get_setting
from tenants.mixins import AccountOwned


class PsEndpoint(AccountOwned, db.Model):
    __tablename__ = "ps_endpoints"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    transport: Mapped[str | None] = mapped_column(String(40))
    aors: Mapped[str | None] = mapped_column(String(2048))
    auth: Mapped[str | None] = mapped_column(String(255))
    context: Mapped[str | None] = mapped_column(String(40))
    disallow: Mapped[str | None] = mapped_column(String(200))
    allow: Mapped[str | None] = mapped_column(String(200))
    direct_media: Mapped[str | None] = mapped_column(String(5))
    dtmf_mode: Mapped[str | None] = mapped_column(String(10))
    force_rport: Mapped[str | None] = mapped_column(String(5))
    rewrite_contact: Mapped[str | None] = mapped_column(String(5))
    rtp_symmetric: Mapped[str | None] = mapped_column(String(5))
    callerid: Mapped[str | None] = mapped_column(String(40))
    accountcode: Mapped[str | None] = mapped_column(String(80))
    language: Mapped[str | None] = mapped_column(String(40))
    device_state_busy_at: Mapped[int | None] = mapped_column()
    # Ours (Asterisk ignores them):
    extension_id: Mapped[int | None] = mapped_column(
        ForeignKey("extensions.id", ondelete="CASCADE"), index=True)
    trunk_id: Mapped[int | None] = mapped_column(
        ForeignKey("customer_trunks.id", ondelete="CASCADE"), index=True)


class PsEndpointIdIp(AccountOwned, db.Model):
    """res_pjsip_endpoint_identifier_ip (`identify` sections): a call from `match` (an address or
    a network) is `endpoint`'s. One row per address of a customer trunk, id `trunk-<id>-<n>`."""
    __tablename__ = "ps_endpoint_id_ips"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    endpoint: Mapped[str | None] = mapped_column(String(255), index=True)
    match: Mapped[str | None] = mapped_column(String(80))
    srv_lookups: Mapped[str | None] = mapped_column(String(5))
    match_header: Mapped[str | None] = mapped_column(String(255))
    trunk_id: Mapped[int | None] = mapped_column(
        ForeignKey("customer_trunks.id", ondelete="CASCADE"), index=True)


class PsAuth(AccountOwned, db.Model):
    __tablename__ = "ps_auths"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    auth_type: Mapped[str | None] = mapped_column(String(10))   # userpass | md5
    nonce_lifetime: Mapped[int | None] = mapped_column()
    md5_cred: Mapped[str | None] = mapped_column(String(40))
    password: Mapped[str | None] = mapped_column(String(80))
    realm: Mapped[str | None] = mapped_column(String(40))
    username: Mapped[str | None] = mapped_column(String(40))
    extension_id: Mapped[int | None] = mapped_column(
        ForeignKey("extensions.id", ondelete="CASCADE"), index=True)


class PsAor(AccountOwned, db.Model):
    __tablename__ = "ps_aors"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    contact: Mapped[str | None] = mapped_column(String(255))
    default_expiration: Mapped[int | None] = mapped_column()
    max_contacts: Mapped[int | None] = mapped_column()
    minimum_expiration: Mapped[int | None] = mapped_column()
    maximum_expiration: Mapped[int | None] = mapped_column()
    remove_existing: Mapped[str | None] = mapped_column(String(5))
    qualify_frequency: Mapped[int | None] = mapped_column()
    extension_id: Mapped[int | None] = mapped_column(
        ForeignKey("extensions.id", ondelete="CASCADE"), index=True)


def caller_id(name: str, number: str) -> str:
    """Asterisk caller id `"Name" <number>`, within the 40 characters of ps_endpoints.callerid."""
    number = (number or "")[:20]
    room = 40 - len(number) - 5
    clean = (name or "").replace('"', "").replace("<", "").replace(">", "").strip()[:max(room, 0)]
    return f'"{clean}" <{number}>' if clean else f"<{number}>"


def write_extension(extension, account) -> None:
    """Create or refresh the three realtime rows of one extension. Flushes nothing itself."""
    ident = extension.sip_username
    values = dict(tenant_id=extension.tenant_id, account_id=extension.account_id, extension_id=extension.id)
    session = db.session
    endpoint = session.execute(select(PsEndpoint).where(PsEndpoint.id == ident)).scalar_one_or_none()
    if endpoint is None:
        endpoint = PsEndpoint(id=ident, **values)
        session.add(endpoint)
    endpoint.transport = get_setting("sip_transport")
    endpoint.aors = ident
    endpoint.auth = ident
    endpoint.context = get_setting("sip_context")
    endpoint.disallow = "all"
    endpoint.allow = get_setting("sip_codecs")
    endpoint.direct_media = "no"
    endpoint.dtmf_mode = "rfc4733"
    endpoint.force_rport = "yes"
    endpoint.rewrite_contact = "yes"
    endpoint.rtp_symmetric = "yes"
    endpoint.callerid = extension.caller_id or caller_id(account.display_name, extension.number)
    endpoint.accountcode = account.account_number
    endpoint.language = (account.language or "en")[:40]

    auth = session.execute(select(PsAuth).where(PsAuth.id == ident)).scalar_one_or_none()
    if auth is None:
        auth = PsAuth(id=ident, **values)
        session.add(auth)
    auth.auth_type = "userpass"
    auth.username = ident
    auth.password = extension.sip_secret

    aor = session.execute(select(PsAor).where(PsAor.id == ident)).scalar_one_or_none()
    if aor is None:
        aor = PsAor(id=ident, **values)
        session.add(aor)
    aor.max_contacts = 1
    aor.remove_existing = "yes"
    aor.qualify_frequency = 60
    aor.default_expiration = 3600


def write_trunk(trunk, account) -> None:
    """The endpoint `trunk-<id>` (no auth, no registration: identified by address) and one
    identify row per address. Flushes nothing itself."""
    ident = trunk.endpoint
    session = db.session
    endpoint = session.execute(select(PsEndpoint).where(PsEndpoint.id == ident)).scalar_one_or_none()
    if endpoint is None:
        endpoint = PsEndpoint(id=ident, tenant_id=trunk.tenant_id, account_id=trunk.account_id, trunk_id=trunk.id)
        session.add(endpoint)
    endpoint.transport = get_setting("sip_transport")
    endpoint.aors = None
    endpoint.auth = None
    endpoint.context = get_setting("sip_context")
    endpoint.disallow = "all"
    endpoint.allow = get_setting("sip_codecs")
    endpoint.direct_media = "no"
    endpoint.dtmf_mode = "rfc4733"
    endpoint.force_rport = "yes"
    endpoint.rewrite_contact = "no"
    endpoint.rtp_symmetric = "yes"
    endpoint.callerid = None                  # the trunk presents its own numbers (checked by the AGI)
    endpoint.accountcode = account.account_number
    endpoint.language = (account.language or "en")[:40]
    session.execute(delete(PsEndpointIdIp).where(PsEndpointIdIp.trunk_id == trunk.id)
                    .execution_options(synchronize_session="fetch"))
    for n, host in enumerate(trunk.host_list, 1):
        session.add(PsEndpointIdIp(id=f"{ident}-{n}", endpoint=ident, match=host, srv_lookups="no",
                                   tenant_id=trunk.tenant_id, account_id=trunk.account_id, trunk_id=trunk.id))


def remove_trunk(trunk) -> None:
    """Asterisk forgets the trunk: calls from its addresses no longer match any endpoint."""
    db.session.execute(delete(PsEndpointIdIp).where(PsEndpointIdIp.trunk_id == trunk.id)
                       .execution_options(synchronize_session="fetch"))
    db.session.execute(delete(PsEndpoint).where(PsEndpoint.id == trunk.endpoint)
                       .execution_options(synchronize_session="fetch"))


def remove_extension(extension) -> None:
    """Delete the realtime rows: Asterisk no longer knows the endpoint (no register, no call)."""
    for model in (PsEndpoint, PsAuth, PsAor):
        db.session.execute(delete(model).where(model.id == extension.sip_username)
                           .execution_options(synchronize_session="fetch"))

"""Queue an email (row + job after commit) and deliver it.

`queue_email()` writes the Notification in the caller's transaction and enqueues the job
`workers.notifications.send_notification` for after the commit (app.jobs): a rolled-back
request sends nothing. The job calls `deliver()`, which sends by SMTP when SMTP_HOST is configured, else logs the email and marks it
"logged"; a row already sent or logged is never sent again (a repeated job is harmless).
"""
import logging
import smtplib
from email.message import EmailMessage

from flask import current_app
from sqlalchemy import select

from app import audit
from app.extensions import db
from app.jobs import enqueue
from app.notifications.models import Notification
from tenants.models import utcnow
from tenants.scope import tenant_scope

log = logging.getLogger(__name__)


def queue_email(*, tenant_id: int, to: str, subject: str, body: str, kind: str,
                account_id: int | None = None, dedupe_key: str | None = None,
                attachment: tuple[str, str, bytes] | None = None) -> Notification:
    """`attachment` = (file name, media type, bytes): a binary file (an invoice's PDF)."""
    return queue_emails([dict(tenant_id=tenant_id, to=to, subject=subject, body=body, kind=kind,
                              account_id=account_id, dedupe_key=dedupe_key, attachment=attachment)])[0]


def queue_emails(letters: list[dict]) -> list[Notification]:
    """`queue_email` for many letters (its keyword arguments, one dict each): one flush for all."""
    made = []
    for x in letters:
        n = Notification(tenant_id=x["tenant_id"], account_id=x.get("account_id"), kind=x["kind"], to_email=x["to"],
                         subject=x["subject"][:200], body=x["body"], dedupe_key=x.get("dedupe_key"))
        if x.get("attachment") is not None:
            a = x["attachment"]
            n.attachment_name, n.attachment_type, n.attachment_data = a[0][:120], a[1], a[2]
        made.append(n)
    db.session.add_all(made)
    db.session.flush()
    for n in made:
        enqueue("workers.notifications.send_notification", n.id, n.tenant_id, job_id=f"notification-{n.id}")
    return made


def deliver(notification_id: int, tenant_id: int) -> str:
    with tenant_scope(tenant_id, descendants=False):
        n = db.session.execute(
            select(Notification).where(Notification.id == notification_id).with_for_update()
        ).scalar_one_or_none()
        if n is None:
            return "missing"
        if n.status in ("sent", "logged"):
            return n.status
        n.attempts += 1
        cfg = current_app.config
        msg = EmailMessage()
        msg["From"] = cfg.get("MAIL_FROM", "billing@ringledger.example")
        msg["To"] = n.to_email
        msg["Subject"] = n.subject
        msg.set_content(n.body)
        if n.attachment is not None:
            msg.add_attachment(n.attachment, subtype="csv", filename=n.attachment_name or "report.csv")
        if n.attachment_data is not None:
            maintype, _, subtype = (n.attachment_type or "application/octet-stream").partition("/")
            msg.add_attachment(bytes(n.attachment_data), maintype=maintype, subtype=subtype or "octet-stream",
                               filename=n.attachment_name or "attachment")
        if not cfg.get("SMTP_HOST"):
            # Development: no mail server. The letter is logged and kept as an .eml file to open.
            log.info("email (no SMTP configured) to %s: %s\n%s", n.to_email, n.subject, n.body)
            _keep_eml(n.id, msg)
            n.status, n.transport, n.sent_at = "logged", "log", utcnow()
            return n.status
        try:
            with smtplib.SMTP(cfg["SMTP_HOST"], int(cfg.get("SMTP_PORT") or 587), timeout=20) as smtp:
                if cfg.get("SMTP_STARTTLS", True):
                    smtp.starttls()
                if cfg.get("SMTP_USERNAME"):
                    smtp.login(cfg["SMTP_USERNAME"], cfg.get("SMTP_PASSWORD", ""))
                smtp.send_message(msg)
        except (smtplib.SMTPException, OSError) as e:
            log.warning("email %s to %s failed: %s", n.id, n.to_email, e)
            n.status, n.transport, n.error = "failed", "smtp", str(e)[:255]
            return n.status
        n.status, n.transport, n.sent_at, n.error = "sent", "smtp", utcnow(), ""
        return n.status


def _keep_eml(notification_id: int, msg: EmailMessage) -> None:
    """instance/mail/<id>.eml, for a developer without SMTP (never fails the delivery)."""
    import os

    try:
        folder = os.path.join(current_app.instance_path, "mail")
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{notification_id}.eml"), "wb") as fh:
            fh.write(bytes(msg))
    except OSError as e:
        log.warning("email %s not kept as a file: %s", notification_id, e)


# --- the letters -------------------------------------------------------------------------------

def render_template(name: str, **context) -> str:
    """Render a plain-text email (no request needed: the letters are also queued by jobs)."""
    return current_app.jinja_env.get_template(name).render(**context)


def _portal_url() -> str:
    from flask import has_request_context, url_for

    if has_request_context():
        return url_for("customer.login", _external=True)
    return "/portal/login"


def welcome_letter(account, *, login_email: str | None = None) -> Notification:
    from app.numbers.operations import numbers_of_account
    from provisioning.extensions import active_extensions

    from app.settings import get_setting

    body = render_template("email/welcome.txt", account=account, login_email=login_email or account.email,
                           portal_url=_portal_url(), extensions=active_extensions(account.id),
                           numbers=numbers_of_account(account.id), sip_server=get_setting("sip_server"),
                           sip_port=get_setting("sip_port"))
    n = queue_email(tenant_id=account.tenant_id, account_id=account.id, to=account.email, kind="welcome",
                    subject=f"Welcome: your account {account.account_number} is ready", body=body)
    audit.record("account.welcome_letter_queued", account, notification_id=n.id)
    return n


def low_balance_alert(account) -> Notification:
    body = render_template("email/low_balance.txt", account=account, portal_url=_portal_url())
    n = queue_email(tenant_id=account.tenant_id, account_id=account.id, to=account.email, kind="low_balance",
                    subject=f"Low balance on account {account.account_number}", body=body)
    audit.record("account.low_balance_alert_queued", account, notification_id=n.id)
    return n


def password_changed(account, login_email: str) -> Notification:
    body = render_template("email/password_changed.txt", account=account, login_email=login_email,
                           portal_url=_portal_url())
    return queue_email(tenant_id=account.tenant_id, account_id=account.id, to=account.email,
                       kind="password_changed", subject="Your portal password was changed", body=body)


BILLING_SUBJECTS = {
    "charges_unpaid": "Account {number} suspended: recurring charges unpaid",
    "credit_limit_exceeded": "Account {number} suspended: credit limit exceeded",
    "reactivated": "Account {number} is active again",
}


def billing_notice(account, kind: str, **context) -> Notification:
    """A billing-cycle event (app/billing/cycle.py): unpaid charges, credit limit, back again."""
    return billing_notices([(account, kind, context)])[0]


def billing_notices(notices: list[tuple[object, str, dict]]) -> list[Notification]:
    """`billing_notice` for many (account, kind, context) at once: one flush for all the rows
    (a billing run tells hundreds of accounts), then a job and an audit entry each."""
    for _, kind, _ in notices:
        if kind not in BILLING_SUBJECTS:
            raise ValueError(f"unknown billing notice {kind!r}")
    portal_url = _portal_url()
    made = queue_emails([dict(tenant_id=account.tenant_id, account_id=account.id, to=account.email, kind=kind,
                              subject=BILLING_SUBJECTS[kind].format(number=account.account_number),
                              body=render_template(f"email/{kind}.txt", account=account, portal_url=portal_url,
                                                   **context))
                         for account, kind, context in notices])
    for (account, kind, _), n in zip(notices, made):
        audit.record(f"account.{kind}_notice_queued", account, notification_id=n.id)
    return made

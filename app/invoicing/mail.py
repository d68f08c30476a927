"""The "invoice issued" email (issue 17, point 6): each invoice and credit note, once issued,
goes to the account's email with the document attached: a PDF (WeasyPrint), or the HTML page
when the reseller's settings ask for HTML (seed 002, "Invoice Format").

`announce()` is called in the issuing transaction (app/invoicing/invoices._notify_issued) and
only queues the job `workers.documents.email_documents` for after the commit (app.jobs: a
rolled-back run sends nothing): one job per issued batch, on its own RQ queue (RQ_DOCUMENTS_QUEUE,
listed after the default one by the worker, so billing and invoicing runs go first). A job
renders each document and queues its email through the notification outbox with the file
attached, once per document: the email's dedupe key `document:<kind>:<id>` is unique per
tenant, so a repeated job or two workers queue one email. A PDF takes a few hundred
milliseconds (bench/invoice_pdf.py): it never runs inside the invoicing run.
"""
import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.accounts.models import Account
from app.extensions import db
from app.invoicing import render
from app.invoicing.models import Invoice
from app.jobs import enqueue
from app.notifications.models import Notification
from app.notifications.outbox import queue_email, render_template
from tenants.models import Tenant
from tenants.scope import tenant_scope

log = logging.getLogger(__name__)

SUBJECTS = {"invoice": "Invoice {number} from {seller}: {total} due {due}",
            "credit_note": "Credit note {number} from {seller}"}


def announce(invoices) -> None:
    """Queue the emails of these issued invoices or credit notes (sent after the commit): one
    job per tenant and batch (a worker process renders the whole batch: it loads the app and
    WeasyPrint once), on the documents queue, after the worker's default queue."""
    from flask import current_app

    by_tenant: dict[int, list] = {}
    for inv in invoices:
        if inv.number:
            by_tenant.setdefault(inv.tenant_id, []).append([inv.kind, inv.id])
    for tenant_id, docs in by_tenant.items():
        first_kind, first_id = docs[0]
        enqueue("workers.documents.email_documents", tenant_id, docs,
                job_id=f"document-emails-{first_kind}-{first_id}-{len(docs)}",
                queue_name=current_app.config.get("RQ_DOCUMENTS_QUEUE"))


def email_documents(tenant_id: int, docs) -> dict:
    """Email each [kind, id] of `docs` (one commit each). A document that fails is logged and
    the others go on; the job then fails so RQ keeps it, and a retry skips what was queued."""
    out: dict[str, int] = {}
    failed = []
    for kind, doc_id in docs:
        try:
            outcome = email_document(kind, doc_id, tenant_id)
        except Exception:      # noqa: BLE001  (one bad document must not stop the batch's others)
            db.session.rollback()
            log.exception("invoice email for %s %s failed", kind, doc_id)
            failed.append(f"{kind} {doc_id}")
            outcome = "failed"
        out[outcome] = out.get(outcome, 0) + 1
    if failed:
        raise RuntimeError(f"{len(failed)} document email(s) failed: {', '.join(failed[:10])}")
    return out


def dedupe_key(kind: str, doc_id: int) -> str:
    return f"document:{kind}:{doc_id}"


def email_document(kind: str, doc_id: int, tenant_id: int) -> str:
    """Render one issued invoice or credit note and queue its email with the file; commits.
    Returns queued | duplicate | no_address | missing."""
    if kind not in SUBJECTS:
        raise ValueError(f"no email for documents of kind {kind!r}")
    with tenant_scope(tenant_id, descendants=False):
        key = dedupe_key(kind, doc_id)
        if db.session.execute(select(Notification.id).where(Notification.dedupe_key == key)).first():
            return "duplicate"
        inv = db.session.execute(select(Invoice).where(Invoice.id == doc_id)).scalar_one_or_none()
        if inv is None or inv.kind != kind or not inv.number:
            return "missing"
        account = db.session.execute(select(Account).where(Account.id == inv.account_id)).scalar_one()
        if not account.email:
            return "no_address"
        doc = render.document(kind, inv.id)
        settings = render.settings_for(inv.tenant_id)
        if settings.get("invoice_format") == "html":
            attachment = (render.filename(doc)[:-4] + ".html", "text/html",
                          render.render_html(doc).encode("utf-8"))
        else:
            attachment = (render.filename(doc), "application/pdf", render.render_pdf(doc))
        reseller = db.session.execute(select(Tenant).where(Tenant.id == inv.tenant_id)
                                      .execution_options(all_tenants=True)).scalar_one()
        total = dict((t["label"], t["value"]) for t in doc.totals).get("Total", "")
        due = dict(doc.facts).get("Due date", "")
        body = render_template("email/invoice_issued.txt", doc=doc, invoice=inv, account=account, total=total,
                               due=due, reseller=reseller, attachment_name=attachment[0])
        subject = SUBJECTS[kind].format(number=inv.number, seller=doc.seller["legal_name"] or reseller.name,
                                        total=total, due=due)
        try:
            with db.session.begin_nested():
                queue_email(tenant_id=inv.tenant_id, account_id=account.id, to=account.email,
                            kind="invoice_issued" if kind == "invoice" else "credit_note_issued",
                            subject=subject, body=body, dedupe_key=key, attachment=attachment)
        except IntegrityError:
            db.session.rollback()
            return "duplicate"
        db.session.commit()
        return "queued"

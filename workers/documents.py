"""Document jobs: the "invoice issued" emails with their PDFs, one job per issued batch
(app/invoicing/mail.py). Thin."""
from app.invoicing.mail import email_documents as _email_documents
from workers.runner import in_app_context


@in_app_context
def email_documents(tenant_id: int, docs) -> dict:
    return _email_documents(tenant_id, [tuple(d) for d in docs])

"""Document jobs: the "invoice issued" email with its PDF (app/invoicing/mail.py). Thin."""
from app.invoicing.mail import email_document as _email_document
from workers.runner import in_app_context


@in_app_context
def email_document(kind: str, doc_id: int, tenant_id: int) -> str:
    return _email_document(kind, doc_id, tenant_id)

"""Documents (invoices, credit notes, statements, receipts) as pages and PDFs, for both portals.

The portal routes load the document in the caller's tenant scope (another tenant's or another
account's: 404), then answer with its HTML (a page of its own, with a toolbar of links and
actions for the screen) or its PDF (WeasyPrint, as a download). Thin: app/invoicing/render.py
builds and renders the document.
"""
from flask import Response, abort
from flask_wtf.csrf import generate_csrf

from app.invoicing import render as docs


def load(kind: str, id_: int) -> docs.Document:
    try:
        return docs.document(kind, id_)
    except docs.DocumentNotFound:
        abort(404)


def html_response(doc: docs.Document, links=(), actions=()) -> Response:
    toolbar = {"links": list(links), "actions": [dict(a, csrf=generate_csrf()) for a in actions]}
    resp = Response(docs.render_html(doc, toolbar=toolbar), mimetype="text/html")
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def pdf_response(doc: docs.Document, *, inline: bool = False) -> Response:
    resp = Response(docs.render_pdf(doc), mimetype="application/pdf")
    resp.headers["Content-Disposition"] = f'{"inline" if inline else "attachment"}; filename="{docs.filename(doc)}"'
    resp.headers["Cache-Control"] = "private, no-store"
    return resp

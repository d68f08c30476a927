"""Error pages: a partial for htmx requests, the full page otherwise; never a bare 500."""
import logging

from flask import jsonify, request
from werkzeug.exceptions import HTTPException

from app.extensions import db
from app.web import render

log = logging.getLogger(__name__)

TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 405: "Not allowed",
          409: "Conflict", 413: "Too large", 429: "Too many attempts", 500: "Something went wrong"}


def wants_json() -> bool:
    return request.path.startswith(("/api/", "/webhooks/")) or (
        request.accept_mimetypes.best == "application/json")


def _page(code: int, message: str):
    if wants_json():
        return jsonify(error=TITLES.get(code, "Error"), message=message), code
    return render("errors/error.html", status=code, code=code,
                  title=TITLES.get(code, "Error"), message=message)


def register_error_handlers(app):
    @app.errorhandler(HTTPException)
    def http_error(e):
        if e.code and e.code < 400:
            return e
        return _page(e.code or 500, e.description or "")

    @app.errorhandler(Exception)
    def unexpected(e):
        log.exception("unhandled error on %s", request.path)
        db.session.rollback()
        return _page(500, "The error has been logged. Nothing was saved.")

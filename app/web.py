"""Rendering for full pages and htmx partials from one template, and small response helpers.

A page template starts with `{% extends layout %}`: `render()` passes "base.html" for a normal
or history-restore request, and "_partial.html" (just the content block) for an htmx request,
so one template serves both. htmx-flask's `request.htmx` detects the request; headers are
set with our own helpers (its reswap constants are broken in 0.1.0).
"""
from flask import make_response, render_template, request


def is_htmx() -> bool:
    hx = getattr(request, "htmx", None)
    return bool(hx) and not hx.history_restore_request and not hx.boosted


def render(template: str, status: int = 200, **context):
    layout = "_partial.html" if is_htmx() else "base.html"
    return make_response(render_template(template, layout=layout, **context), status)


def hx_redirect(url: str, status: int = 303):
    """Redirect that works for htmx (HX-Location) and for plain forms alike."""
    from flask import redirect

    if is_htmx():
        resp = make_response("", 204)
        resp.headers["HX-Location"] = url
        return resp
    return redirect(url, code=status)


def hx_trigger(resp, event: str):
    resp.headers["HX-Trigger"] = event
    return resp


def add_vary(resp):
    resp.vary.add("HX-Request")
    return resp

"""The calls browser, in the reseller portal (its subtree) and the admin portal (every tenant).

GET  /<portal>/calls                            filtered calls, keyset pages; htmx swaps #call-results
GET  /<portal>/calls/figures                    ASR/ACD and counts of the whole filter (loaded after the list)
GET  /<portal>/calls.csv                        every call of the filter as CSV (streamed, batch by batch)
POST /<portal>/calls/<call_id>/rerate           re-rate one call (an error or not rated yet)
POST /<portal>/calls/rerate                     re-rate every call of the filter needing it (a job)
GET  /<portal>/calls/reratings/<rerating_id>    that job's progress and outcome

Thin: parsing and queries in app/calls/browser.py, re-rating in app/rating/rerate.py. The
same routes are registered on both blueprints; the tenant scope decides what each login sees.
"""
from urllib.parse import urlsplit

from flask import Response, current_app, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.accounts.models import Account
from app.calls import browser
from app.calls.models import Call
from app.extensions import db
from app.jobs import enqueue, job_status
from app.rating import rerate
from app.web import is_htmx, render
from tenants import get_or_404
from tenants.scope import current_scope, use_scope


def _query(args):
    """(query, resolved ids or None, errors by field)."""
    cq = browser.CallQuery.from_args(args)
    errors = dict(cq.errors)
    resolved = None
    if not errors:
        try:
            resolved = browser.resolve(cq)
        except browser.FilterError as e:
            errors[e.field] = str(e)
    return cq, resolved, errors


def _multi_tenant() -> bool:
    ids = current_scope().tenant_ids
    return ids is None or len(ids) > 1


def _back(portal: str) -> str:
    """The list URL a form came from (same path only), else the list."""
    list_url = url_for(f"{portal}.calls")
    parts = urlsplit(request.form.get("next", ""))
    if parts.scheme or parts.netloc or parts.path != list_url:
        return list_url
    return list_url + (f"?{parts.query}" if parts.query else "")


def register(bp, portal: str) -> None:
    """Add the browser's routes to a portal blueprint (`portal` is its name)."""

    def calls():
        cq, resolved, errors = _query(request.args)
        result = browser.page(cq, resolved) if not errors else None
        return render("calls/browser.html", status=422 if errors else 200, portal=portal, cq=cq, errors=errors,
                      result=result, dispositions=browser.DISPOSITIONS,
                      rating_filters=browser.RATING_FILTERS, page_sizes=browser.PAGE_SIZES,
                      resellers=browser.resellers_of_scope() if _multi_tenant() else [],
                      show_reseller=_multi_tenant(), this_url=request.full_path.rstrip("?"), title="Calls")

    def calls_csv():
        cq, resolved, errors = _query(request.args)
        if errors:
            return render("calls/browser.html", status=422, portal=portal, cq=cq, errors=errors, result=None,
                          dispositions=browser.DISPOSITIONS, rating_filters=browser.RATING_FILTERS,
                          page_sizes=browser.PAGE_SIZES,
                          resellers=browser.resellers_of_scope() if _multi_tenant() else [],
                          show_reseller=_multi_tenant(), this_url=request.full_path.rstrip("?"), title="Calls")
        app = current_app._get_current_object()
        scope = current_scope()

        def piece(after):
            # Streamed after the request has ended: each batch in a context, session and scope
            # of its own, opened and closed within one step of the iteration.
            with app.app_context(), use_scope(scope):
                try:
                    return browser.export_batch(cq, resolved, after)
                finally:
                    db.session.remove()

        def generate():
            yield browser.csv_header()
            text, after = piece(None)
            yield text
            while after is not None:
                text, after = piece(after)
                yield text

        filename = f"calls-{cq.start.isoformat()}-{cq.end.isoformat()}.csv"
        return Response(generate(), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    def calls_figures():
        cq, resolved, errors = _query(request.args)
        figures = browser.figures(cq, resolved) if not errors else None
        template = "calls/_figures.html" if is_htmx() else "calls/figures.html"
        return render(template, status=422 if errors else 200, portal=portal, cq=cq, errors=errors,
                      figures=figures, title="Calls · figures")

    def call_rerate(call_id):
        call = get_or_404(Call, call_id)
        if call.rated_at is not None and not call.rating_error:
            flash(f"Call {call.id} is rated already; its charge stands.", "info")
            return redirect(_back(portal), code=303)
        rerate.rerate_one(call)
        if call.rating_error:
            message, category = f"Call {call.id} is still not rated: {call.rating_error}.", "error"
        elif call.rated_at is None:
            message, category = f"Call {call.id} is being rated elsewhere; look again in a moment.", "info"
        else:
            currency = db.session.execute(select(Account.currency).where(Account.id == call.account_id)).scalar()
            message, category = f"Call {call.id} rated: {call.cost or 0} {currency} charged.", "success"
        db.session.commit()
        flash(message, category)
        return redirect(_back(portal), code=303)

    def calls_rerate():
        cq, resolved, errors = _query(request.form)
        if errors:
            flash("Fix the filter first: " + " ".join(errors.values()), "error")
            return redirect(_back(portal), code=303)
        if not rerate.count_needing(cq, resolved):
            flash("No call matching the filter is waiting to be rated.", "info")
            return redirect(_back(portal), code=303)
        run = rerate.start_rerating(cq, tenant_id=current_user.tenant_id,
                                    all_tenants=current_scope().tenant_ids is None, created_by_id=current_user.id)
        enqueue("workers.rating.rerate_matching_calls", run.id, job_id=run.job_id)
        run_id = run.id
        db.session.commit()
        return redirect(url_for(f"{portal}.calls_rerating", rerating_id=run_id), code=303)

    def calls_rerating(rerating_id):
        run = get_or_404(rerate.CallRerating, rerating_id)
        percent, stage = 0, {"queued": "Waiting for a worker…", "running": "Starting…"}.get(run.status, "")
        if run.finished:
            percent = 100
        else:
            status = job_status(run.job_id)
            if status is not None:
                meta = status["meta"]
                if meta.get("total"):
                    percent = max(0, min(100, int(100 * meta.get("done", 0) / meta["total"])))
                stage = meta.get("stage") or stage
                if status["status"] == "failed":
                    stage = "The re-rating job failed; see the worker's log."
        template = "calls/_rerating_progress.html" if is_htmx() else "calls/rerating.html"
        back = url_for(f"{portal}.calls", **{k: v for k, v in (run.filters or {}).items()
                                              if isinstance(v, (str, int))})
        return render(template, run=run, percent=percent, stage=stage, portal=portal, back=back,
                      title="Re-rating calls")

    bp.add_url_rule("/calls", "calls", calls, methods=["GET"])
    bp.add_url_rule("/calls/figures", "calls_figures", calls_figures, methods=["GET"])
    bp.add_url_rule("/calls.csv", "calls_csv", calls_csv, methods=["GET"])
    bp.add_url_rule("/calls/<int:call_id>/rerate", "call_rerate", call_rerate, methods=["POST"])
    bp.add_url_rule("/calls/rerate", "calls_rerate", calls_rerate, methods=["POST"])
    bp.add_url_rule("/calls/reratings/<int:rerating_id>", "calls_rerating", calls_rerating, methods=["GET"])


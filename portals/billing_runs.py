"""Billing runs (issue 16, point 8) in both portals: the runs in scope (the platform admin sees
every tenant's, a reseller its subtree's) with their counts and, for a run in progress, a bar
that refreshes itself (htmx); a run's failed accounts with the reason; a reseller starts its own
tenant's runs for the current period (idempotent)."""
from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from app.billing import runs as billing_runs
from app.billing.cycle import ChargeRun
from app.extensions import db
from app.web import render
from portals.account_forms import ActionForm
from tenants import Tenant, get_or_404


def register(bp, portal: str) -> None:
    def runs_page():
        rows = billing_runs.runs()
        names = dict(db.session.execute(db.select(Tenant.id, Tenant.name)).all())
        live = {r.id: billing_runs.progress(r) for r in rows}
        return render("billing/runs.html", portal=portal, runs=rows, names=names, live=live,
                      action_form=ActionForm(formdata=None), title="Billing runs",
                      polling=any(r.finished_at is None for r in rows))

    def run_detail(run_id):
        run = get_or_404(ChargeRun, run_id)
        return render("billing/run.html", portal=portal, run=run, failures=billing_runs.failures(run.id),
                      counts=billing_runs.outcome_counts(run.id), live=billing_runs.progress(run),
                      tenant=db.session.execute(db.select(Tenant).where(Tenant.id == run.tenant_id)).scalar_one_or_none(),
                      title=f"Billing run {run.period}")

    def runs_start():
        if not ActionForm().validate_on_submit():
            abort(400, description="The form expired; reload the page and try again.")
        keys = billing_runs.start_current_runs(current_user.tenant_id)
        db.session.commit()
        flash(f"Started: {', '.join(keys)}. Accounts already charged for these periods are not charged again."
              if keys else "No account of yours has a period to charge now.", "success" if keys else "info")
        return redirect(url_for(f"{bp.name}.billing_runs"), code=303)

    bp.add_url_rule("/billing-runs", "billing_runs", runs_page, methods=["GET"])
    bp.add_url_rule("/billing-runs/<int:run_id>", "billing_run", run_detail, methods=["GET"])
    if portal == "reseller":
        bp.add_url_rule("/billing-runs/start", "billing_runs_start", runs_start, methods=["POST"])

"""Account templates: list, use ("create from template"), delete. Saving is on the account page."""
from flask import abort, flash, redirect, url_for
from flask_login import current_user

from app.billing.account_templates import AccountTemplate, delete_template, templates_of
from app.extensions import db
from app.web import render
from portals.account_forms import ActionForm, COUNTRY_NAMES
from portals.reseller import bp
from tenants import get_or_404


@bp.get("/templates")
def account_templates():
    return render("reseller/templates.html", templates=templates_of(current_user.tenant_id),
                  action_form=ActionForm(formdata=None), country_names=COUNTRY_NAMES, title="Account templates")


@bp.post("/templates/<int:template_id>/delete")
def account_template_delete(template_id):
    tpl = get_or_404(AccountTemplate, template_id)
    if tpl.tenant_id != current_user.tenant_id:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400, description="The form expired; reload the page and try again.")
    name = tpl.name
    delete_template(tpl)
    db.session.commit()
    flash(f"Template “{name}” deleted.", "success")
    return redirect(url_for("reseller.account_templates"), code=303)

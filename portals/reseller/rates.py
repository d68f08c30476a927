"""Reseller portal: the Rates Manager (rate sheets, rows, deck import/export, buy sheets).

GET/POST /reseller/rates                                   sheets; create a sheet; sub-resellers' buy sheets
GET      /reseller/rates/<rate_sheet_id>                   one sheet: rows (search, pages), add, settings
POST     /reseller/rates/<rate_sheet_id>/edit|copy|delete  sheet settings, copy with rows, delete
POST     /reseller/rates/<rate_sheet_id>/rows              add a row (or schedule a new price)
GET/POST /reseller/rates/rows/<rate_id>/edit               edit a row
POST     /reseller/rates/rows/<rate_id>/delete             delete a row
POST     /reseller/rates/<rate_sheet_id>/import            upload a deck -> background job
GET      /reseller/rates/imports/<job_id>                  the import's progress (polls itself)
GET      /reseller/rates/<rate_sheet_id>/export.csv        the whole sheet as a deck (streamed)
POST     /reseller/resellers/<tenant_id>/buy-sheet         the sheet a sub-reseller buys at (owner)
Sheets are managed by the reseller that owns them: another tenant's sheet, row or import is 404.
"""
import re

from flask import Response, abort, current_app, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.conflicts import FieldError
from app.extensions import db
from app.jobs import enqueue, job_status
from app.rating import sheets as ops
from app.rating.imports import RateImport, export_page, new_import
from app.rating.models import Rate, RateSheet
from app.web import hx_redirect, is_htmx, render
from portals.access import owner_only
from portals.reseller import bp
from portals.reseller.rates_forms import ActionForm, BuySheetForm, CopyForm, ImportForm, RateForm, SheetForm
from tenants import Tenant, get_or_404
from tenants.scope import current_scope, use_scope

MAX_UPLOAD = 64 * 1024 * 1024


def _own(model, ident):
    obj = get_or_404(model, ident)
    if obj.tenant_id != current_user.tenant_id:
        abort(404)
    return obj


def _field_error(form, e: FieldError) -> None:
    if e.field and e.field in form._fields:
        form[e.field].errors = list(form[e.field].errors) + [e.message]
    else:
        form.form_errors.append(e.message)


def _sheet_form_values(form) -> dict:
    return dict(name=form.name.data, currency=form.currency.data, description=form.description.data or "",
                short_call_seconds=form.short_call_seconds.data or 0, short_call_charge=form.short_call_charge.data)


def _rate_values(form) -> dict:
    return {f: form[f].data for f in ops.RATE_FIELDS}


# -- sheets --------------------------------------------------------------------------------------
def _rates_page(form=None, status=200):
    tenant = db.session.execute(select(Tenant).where(Tenant.id == current_user.tenant_id)).scalar_one()
    if form is None:
        form = SheetForm(formdata=None, data={"currency": tenant.currency})
    sheets = ops.sheets_of(tenant.id)
    children = ops.children_of(tenant.id)
    choices = [(0, "— none —")] + [(s.id, f"{s.name} ({s.currency})") for s, _ in sheets]
    buy_forms = {}
    for child in children:
        f = BuySheetForm(formdata=None, data={"rate_sheet_id": child.buy_rate_sheet_id or 0}, prefix=f"t{child.id}")
        f.rate_sheet_id.choices = choices
        buy_forms[child.id] = f
    return render("reseller/rates.html", form=form, sheets=sheets, children=children, buy_forms=buy_forms,
                  sheet_names={s.id: s.name for s, _ in sheets}, tenant=tenant, title="Rates", status=status)


@bp.route("/rates", methods=["GET", "POST"])
def rates():
    if request.method == "GET":
        return _rates_page()
    form = SheetForm()
    if form.validate():
        try:
            sheet = ops.create_sheet(current_user.tenant_id, **_sheet_form_values(form))
        except FieldError as e:
            db.session.rollback()
            _field_error(form, e)
        else:
            db.session.commit()
            flash(f"Rate sheet “{sheet.name}” created: add rows or import a deck.", "success")
            return redirect(url_for("reseller.rate_sheet", rate_sheet_id=sheet.id), code=303)
    return _rates_page(form, 422)


def _sheet_page(sheet, *, sheet_form=None, rate_form=None, copy_form=None, import_form=None, status=200,
                delete_error=None):
    q = request.args.get("q", "").strip()[:100]
    page = request.args.get("page", 1, type=int) or 1
    size = request.args.get("size", ops.PAGE_SIZES[0], type=int)
    result = ops.list_rates(sheet.id, q, page, size)
    if is_htmx() and request.method == "GET" and request.headers.get("HX-Target") == "rate-rows":
        return render("reseller/_rate_rows.html", sheet=sheet, result=result, q=q)
    usage = ops.usage(sheet)
    row_total = result.total if not q else ops.count_rates(sheet.id)
    if sheet_form is None:
        sheet_form = SheetForm(formdata=None, obj=sheet)
    if rate_form is None:
        prefill = {k: request.args.get(k) for k in ("prefix", "country", "description") if request.args.get(k)}
        rate_form = RateForm(formdata=None, data=prefill)
    imports = list(db.session.execute(select(RateImport).where(RateImport.rate_sheet_id == sheet.id)
                                      .order_by(RateImport.id.desc()).limit(5)).scalars())
    return render("reseller/rate_sheet.html", sheet=sheet, result=result, q=q, usage=usage, sheet_form=sheet_form,
                  rate_form=rate_form,
                  copy_form=copy_form or CopyForm(formdata=None, data={"name": f"{sheet.name} (copy)"}),
                  import_form=import_form or ImportForm(formdata=None), action_form=ActionForm(formdata=None),
                  imports=imports, delete_error=delete_error, row_total=row_total, title=sheet.name, status=status)


@bp.get("/rates/<int:rate_sheet_id>")
def rate_sheet(rate_sheet_id):
    return _sheet_page(_own(RateSheet, rate_sheet_id))


@bp.post("/rates/<int:rate_sheet_id>/edit")
def rate_sheet_edit(rate_sheet_id):
    sheet = _own(RateSheet, rate_sheet_id)
    form = SheetForm()
    if form.validate():
        try:
            changes = ops.update_sheet(sheet, **_sheet_form_values(form))
        except FieldError as e:
            db.session.rollback()
            _field_error(form, e)
        else:
            db.session.commit()
            flash("Rate sheet saved." if changes else "Nothing changed.", "success" if changes else "info")
            return redirect(url_for("reseller.rate_sheet", rate_sheet_id=sheet.id), code=303)
    sheet = _own(RateSheet, rate_sheet_id)
    return _sheet_page(sheet, sheet_form=form, status=422)


@bp.post("/rates/<int:rate_sheet_id>/copy")
def rate_sheet_copy(rate_sheet_id):
    sheet = _own(RateSheet, rate_sheet_id)
    form = CopyForm()
    if form.validate():
        try:
            copy = ops.copy_sheet(sheet, form.name.data)
        except FieldError as e:
            db.session.rollback()
            form.name.errors = list(form.name.errors) + [e.message]
        else:
            db.session.commit()
            flash(f"Copied to “{copy.name}”.", "success")
            return redirect(url_for("reseller.rate_sheet", rate_sheet_id=copy.id), code=303)
    return _sheet_page(_own(RateSheet, rate_sheet_id), copy_form=form, status=422)


@bp.post("/rates/<int:rate_sheet_id>/delete")
def rate_sheet_delete(rate_sheet_id):
    sheet = _own(RateSheet, rate_sheet_id)
    form = ActionForm()
    if not form.validate():
        return _sheet_page(sheet, delete_error="The form expired: reload the page and try again.", status=422)
    name = sheet.name
    try:
        ops.delete_sheet(sheet)
    except FieldError as e:
        db.session.rollback()
        return _sheet_page(_own(RateSheet, rate_sheet_id), delete_error=e.message, status=409)
    db.session.commit()
    flash(f"Rate sheet “{name}” deleted.", "success")
    return hx_redirect(url_for("reseller.rates"))


# -- rows ----------------------------------------------------------------------------------------
@bp.post("/rates/<int:rate_sheet_id>/rows")
def rate_add(rate_sheet_id):
    sheet = _own(RateSheet, rate_sheet_id)
    form = RateForm()
    if form.validate():
        try:
            rate = ops.add_rate(sheet, _rate_values(form))
        except FieldError as e:
            db.session.rollback()
            _field_error(form, e)
        else:
            prefix, effective = rate.prefix, rate.effective_from
            db.session.commit()
            flash(f"Prefix {prefix} added, effective {effective.isoformat()}.", "success")
            return redirect(url_for("reseller.rate_sheet", rate_sheet_id=rate_sheet_id, q=prefix), code=303)
    return _sheet_page(_own(RateSheet, rate_sheet_id), rate_form=form, status=422)


@bp.route("/rates/rows/<int:rate_id>/edit", methods=["GET", "POST"])
def rate_edit(rate_id):
    rate = _own(Rate, rate_id)
    sheet = _own(RateSheet, rate.rate_sheet_id)
    if request.method == "GET":
        data = {f: getattr(rate, f) for f in ops.RATE_FIELDS}
        data = {k: (v.isoformat() if hasattr(v, "isoformat") else format(v, "f") if hasattr(v, "as_tuple") else str(v))
                for k, v in data.items()}
        return render("reseller/rate_edit.html", sheet=sheet, rate=rate, form=RateForm(formdata=None, data=data),
                      action_form=ActionForm(formdata=None), title=f"Prefix {rate.prefix}")
    form = RateForm()
    if form.validate():
        try:
            changes = ops.update_rate(rate, _rate_values(form))
        except FieldError as e:
            db.session.rollback()
            _field_error(form, e)
        else:
            prefix = rate.prefix
            db.session.commit()
            flash(f"Prefix {prefix} saved." if changes else "Nothing changed.", "success" if changes else "info")
            return redirect(url_for("reseller.rate_sheet", rate_sheet_id=sheet.id, q=prefix), code=303)
    rate = _own(Rate, rate_id)
    return render("reseller/rate_edit.html", sheet=_own(RateSheet, rate.rate_sheet_id), rate=rate, form=form,
                  action_form=ActionForm(formdata=None), title=f"Prefix {rate.prefix}", status=422)


@bp.post("/rates/rows/<int:rate_id>/delete")
def rate_delete(rate_id):
    rate = _own(Rate, rate_id)
    sheet_id, prefix = rate.rate_sheet_id, rate.prefix
    if not ActionForm().validate():
        flash("The form expired: reload the page and try again.", "error")
        return redirect(url_for("reseller.rate_sheet", rate_sheet_id=sheet_id), code=303)
    ops.delete_rate(rate)
    db.session.commit()
    flash(f"Prefix {prefix} deleted.", "success")
    return hx_redirect(url_for("reseller.rate_sheet", rate_sheet_id=sheet_id, q=request.args.get("q", "")))


# -- import / export -----------------------------------------------------------------------------
@bp.post("/rates/<int:rate_sheet_id>/import")
def rate_import(rate_sheet_id):
    sheet = _own(RateSheet, rate_sheet_id)
    form = ImportForm()
    if form.validate():
        content = form.file.data.read(MAX_UPLOAD + 1)
        if len(content) > MAX_UPLOAD:
            form.file.errors = [f"The file is larger than {MAX_UPLOAD // 2 ** 20} MB."]
        elif not content.strip():
            form.file.errors = ["The file is empty."]
        else:
            imp = new_import(sheet, content, filename=form.file.data.filename or "", mode=form.mode.data,
                             import_good_lines=form.import_good_lines.data, day_first=form.day_first.data,
                             created_by_id=current_user.id)
            enqueue("workers.rating.import_rate_deck", imp.id, job_id=imp.job_id)
            job_id = imp.job_id
            db.session.commit()                       # the job is handed over after this commit
            return redirect(url_for("reseller.rate_import_progress", job_id=job_id), code=303)
    return _sheet_page(_own(RateSheet, rate_sheet_id), import_form=form, status=422)


_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@bp.get("/rates/imports/<job_id>")
def rate_import_progress(job_id):
    if not _JOB_ID.match(job_id):
        abort(404)
    imp = db.session.execute(select(RateImport).where(RateImport.job_id == job_id)).scalar_one_or_none()
    if imp is None or imp.tenant_id != current_user.tenant_id:
        abort(404)
    sheet = _own(RateSheet, imp.rate_sheet_id)
    percent, stage = 0, {"queued": "Waiting for a worker…", "running": "Starting…"}.get(imp.status, "")
    if imp.finished:
        percent = 100
    else:
        status = job_status(imp.job_id)
        if status is not None:
            meta = status["meta"]
            if meta.get("total"):
                percent = max(0, min(100, int(100 * meta.get("done", 0) / meta["total"])))
            stage = meta.get("stage") or stage
            if status["status"] == "failed" and not imp.finished:
                stage = "The import job failed; see the worker's log."
    template = "reseller/_rate_import_progress.html" if is_htmx() else "reseller/rate_import.html"
    return render(template, imp=imp, sheet=sheet, percent=percent, stage=stage, title=f"Import into {sheet.name}")


@bp.get("/rates/<int:rate_sheet_id>/export.csv")
def rate_export(rate_sheet_id):
    sheet = _own(RateSheet, rate_sheet_id)
    scope = current_scope()
    sheet_id = sheet.id
    filename = re.sub(r"[^A-Za-z0-9_.-]+", "-", sheet.name).strip("-") or f"sheet-{sheet.id}"

    app = current_app._get_current_object()

    def piece(after):
        # Streamed after the request has ended: each piece in a context, session and scope of
        # its own, opened and closed within one step of the iteration.
        with app.app_context(), use_scope(scope):
            try:
                return export_page(sheet_id, after)
            finally:
                db.session.remove()

    def generate():
        text_, after = piece(None)
        yield text_
        while after is not None:
            text_, after = piece(after)
            yield text_

    return Response(generate(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'})


# -- buy sheets ----------------------------------------------------------------------------------
@bp.post("/resellers/<int:tenant_id>/buy-sheet")
def buy_sheet_set(tenant_id):
    child = get_or_404(Tenant, tenant_id)
    if child.parent_id != current_user.tenant_id:
        abort(404)
    owner_only()
    form = BuySheetForm(prefix=f"t{child.id}")
    form.rate_sheet_id.choices = [(0, "")]
    if not form.validate():
        flash("The form expired: reload the page and try again.", "error")
        return redirect(url_for("reseller.rates"), code=303)
    try:
        ops.set_buy_sheet(child, current_user.tenant_id, form.rate_sheet_id.data or None)
    except FieldError as e:
        db.session.rollback()
        flash(f"{child.name}: {e.message}", "error")
        return redirect(url_for("reseller.rates", _anchor="buy-sheets"), code=303)
    name = child.name
    db.session.commit()
    flash(f"{name} now buys at the sheet you chose." if form.rate_sheet_id.data else f"{name} has no buy sheet now.",
          "success")
    return redirect(url_for("reseller.rates", _anchor="buy-sheets"), code=303)

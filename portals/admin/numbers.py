"""Platform DID inventory: import from CSV, allocate to resellers, take spare numbers back."""
from flask import abort, flash, redirect, request, url_for
from sqlalchemy import func, select

from app.conflicts import FieldError
from app.extensions import db
from app.web import render
from portals.account_forms import ActionForm, AllocateForm, NumberImportForm
from portals.admin import bp
from app.numbers import operations as dids
from app.numbers.models import STATUSES
from app.numbers.operations import DidImportError, Number
from tenants import Tenant, get_or_404

PAGE = 200
MAX_UPLOAD = 5 * 1024 * 1024


def _reseller_choices():
    tenants = db.session.execute(select(Tenant).where(Tenant.parent_id.is_not(None)).order_by(Tenant.path)).scalars()
    return [(0, "Choose a reseller")] + [(t.id, ("— " * (t.depth - 1)) + t.name) for t in tenants]


def _page(*, status=200, import_form=None, allocate_form=None, import_errors=None):
    state = request.args.get("status", "")
    tenant_id = request.args.get("tenant_id", type=int)
    page = max(request.args.get("page", 1, type=int), 1)
    q = select(Number)
    if state in STATUSES:
        q = q.where(Number.status == state)
    if tenant_id:
        q = q.where(Number.tenant_id == tenant_id)
    total = db.session.scalar(select(func.count()).select_from(q.subquery()))
    rows = db.session.execute(q.order_by(Number.number).offset((page - 1) * PAGE).limit(PAGE)).scalars().all()
    tenants = {t.id: t for t in db.session.execute(select(Tenant)).scalars()}
    counts = dict(db.session.execute(select(Number.status, func.count()).group_by(Number.status)).all())
    allocate_form = allocate_form or AllocateForm(formdata=None)
    allocate_form.tenant_id.choices = _reseller_choices()
    return render("admin/numbers.html", status=status, numbers=rows, tenants=tenants, counts=counts, state=state,
                  tenant_id=tenant_id, page=page, pages=max((total + PAGE - 1) // PAGE, 1), total=total,
                  import_form=import_form or NumberImportForm(formdata=None), allocate_form=allocate_form,
                  import_errors=import_errors, action_form=ActionForm(formdata=None), title="Numbers")


@bp.get("/numbers")
def numbers():
    return _page()


@bp.post("/numbers/import")
def numbers_import():
    form = NumberImportForm()
    if not form.validate():
        return _page(status=400, import_form=form)
    text = ""
    upload = form.file.data
    if upload and getattr(upload, "filename", ""):
        raw = upload.read(MAX_UPLOAD + 1)
        if len(raw) > MAX_UPLOAD:
            form.file.errors = ["The file is larger than 5 MB; split it."]
            return _page(status=422, import_form=form)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            form.file.errors = ["The file is not UTF-8 text (save it as CSV UTF-8)."]
            return _page(status=422, import_form=form)
    else:
        text = form.text.data or ""
    if not text.strip():
        form.text.errors = ["Choose a CSV file or paste the lines: number, country, setup cost, monthly cost."]
        return _page(status=422, import_form=form)
    try:
        count = dids.import_numbers(text)
    except DidImportError as e:
        db.session.rollback()
        return _page(status=422, import_form=form, import_errors=e.errors)
    db.session.commit()
    flash(f"{count} number{'s' if count != 1 else ''} imported into the platform inventory.", "success")
    return redirect(url_for("admin.numbers", status="platform"), code=303)


@bp.post("/numbers/allocate")
def numbers_allocate():
    form = AllocateForm()
    form.tenant_id.choices = _reseller_choices()
    if not form.validate():
        return _page(status=422, allocate_form=form)
    tenant = db.session.execute(select(Tenant).where(Tenant.id == form.tenant_id.data)).scalar_one_or_none()
    try:
        if tenant is None:
            raise FieldError("tenant_id", "Choose a reseller.")
        count = dids.allocate(form.number_ids.data or [], tenant)
    except FieldError as e:
        db.session.rollback()
        form.tenant_id.choices = _reseller_choices()
        target = form[e.field] if e.field in form._fields else form.tenant_id
        target.errors = list(target.errors) + [e.message]
        return _page(status=422, allocate_form=form)
    name = tenant.name
    db.session.commit()
    flash(f"{count} number{'s' if count != 1 else ''} allocated to {name}.", "success")
    return redirect(url_for("admin.numbers", status="spare"), code=303)


@bp.post("/numbers/<int:number_id>/reclaim")
def number_reclaim(number_id):
    number = get_or_404(Number, number_id)
    if not ActionForm().validate_on_submit():
        abort(400, description="The form expired; reload the page and try again.")
    shown = number.number
    try:
        dids.reclaim(number)
    except FieldError as e:
        db.session.rollback()
        flash(e.message, "error")
        return redirect(url_for("admin.numbers"), code=303)
    db.session.commit()
    flash(f"{shown} is back in the platform inventory.", "success")
    return redirect(url_for("admin.numbers"), code=303)

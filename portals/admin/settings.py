"""Platform admin: platform-wide settings (account-number length, PIN length, base extension)."""
from flask import flash, redirect, request, url_for

from app.extensions import db
from app.accounts.numbering import update_int_settings
from app.settings import INT_RANGES, SettingError, get_int
from app.web import render
from portals.admin import bp
from portals.admin.forms import PlatformSettingsForm

LABELS = {"account_number_length": "account-number length", "pin_length": "PIN length",
          "base_extension": "default base extension"}


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    form = PlatformSettingsForm(data={key: get_int(key) for key in INT_RANGES})
    if form.validate_on_submit():
        try:
            changes = update_int_settings({key: getattr(form, key).data for key in INT_RANGES})
        except SettingError as e:  # the form's ranges are the same; kept for direct callers
            db.session.rollback()
            getattr(form, e.key).errors.append(str(e))
        else:
            db.session.commit()
            if changes:
                flash("Saved: " + ", ".join(f"{LABELS[k]} {old} → {new}" for k, (old, new) in changes.items()) + ".",
                      "success")
            else:
                flash("Nothing changed.", "info")
            return redirect(url_for("admin.settings"), code=303)
    status = 422 if request.method == "POST" else 200
    return render("admin/settings.html", form=form, status=status, title="Platform settings")

"""Platform admin: platform-wide settings (account-number length, PIN length, base extension)."""
from flask import flash, redirect, request, url_for

from app.extensions import db
from app.accounts.numbering import update_int_settings, update_sip_server
from app.settings import INT_RANGES, SettingError, get_int, get_setting
from app.web import render
from portals.admin import bp
from portals.admin.forms import PlatformSettingsForm

LABELS = {"account_number_length": "account-number length", "pin_length": "PIN length",
          "base_extension": "default base extension", "sip_port": "SIP port", "sip_server": "SIP server"}


@bp.route("/settings", methods=["GET", "POST"])
def settings():
    form = PlatformSettingsForm(data={**{key: get_int(key) for key in INT_RANGES},
                                      "sip_server": get_setting("sip_server")})
    if form.validate_on_submit():
        try:
            # a setting left out of the post keeps its value
            changes = update_int_settings({key: getattr(form, key).data for key in INT_RANGES
                                           if getattr(form, key).data is not None})
            if form.sip_server.data:
                changes.update(update_sip_server(form.sip_server.data))
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

"""Forms for accounts: the onboarding wizard's two steps, the account page, user counts, numbers.

Field names match the domain's (app/billing/onboarding.py BasicInfo and PlanTerms), so a form
maps onto the domain call without renaming. Every field carries its own clear message.
"""
import zoneinfo
from decimal import Decimal

import phonenumbers
import pycountry
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (BooleanField, DateField, EmailField, FieldList, Form, FormField, HiddenField, IntegerField,
                     PasswordField, SelectField, SelectMultipleField, StringField, TextAreaField)
from wtforms.validators import (DataRequired, Email, EqualTo, InputRequired, Length, NumberRange, Optional,
                                ValidationError)

from app import money
from app.accounts.models import BILLING_TYPES
from app.money import MONEY_SCALE
from portals.forms import CurrencyField

COUNTRY_CHOICES = sorted(((c.alpha_2, c.name) for c in pycountry.countries), key=lambda c: c[1])
COUNTRY_NAMES = dict(COUNTRY_CHOICES)
TIMEZONE_CHOICES = [(z, z.replace("_", " ")) for z in sorted(zoneinfo.available_timezones())
                    if "/" in z and not z.startswith(("Etc/", "SystemV/", "US/", "posix/", "right/"))] + [("UTC", "UTC")]
LANGUAGE_CHOICES = sorted(((lang.alpha_2, lang.name) for lang in pycountry.languages if hasattr(lang, "alpha_2")),
                          key=lambda c: c[1])
EXPIRY_CHOICES = [("none", "Never"), ("date", "On a date"), ("days_after_first_use", "Days after first use"),
                  ("days_after_creation", "Days after creation")]
BILLING_CHOICES = [(t, t.capitalize()) for t in BILLING_TYPES]


def plain_amount(d) -> str:
    """Decimal for an input box: 10 -> "10.00", 0.015 -> "0.015"."""
    if d is None:
        return ""
    d = Decimal(d)
    two = d.quantize(Decimal("0.01"))
    return format(two if two == d else d.normalize(), "f")


class MoneyField(StringField):
    """An amount typed by a person: a clear message if it is not one; Decimal in `.data`."""

    def __init__(self, label=None, validators=None, places=MONEY_SCALE, allow_negative=False, **kw):
        super().__init__(label, validators, **kw)
        self.places, self.allow_negative = places, allow_negative

    def process_formdata(self, valuelist):
        self.raw = valuelist[0] if valuelist else ""
        text = (self.raw or "").strip()
        if not text:
            self.data = None
            return
        try:
            self.data = money.parse_amount(text, max_places=self.places, allow_negative=self.allow_negative)
        except money.MoneyError as e:
            self.data = None
            raise ValueError(str(e)) from None

    def _value(self):
        if getattr(self, "raw", None) is not None:
            return self.raw
        return plain_amount(self.data) if self.data is not None else ""


def amount(field, default=Decimal("0")) -> Decimal:
    return field.data if field.data is not None else default


# --- field groups -------------------------------------------------------------------------------

class BasicFields(Form):
    name = StringField("Account name", validators=[DataRequired("Give the account a name."), Length(max=120)])
    email = EmailField("Email", validators=[DataRequired("An email is needed: it is also the portal login."),
                                            Email("This is not a valid email address."), Length(max=254)],
                       description="All account mail goes here; it is also the portal login.")
    first_name = StringField("Administrator's first name", validators=[DataRequired("Enter the first name."), Length(max=80)])
    last_name = StringField("Administrator's last name", validators=[DataRequired("Enter the last name."), Length(max=80)])
    phone = StringField("Contact number", validators=[DataRequired("Enter a contact number."), Length(max=32)],
                        description="With the +country code if it is not in the account's country.")
    company = StringField("Company", validators=[Optional(), Length(max=120)])
    address = StringField("Address", validators=[Optional(), Length(max=255)])
    city = StringField("City", validators=[Optional(), Length(max=80)])
    state = StringField("State / province", validators=[Optional(), Length(max=80)])
    postcode = StringField("Postcode", validators=[Optional(), Length(max=20)])
    country = SelectField("Country", choices=[("", "Choose a country")] + COUNTRY_CHOICES,
                          validators=[DataRequired("Choose a country.")])
    timezone = SelectField("Time zone", choices=TIMEZONE_CHOICES, default="UTC")
    language = SelectField("Language", choices=LANGUAGE_CHOICES, default="en")
    currency = CurrencyField(default="USD")

    phone_e164 = None

    def validate_phone(self, field):
        text = (field.data or "").strip()
        region = self.country.data or None
        try:
            parsed = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            raise ValidationError("This is not a phone number: use digits, with the +country code if it is abroad.") from None
        if not phonenumbers.is_valid_number(parsed):
            where = COUNTRY_NAMES.get(region, "") if region and not text.startswith("+") else ""
            raise ValidationError(f"This is not a valid phone number{' in ' + where if where else ''}.")
        self.phone_e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class CountryRow(Form):
    country = SelectField("Country", choices=[("", "—")] + COUNTRY_CHOICES, validate_choice=False)
    minutes = IntegerField("Minutes", validators=[Optional(), NumberRange(0, 1_000_000, "From 0 to 1,000,000.")])


class PlanFields(Form):
    plan_name = StringField("Plan name", validators=[DataRequired("Give the plan a name."), Length(max=120)],
                            description="Unique within your accounts and never reused.")
    cost_per_user = MoneyField("Cost per user per month", default=Decimal("0"),
                               validators=[InputRequired("Enter the monthly cost of one user (0 if free).")])
    rate_sheet_id = SelectField("Rate sheet", coerce=int, default=0, validate_choice=False)
    countries = FieldList(FormField(CountryRow), min_entries=4, max_entries=300, label="Countries & minutes")

    def countries_data(self) -> list[tuple[str, int]]:
        return [(row.country.data, row.minutes.data or 0) for row in self.countries if row.country.data]

    def validate_countries(self, field):
        seen = set()
        for row in field:
            code = row.country.data
            if not code:
                if row.minutes.data:
                    row.minutes.errors = list(row.minutes.errors) + ["Choose the country these minutes are for."]
                    raise ValidationError("Some minutes have no country.")
                continue
            if code not in COUNTRY_NAMES:
                row.country.errors = list(row.country.errors) + ["Choose a country from the list."]
                raise ValidationError("Choose each country from the list.")
            if code in seen:
                row.country.errors = list(row.country.errors) + ["Listed twice."]
                raise ValidationError(f"{COUNTRY_NAMES.get(code, code)} is listed twice.")
            seen.add(code)


class SettingsFields(Form):
    billing_type = SelectField("Terms", choices=BILLING_CHOICES, default="prepaid")
    credit_limit = MoneyField("Credit limit", default=Decimal("0"), description="Postpaid only.")
    max_channels = IntegerField("Max channels", default=0, description="0 = unlimited",
                                validators=[InputRequired("Enter a number (0 = unlimited)."),
                                            NumberRange(0, 10_000, "From 0 to 10,000.")])
    cps_limit = IntegerField("Calls per second", default=0, description="0 = unlimited",
                             validators=[InputRequired("Enter a number (0 = unlimited)."),
                                         NumberRange(0, 1_000, "From 0 to 1,000.")])
    low_balance_threshold = MoneyField("Low-balance alert at", default=Decimal("0"))
    email_alerts = BooleanField("Email low-balance alerts", default=True)
    invoice_day = IntegerField("Invoice day", default=1, description="Day of the month, 1–28.",
                               validators=[InputRequired("Enter a day from 1 to 28."),
                                           NumberRange(1, 28, "A day from 1 to 28, so that every month has it.")])
    # Taxes (issue 17): picked from the reseller's taxes list (/reseller/taxes); `tax_choices()`
    # fills the choices. The old "VAT %" became a tax of the list (migration i17_invoicing).
    tax_ids = SelectMultipleField("Taxes", coerce=int, validate_choice=False, default=list)
    tax_exempt = BooleanField("Tax exempt", description="Pays none of the taxes; the reason is printed on its invoices.")
    tax_exempt_reason = StringField("Exemption reason", validators=[Optional(), Length(max=255)],
                                    render_kw={"placeholder": "e.g. Intra-EU reverse charge"})
    vat_number = StringField("VAT number", validators=[Optional(), Length(max=40)])
    expiry_mode = SelectField("Expiry", choices=EXPIRY_CHOICES, default="none")
    expiry_date = DateField("Expiry date", validators=[Optional()],
                            render_kw={"placeholder": "YYYY-MM-DD"})
    expiry_days = IntegerField("Expiry days", validators=[Optional(), NumberRange(1, 3650, "From 1 to 3650 days.")])
    autorefill = BooleanField("Autorefill")
    initial_balance = MoneyField("Autorefill to", default=Decimal("0"),
                                 description="Autorefill resets the balance to this amount.")
    with_pin = BooleanField("Calling-card PIN")

    def validate_credit_limit(self, field):
        if self.billing_type.data == "prepaid" and field.data:
            raise ValidationError("A credit limit applies to postpaid accounts only; leave it at 0.")

    def validate(self, extra_validators=None):
        """Field validators, then the checks that read two fields (an empty Optional field
        stops its own chain, so these cannot be inline validators)."""
        ok = super().validate(extra_validators)
        checks = (
            (self.expiry_date, self.expiry_mode.data == "date" and not self.expiry_date.data
             and not self.expiry_date.errors, "Give the expiry date."),
            (self.expiry_days, (self.expiry_mode.data or "").startswith("days_") and not self.expiry_days.data
             and not self.expiry_days.errors, "Give the number of days."),
            (self.initial_balance, self.autorefill.data and not self.initial_balance.data
             and not self.initial_balance.errors, "Autorefill needs the balance to refill to."),
            (self.tax_exempt_reason, self.tax_exempt.data and not (self.tax_exempt_reason.data or "").strip()
             and not self.tax_exempt_reason.errors, "Say why the account is tax exempt (printed on its invoices)."),
        )
        for field, failed, message in checks:
            if failed:
                field.errors = list(field.errors) + [message]
                ok = False
        return ok


# --- the wizard ---------------------------------------------------------------------------------

class Step1Form(FlaskForm, BasicFields):
    template_id = SelectField("Start from template", coerce=int, default=0, validate_choice=False)


class Step2Form(FlaskForm, PlanFields, SettingsFields):
    users = IntegerField("Number of users", default=1, description="One extension each.",
                         validators=[InputRequired("Enter the number of users (at least 1)."),
                                     NumberRange(1, 1000, "From 1 to 1,000 users.")])
    initial_credit = MoneyField("Add credit", default=Decimal("0"),
                                validators=[InputRequired("Enter the initial credit (0 for none).")],
                                description="Credited before the first charges.")
    number_ids = SelectMultipleField("Numbers", coerce=int, validate_choice=False)
    portal_password = PasswordField("Portal password", validators=[Optional(), Length(min=8, message="Use at least 8 characters.")],
                                    description="Leave empty to generate one (shown once after creating).")
    step2_seen = HiddenField(default="1")


STEP1_FIELDS = ("name", "email", "first_name", "last_name", "phone", "company", "address", "city", "state",
                "postcode", "country", "timezone", "language", "currency", "template_id")


# --- the account page -------------------------------------------------------------------------

class AccountEditForm(FlaskForm, BasicFields, PlanFields, SettingsFields):
    play_insufficient_credit = BooleanField("Play the insufficient-credit message")
    version = HiddenField()


class NotesForm(FlaskForm):
    notes = TextAreaField("Notes", validators=[Length(max=20_000)], render_kw={"rows": 5})
    version = HiddenField()


class BalanceForm(FlaskForm):
    action = SelectField("Adjustment", choices=[("credit", "Credit (add)"), ("debit", "Debit (take)"),
                                                ("reset", "Reset the balance to")])
    amount = MoneyField("Amount", validators=[InputRequired("Enter an amount.")], allow_negative=True)
    reason = StringField("Reason", validators=[DataRequired("Say why: the reason is kept with the transaction."),
                                               Length(max=200)])
    nonce = HiddenField()
    confirm_large = HiddenField()   # "1": the second confirmation of an adjustment above the limit

    def validate_amount(self, field):
        if field.data is not None and field.data < 0 and self.action.data != "reset":
            raise ValidationError("Enter an amount above zero; choose debit to take money.")


class ActionForm(FlaskForm):
    """Only the CSRF token: the action is the URL (and the button's value)."""
    version = HiddenField()


class StatusChangeForm(FlaskForm):
    """Suspend, disable or close: first a confirmation page asks for the reason (required,
    kept in the history), then its form comes back with confirm=1."""
    action = HiddenField()
    reason = StringField("Reason", validators=[Optional(), Length(max=200, message="At most 200 characters.")],
                         description="Kept in the account's history.")
    confirm = HiddenField()

    @property
    def confirmed(self) -> bool:
        return self.confirm.data == "1"


class PortalPasswordForm(FlaskForm):
    password = PasswordField("New portal password", validators=[
        DataRequired("Enter the new password."), Length(min=8, message="Use at least 8 characters.")])


class TemplateNameForm(FlaskForm):
    template_name = StringField("Template name", validators=[DataRequired("Give the template a name."), Length(max=120)])


class UsersChangeForm(FlaskForm):
    users = IntegerField("Number of users", validators=[
        InputRequired("Enter the number of users."), NumberRange(1, 1000, "From 1 to 1,000 users.")])
    accepted_from = HiddenField()
    accepted_charge = HiddenField()    # + charged now, - credited now, 0 for a scheduled decrease
    accepted_when = HiddenField()      # "now", or the day a scheduled decrease starts

    def accepted_quote(self):
        """(users the preview started from, amount it showed, when); a 400 if no preview was made."""
        from flask import abort

        from app import money

        try:
            return (int(self.accepted_from.data), money.to_decimal(self.accepted_charge.data),
                    (self.accepted_when.data or "").strip() or None)
        except (TypeError, ValueError):
            abort(400, description="Preview the change first.")


class AssignNumberForm(FlaskForm):
    number_id = SelectField("Spare number", coerce=int, validate_choice=False,
                            validators=[DataRequired("Choose a number.")])
    extension_id = SelectField("Extension", coerce=int, default=0, validate_choice=False)


class MoveNumberForm(FlaskForm):
    extension_id = SelectField("Extension", coerce=int, default=0, validate_choice=False)


class ChangeOwnPasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired("Enter your current password.")])
    password = PasswordField("New password", validators=[DataRequired("Enter the new password."),
                                                         Length(min=8, message="Use at least 8 characters.")])
    confirm = PasswordField("New password again", validators=[
        DataRequired("Type the new password again."), EqualTo("password", "The two passwords are not the same.")])


class NumberRequestForm(FlaskForm):
    country = SelectField("Country", choices=[("", "Choose a country")] + COUNTRY_CHOICES,
                          validators=[DataRequired("Choose a country.")])
    note = StringField("Note", validators=[Optional(), Length(max=200)])


# --- numbers ----------------------------------------------------------------------------------

class NumberImportForm(FlaskForm):
    file = FileField("CSV file")
    text = TextAreaField("…or paste the lines", render_kw={"rows": 6, "placeholder": "+442071234567,GB,1.00,2.50"})


class AllocateForm(FlaskForm):
    number_ids = SelectMultipleField("Numbers", coerce=int, validate_choice=False)
    tenant_id = SelectField("Reseller", coerce=int, validate_choice=False,
                            validators=[DataRequired("Choose the reseller.")])


class NumberPriceForm(FlaskForm):
    sell_setup = MoneyField("Setup price", validators=[InputRequired("Enter the setup price (0 if free).")])
    sell_monthly = MoneyField("Monthly price", validators=[InputRequired("Enter the monthly price (0 if free).")])


class NumberAssignForm(FlaskForm):
    account_id = SelectField("Account", coerce=int, validate_choice=False,
                             validators=[DataRequired("Choose an account.")])
    extension_number = StringField("Extension", validators=[Optional(), Length(max=20)],
                                   description="Optional: the extension that receives the calls.")


def tax_choices(form, tenant_id: int):
    """The reseller's taxes as the form's choices (an inactive one stays listed, marked)."""
    from app.invoicing.taxes import rate_text, taxes_of

    if "tax_ids" in form._fields:
        form.tax_ids.choices = [
            (t.id, f"{t.name} · {rate_text(t.rate)}%{' compound' if t.compound else ''}"
                   f"{'' if t.active else ' (inactive)'}") for t in taxes_of(tenant_id)]
    return form

"""Form pieces shared by the portals."""
from flask_wtf import FlaskForm
from wtforms import EmailField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional, StopValidation

from app.extensions import db
from app.money import currency_choices

# Every currency field offers the same list: app.money.currency_codes() (no XXX, no metals).
CURRENCY_CHOICES = currency_choices()


class CurrencyField(SelectField):
    """A currency select over CURRENCY_CHOICES whose refusal says what to do."""

    def __init__(self, label="Currency", validators=None, **kwargs):
        kwargs.setdefault("choices", CURRENCY_CHOICES)
        super().__init__(label, validators, **kwargs)

    def pre_validate(self, form):
        if self.data not in {c[0] for c in self.choices}:
            raise StopValidation("Choose a currency from the list (ISO 4217; XXX and metals are not currencies "
                                 "we bill in).")


DIGITS_ONLY = "Use digits only."


class WholeNumberField(IntegerField):
    """An IntegerField whose "not a number" message says what to type."""

    def __init__(self, *args, message: str = "Enter a whole number, digits only.", **kwargs):
        super().__init__(*args, **kwargs)
        self.not_a_number = message

    def process_formdata(self, valuelist):
        if valuelist and not valuelist[0].strip():
            self.data = None  # blank: InputRequired says "Enter a value."
            return
        try:
            super().process_formdata(valuelist)
        except ValueError as e:
            raise ValueError(self.not_a_number) from e

    def pre_validate(self, form):
        if self.process_errors:  # one clear message, not a second one about the range
            raise StopValidation()


class ResellerForm(FlaskForm):
    name = StringField("Reseller name", validators=[DataRequired(), Length(max=120)])
    slug = StringField("Short name", validators=[Optional(), Length(max=60)],
                       description="Lower-case letters, digits and dashes; used in URLs.")
    parent_id = SelectField("Parent", coerce=int)
    email = EmailField("Contact email", validators=[DataRequired(), Email()])
    currency = CurrencyField(default="USD")
    base_extension = WholeNumberField("Base extension", default=1000, message=DIGITS_ONLY,
                                      validators=[InputRequired(), NumberRange(100, 99999999)])


class ResellerEditForm(FlaskForm):
    name = StringField("Reseller name", validators=[DataRequired(), Length(max=120)])
    email = EmailField("Contact email", validators=[DataRequired(), Email()])
    currency = CurrencyField(description="Cannot change while the reseller has accounts or rate sheets.")
    base_extension = WholeNumberField("Base extension", message=DIGITS_ONLY,
                                      validators=[InputRequired(), NumberRange(100, 99999999)])


class LoginCreateForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    email = EmailField("Email (login)", validators=[DataRequired(), Email()])
    role = SelectField("Role", choices=[("reseller_staff", "Staff"), ("reseller_readonly", "Read-only"),
                                         ("reseller_owner", "Owner")])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=8, message="Use at least 8 characters.")])


class StatusForm(FlaskForm):
    """Only the CSRF token: the action is in the URL and the button."""


def create_reseller_from(form: ResellerForm):
    """Create the tenant a valid ResellerForm describes; a refusal lands next to its field."""
    from app.resellers.operations import TenantError, create_tenant

    try:
        return create_tenant(name=form.name.data, slug=form.slug.data, parent_id=form.parent_id.data,
                             email=form.email.data, currency=form.currency.data,
                             base_extension=form.base_extension.data)
    except TenantError as e:
        db.session.rollback()   # nothing half-written
        getattr(form, e.field).errors.append(str(e))
        return None


def create_login_from(form: LoginCreateForm, tenant_id: int):
    """Add the staff login a valid LoginCreateForm describes; a refusal lands next to its field."""
    from app.logins.operations import LoginError, create_login

    try:
        return create_login(tenant_id=tenant_id, email=form.email.data, name=form.name.data,
                            role=form.role.data, password=form.password.data)
    except LoginError as e:
        getattr(form, e.field).errors.append(str(e))
        return None

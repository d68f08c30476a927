"""Forms of the Rates Manager. Amounts are text fields: the domain (app/rating/sheets.py) parses
them exactly (Decimal, at most 6 places) and names the field of any error."""
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, IntegerField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from app.rating.imports import DATE_ORDERS, MODES
from portals.forms import CurrencyField


class SheetForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(message="Give the rate sheet a name."), Length(max=120)])
    currency = CurrencyField(default="USD")
    description = StringField("Description", validators=[Optional(), Length(max=255)])
    short_call_seconds = IntegerField(
        "Short-call threshold (s)", default=0, validators=[Optional(), NumberRange(0, 3600)],
        description="Answered calls shorter than this pay the short-call charge on top; 0 = off.")
    short_call_charge = StringField("Short-call charge", default="0")


class RateForm(FlaskForm):
    prefix = StringField("Prefix", description="Dialled digits, country code first: 44, 447…")
    country = StringField("Country", description="ISO code such as GB; empty: derived from the prefix.")
    description = StringField("Description")
    rate_per_minute = StringField("Rate per minute")
    connect_fee = StringField("Connect fee", default="0")
    first_block = StringField("First block (s)", default="1")
    increment = StringField("Increment (s)", default="1")
    minimum_charge = StringField("Minimum charge", default="0")
    effective_from = StringField("Effective from", description="YYYY-MM-DD; empty: today. A later date "
                                                               "schedules a new price and keeps today's.")


class CopyForm(FlaskForm):
    name = StringField("Name of the copy", validators=[DataRequired(message="Give the copy a name."), Length(max=120)])


class ImportForm(FlaskForm):
    file = FileField("Rate deck (CSV)", validators=[FileRequired(message="Choose a CSV file.")])
    mode = RadioField("Import", choices=list(MODES.items()), default="merge")
    import_good_lines = BooleanField("Import the good lines even if some lines are bad")
    day_first = SelectField("Dates", choices=list(DATE_ORDERS.items()), default="")


class BuySheetForm(FlaskForm):
    rate_sheet_id = SelectField("Buys at", coerce=int, default=0, validate_choice=False)


class ActionForm(FlaskForm):
    """Only the CSRF token: the action is in the URL."""

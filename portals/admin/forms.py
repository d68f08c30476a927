"""Platform admin forms."""
from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import InputRequired, NumberRange, StopValidation

from app.settings import INT_RANGES


class WholeNumberField(IntegerField):
    """An IntegerField whose "not a number" message says what to type."""

    def process_formdata(self, valuelist):
        if valuelist and not valuelist[0].strip():
            self.data = None  # blank: InputRequired says "Enter a value."
            return
        try:
            super().process_formdata(valuelist)
        except ValueError as e:
            raise ValueError("Enter a whole number, digits only.") from e

    def pre_validate(self, form):
        if self.process_errors:  # one clear message, not a second one about the range
            raise StopValidation()


def _range(key, what):
    low, high = INT_RANGES[key]
    return [InputRequired(message="Enter a value."),
            NumberRange(low, high, message=f"Choose {what} from {low} to {high}.")]


class PlatformSettingsForm(FlaskForm):
    account_number_length = WholeNumberField(
        "Account-number length", validators=_range("account_number_length", "a length"),
        description="Digits in a new account number. Existing accounts keep theirs.")
    pin_length = WholeNumberField(
        "PIN length", validators=_range("pin_length", "a length"),
        description="Digits in a new calling-card PIN.")
    base_extension = WholeNumberField(
        "Default base extension", validators=_range("base_extension", "a number"),
        description="Where a new reseller's extension numbers start (each reseller can change its own).")


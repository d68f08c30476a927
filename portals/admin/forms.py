"""Platform admin forms."""
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import InputRequired, NumberRange, Optional

from app.settings import INT_RANGES
from portals.forms import DIGITS_ONLY, WholeNumberField



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
        "Default base extension", message=DIGITS_ONLY, validators=_range("base_extension", "a number"),
        description="Where a new reseller's extension numbers start (each reseller can change its own).")
    sip_server = StringField(
        "SIP server", validators=[Optional()],
        description="Host name or IP address customers' phones register to (told in welcome letters).")
    sip_port = WholeNumberField(
        "SIP port", message=DIGITS_ONLY,
        validators=[Optional(), NumberRange(*INT_RANGES["sip_port"], message="Choose a port from 1 to 65535.")],
        description="Usually 5060 (UDP/TCP) or 5061 (TLS).")

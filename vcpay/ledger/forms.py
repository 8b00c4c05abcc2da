import re
import secrets
from zoneinfo import available_timezones

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, Length, Regexp

from vcpay.inputs import PlainText

# A key made when the form is shown: each resend is one email, however many clicks send it.
RESEND_KEY = re.compile(r"[A-Za-z0-9_-]{16,40}", re.ASCII)


class ResendReceiptForm(FlaskForm):
    email = StringField(
        _l("Send the receipt to"),
        validators=[
            DataRequired(_l("Enter the email address to send the receipt to.")),
            Length(max=254),
            PlainText(),
            Email(
                _l("Enter an email address such as pat@example.org."), check_deliverability=False
            ),
        ],
    )
    resend_key = HiddenField(
        validators=[Regexp(RESEND_KEY, message=_l("The form expired; please try again."))]
    )
    submit = SubmitField(_l("Send the receipt again"))

    def fresh(self, email: str) -> "ResendReceiptForm":
        self.email.data = email
        self.resend_key.data = secrets.token_urlsafe(18)
        return self


def time_zone_names() -> list[str]:
    """IANA names people choose from: regions, not the legacy aliases ("Etc/GMT+5")."""
    regional = (name for name in available_timezones() if "/" in name and "Etc/" not in name)
    return ["UTC", *sorted(regional)]


class ClinicTimeZoneForm(FlaskForm):
    time_zone = SelectField(_l("Time zone"), choices=[])
    submit = SubmitField(_l("Save time zone"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.time_zone.choices = [(name, name.replace("_", " ")) for name in time_zone_names()]

import secrets

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from vcpay.inputs import PlainText


class StartCallForm(FlaskForm):
    clinic_id = HiddenField()
    title = StringField(
        _l("Patient or appointment (optional)"),
        validators=[
            Length(max=120, message=_l("Keep the title to 120 characters or fewer.")),
            PlainText(),
        ],
    )
    submit = SubmitField(_l("Start a call"))


class RequestPaymentForm(FlaskForm):
    # Checked by the payment service, which says what is wrong with each in the person's words.
    amount = StringField(_l("Amount (A$)"))
    description = StringField(_l("Description"))
    payer = StringField(_l("Who pays"))  # a participant id, or "anyone"; rendered as a select
    request_key = HiddenField()
    submit = SubmitField(_l("Request Payment"))

    def fresh(self) -> "RequestPaymentForm":
        """A new key each time the form is shown: one key, one request, however many clicks."""
        self.request_key.data = secrets.token_urlsafe(18)
        return self


class JoinForm(FlaskForm):
    display_name = StringField(
        _l("Your name"),
        validators=[
            DataRequired(_l("Enter the name the clinician will see.")),
            Length(max=80, message=_l("Keep your name to 80 characters or fewer.")),
            PlainText(),
        ],
    )
    submit = SubmitField(_l("Join the call"))

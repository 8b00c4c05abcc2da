import secrets

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, SubmitField


class RequestPaymentForm(FlaskForm):
    # Checked by the payment service, which says what is wrong with each in the person's words.
    amount = StringField(_l("Amount (A$)"))
    description = StringField(_l("Description"))
    payer = StringField(_l("Who pays"))  # a participant id, or "anyone"; rendered as a select
    request_key = HiddenField()
    # The open request with the same amount and description that the clinician confirms
    # asking for again; rendered as a checkbox only when such a request is open.
    confirm_repeat = HiddenField()
    submit = SubmitField(_l("Request Payment"))

    def fresh(self) -> "RequestPaymentForm":
        """A new key each time the form is shown: one key, one request, however many clicks."""
        self.request_key.data = secrets.token_urlsafe(18)
        return self

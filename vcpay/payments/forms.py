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


class RefundForm(FlaskForm):
    # Checked by the refunds service, which says what is wrong with each in the person's words.
    extent = StringField(_l("How much"))  # "full" or "part"; rendered as two radio buttons
    amount = StringField(_l("Amount to refund (A$)"))
    reason = StringField(_l("Reason"))
    refund_key = HiddenField()
    submit = SubmitField(_l("Refund"))

    def fresh(self, remaining: str) -> "RefundForm":
        """A new key each time the form is shown: one key, one refund, however many clicks;
        the amount starts as all that remains."""
        self.new_key()
        self.amount.data = remaining
        self.extent.data = "full"
        return self

    def new_key(self) -> None:
        self.refund_key.data = secrets.token_urlsafe(18)

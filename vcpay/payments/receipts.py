"""The receipt email's own link to the receipt page.

Signed, so it cannot be altered to reach another payment, and long-lived; it does not go
through the call's guest link, which stops working soon after the call ends.
"""

from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from vcpay.extensions import db
from vcpay.payments.models import SETTLED_STATES, PaymentRequest
from vcpay.public_urls import public_url_for

SALT = "vcpay.payment-receipt"
LINK_LIFETIME = timedelta(days=366)  # a year, whatever the year


class ReceiptLinkInvalid(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def receipt_url(request: PaymentRequest) -> str:
    return public_url_for("payments.receipt", signed=_serializer().dumps(request.request_key))


def paid_request_for(signed: str) -> PaymentRequest:
    """The paid request a receipt link names, or ReceiptLinkInvalid saying why not."""
    try:
        key = _serializer().loads(signed, max_age=int(LINK_LIFETIME.total_seconds()))
    except SignatureExpired:
        raise ReceiptLinkInvalid(
            _("This receipt link has expired. Please ask the clinic for a copy of the receipt.")
        ) from None
    except BadSignature:
        raise ReceiptLinkInvalid(_invalid()) from None
    request = db.session.scalar(select(PaymentRequest).filter_by(request_key=str(key)))
    if request is None or request.state not in SETTLED_STATES:
        raise ReceiptLinkInvalid(_invalid())
    return request


def _invalid() -> str:
    return _("This receipt link is not valid. Please use the whole link from the receipt email.")

"""Sending a paid payment's receipt again, to the address Stripe has or a corrected one.

Each resend is one email in the outbox, keyed by the form it came from: a double click finds
the email the first click queued. The request keeps the address the patient gave Stripe; the
email and the audit entry record where this copy went.
"""

from flask_babel import lazy_gettext as _l

from vcpay.audit.services import record_audit
from vcpay.ledger.payment_timeline import receipt_key
from vcpay.mail.models import OutboundEmail
from vcpay.mail.services import queue_email
from vcpay.payments.amounts import format_amount
from vcpay.payments.models import PaymentRequest
from vcpay.payments.receipts import receipt_url
from vcpay.people.models import User


def resend_receipt(
    payment: PaymentRequest, recipient: str, resend_key: str, user: User
) -> OutboundEmail | None:
    """Queue the receipt to ``recipient``; None when this form's email was queued before.
    The caller commits."""
    email = queue_email(
        f"{receipt_key(payment)}:resend:{resend_key}",
        recipient,
        _l("Your receipt from %(clinic)s", clinic=payment.clinic.name),
        "payment_receipt",
        locale=payment.patient_locale or None,
        sender_name=payment.clinic.name,  # the patient paid the clinic, not vcpay
        request=payment,
        amount=format_amount(payment.amount, payment.currency),
        receipt_url=receipt_url(payment),
    )
    if email is not None:
        record_audit(
            "payment.receipt_resent",
            payment,
            actor=user,
            recipient=recipient,
            corrected=recipient.lower() != payment.patient_email.lower(),
        )
    return email

"""Telling a clinic's admins, those who asked to be told, about a payment that went wrong: a
delayed payment that did not settle, or a request that expired before it was paid.

Called by the transitions that record those states, in the same transaction: a state moves
once (compare-and-set), and the notice's key is the request's, so however many workers,
webhooks or reconciler runs learn of it, each admin gets one email.
"""

from datetime import timedelta

from flask import current_app
from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

from vcpay.database import utcnow
from vcpay.notices.services import Notice, notify_clinic_admins
from vcpay.payments.amounts import format_amount
from vcpay.payments.models import PaymentRequest
from vcpay.public_urls import public_url_for

# Stripe closes a Checkout page at its expiry by Stripe's clock, which may run a little ahead
# of ours; a page closed sooner than this before it was due was closed by vcpay.
EXPIRY_CLOCK_SLACK = timedelta(minutes=1)
# The back office's page of one payment, when the application has it.
PAYMENT_PAGE = "ledger.detail"


def payment_failed(request: PaymentRequest) -> None:
    subject = _l(
        "Payment failed: %(amount)s for %(description)s, %(clinic)s", **_subject_values(request)
    )
    _tell_admins(request, Notice.PAYMENT_FAILED, subject)


def payment_expired(request: PaymentRequest) -> None:
    """Only a request that ran out of time: one a clinician cancelled, or that was cancelled
    as the clinic's Stripe link was removed, also ends as an expired Checkout page, and word of
    that may reach a worker before the cancel is recorded."""
    if not ran_out(request):
        return
    subject = _l(
        "Payment request expired unpaid: %(amount)s for %(description)s, %(clinic)s",
        **_subject_values(request),
    )
    _tell_admins(request, Notice.PAYMENT_EXPIRED, subject)


def ran_out(request: PaymentRequest) -> bool:
    return utcnow() + EXPIRY_CLOCK_SLACK >= request.expires_at


def payment_link(request: PaymentRequest) -> str:
    """The payment's own page in the back office, else its clinic's Client Payments page."""
    if PAYMENT_PAGE in current_app.view_functions:
        return public_url_for(PAYMENT_PAGE, payment_id=request.id)
    return public_url_for("client_payments.clinic", clinic_id=request.clinic_id)


def _subject_values(request: PaymentRequest) -> dict:
    # The amount is written when the subject is, in each recipient's language.
    amount = LazyString(format_amount, request.amount, request.currency)
    return {"amount": amount, "description": request.description, "clinic": request.clinic.name}


def _tell_admins(request: PaymentRequest, notice: Notice, subject) -> None:
    notify_clinic_admins(
        request.clinic,
        notice,
        request.request_key,
        subject,
        notice.value,
        request=request,
        link=payment_link(request),
    )

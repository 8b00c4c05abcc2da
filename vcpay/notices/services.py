"""Emailing the clinic admins who opted in about a payment problem in their clinic.

Each notice is queued once per problem and person (its key says which problem), in the
same transaction as the change that caused it, and sent after the commit like every email.
"""

import enum

from vcpay.mail.services import queue_to_each
from vcpay.people.models import Clinic, ClinicRole


class Notice(enum.StrEnum):
    PAYMENT_FAILED = "payment_failed"  # a delayed payment that did not settle
    PAYMENT_EXPIRED = "payment_expired"  # a request that expired unpaid
    REFUND_FAILED = "refund_failed"
    PAYOUT_FAILED = "payout_failed"


def notice_recipients(clinic: Clinic) -> set[str]:
    """The clinic's admins who are active and opted in to payment notices."""
    return {
        membership.user.email
        for membership in clinic.memberships
        if membership.role == ClinicRole.CLINIC_ADMIN
        and membership.user.is_active
        and membership.user.payment_notices
    }


def notify_clinic_admins(
    clinic: Clinic, notice: Notice, problem: str, subject: str, template: str, **context
):
    """Queue ``template`` (``templates/mail/<template>.txt``) to each admin of ``clinic`` who
    opted in. ``problem`` names this occurrence (a request key, a refund or payout id), so a
    replayed event queues nothing new. Returns the emails queued now."""
    key = f"notice:{notice.value}:{problem}"
    return queue_to_each(
        key, notice_recipients(clinic), subject, template, clinic=clinic, **context
    )

"""Emailing the clinic admins who opted in about a payment problem in their clinic.

Each notice is queued once per problem and person (its key says which problem), in the
same transaction as the change that caused it, and sent after the commit like every email.
A clinic's admins are its clinic admins and its organisation's admins: the people who may
manage its payments (vcpay.people.permissions).
"""

import enum

from vcpay.audit.services import record_audit
from vcpay.mail.services import queue_to_each
from vcpay.people.models import Clinic, ClinicRole, User
from vcpay.people.permissions import Permission, clinics_where
from vcpay.public_urls import public_url_for


class Notice(enum.StrEnum):
    PAYMENT_FAILED = "payment_failed"  # a delayed payment that did not settle
    PAYMENT_EXPIRED = "payment_expired"  # a request that expired unpaid
    REFUND_FAILED = "refund_failed"
    PAYOUT_FAILED = "payout_failed"


# Who hears about a clinic's payments: whoever may manage them there.
NOTICE_PERMISSION = Permission.MANAGE_CLIENT_PAYMENTS


def clinic_admins(clinic: Clinic) -> list[User]:
    """The clinic's admins and its organisation's admins."""
    admins = [m.user for m in clinic.memberships if m.role == ClinicRole.CLINIC_ADMIN]
    return admins + [m.user for m in clinic.organisation.memberships]


def notice_recipients(clinic: Clinic) -> set[str]:
    """The clinic's admins who are active and opted in to payment notices."""
    return {user.email for user in clinic_admins(clinic) if user.is_active and user.payment_notices}


def clinics_noticed_by(user: User):
    """The clinics whose payment problems ``user`` hears of once opted in."""
    return clinics_where(user, NOTICE_PERMISSION)


def choose_payment_notices(user: User, wanted: bool) -> bool:
    """Opt ``user`` in or out; audit-logged. True if it changed. The caller commits."""
    if user.payment_notices == wanted:
        return False
    user.payment_notices = wanted
    record_audit("user.payment_notices", user, actor=user, on=wanted)
    return True


def notify_clinic_admins(
    clinic: Clinic, notice: Notice, problem: str, subject: str, template: str, **context
):
    """Queue ``template`` (``templates/mail/<template>.txt``) to each admin of ``clinic`` who
    opted in. ``problem`` names this occurrence (a request key, a refund or payout id), so a
    replayed event queues nothing new. Each email is written in its recipient's language and
    ends with where to stop them (``mail/_notice_footer.txt``). Returns the emails queued now."""
    key = f"notice:{notice.value}:{problem}"
    context.setdefault("settings_link", public_url_for("people.settings"))
    return queue_to_each(
        key, notice_recipients(clinic), subject, template, clinic=clinic, **context
    )

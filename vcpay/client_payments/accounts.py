"""A clinic's several Stripe accounts: naming them, choosing the default, and routing a
clinician's payments to one of them. Each verb flushes; the caller commits."""

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from vcpay.audit.services import record_audit
from vcpay.calls.services import clinic_tools_changed
from vcpay.client_payments.models import AccountRoute, LinkState, StripeLink
from vcpay.client_payments.stripe_link import live_link
from vcpay.extensions import db
from vcpay.people.models import Clinic, ClinicMembership, ClinicRole, User

NAME_MAX = 200


class AccountChangeRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _changed_meanwhile() -> AccountChangeRefused:
    return AccountChangeRefused(
        _("Someone changed this clinic's accounts at the same moment; please try again.")
    )


def rename_link(link: StripeLink, name: str, actor: User) -> bool:
    """Give the account the name the clinic's people know it by; True if it changed."""
    name = " ".join(name.split())[:NAME_MAX]
    if not name:
        raise AccountChangeRefused(_("Enter a name for the account."))
    if name == link.name:
        return False
    before, link.name = link.name, name
    db.session.flush()
    record_audit(
        "stripe.renamed",
        link.clinic,
        actor=actor,
        account=link.account_id,
        before=before,
        after=name,
    )
    return True


def make_default(link: StripeLink, actor: User) -> bool:
    """Send the clinic's payments to ``link`` unless their clinician is routed elsewhere;
    True if it changed. The partial unique index keeps one default per clinic when two
    admins choose at once: the later is told to try again."""
    current = live_link(link.clinic)
    if current is not None and current.id == link.id and link.is_default:
        return False
    try:
        db.session.execute(
            update(StripeLink)
            .where(StripeLink.clinic_id == link.clinic_id, StripeLink.is_default.is_(True))
            .values(is_default=False)
            .execution_options(synchronize_session=False)
        )
        chosen = db.session.execute(
            update(StripeLink)
            .where(StripeLink.id == link.id, StripeLink.state == LinkState.LINKED.value)
            .values(is_default=True)
            .execution_options(synchronize_session=False)
        )
    except IntegrityError:
        db.session.rollback()
        raise _changed_meanwhile() from None
    if chosen.rowcount != 1:
        raise AccountChangeRefused(_("That account was removed a moment ago."))
    db.session.refresh(link)
    record_audit(
        "stripe.default_changed",
        link.clinic,
        actor=actor,
        account=link.account_id,
        before=current.account_id if current else None,
    )
    clinic_tools_changed(link.clinic)  # an open call may now take payments, or not
    return True


def clinicians(clinic: Clinic) -> list[User]:
    """Whom payments may be routed for: the clinic's clinicians."""
    return list(
        db.session.scalars(
            select(User)
            .join(ClinicMembership, ClinicMembership.user_id == User.id)
            .where(
                ClinicMembership.clinic_id == clinic.id,
                ClinicMembership.role == ClinicRole.CLINICIAN.value,
            )
            .distinct()
            .order_by(User.name, User.id)
        )
    )


def routes_of(clinic: Clinic) -> list[AccountRoute]:
    return list(
        db.session.scalars(
            select(AccountRoute)
            .join(User, User.id == AccountRoute.clinician_id)
            .where(AccountRoute.clinic_id == clinic.id)
            .order_by(User.name, AccountRoute.id)
        )
    )


def routes_to(link: StripeLink) -> list[AccountRoute]:
    return list(db.session.scalars(select(AccountRoute).filter_by(link_id=link.id)))


def set_route(clinic: Clinic, clinician: User, link: StripeLink, actor: User) -> bool:
    """Send ``clinician``'s payments in ``clinic`` to ``link``; True if that changed."""
    if link.clinic_id != clinic.id or not link.is_live:
        raise AccountChangeRefused(_("Choose one of this clinic's linked accounts."))
    if clinician not in clinicians(clinic):
        raise AccountChangeRefused(_("Choose one of this clinic's clinicians."))
    route = db.session.scalar(
        select(AccountRoute).filter_by(clinic_id=clinic.id, clinician_id=clinician.id)
    )
    if route is not None and route.link_id == link.id:
        return False
    if route is None:
        db.session.add(AccountRoute(clinic=clinic, clinician=clinician, link=link))
    else:
        route.link = link
    try:
        db.session.flush()
    except IntegrityError:  # the same clinician routed in another tab a moment ago
        db.session.rollback()
        raise _changed_meanwhile() from None
    record_audit(
        "stripe.route_set", clinic, actor=actor, clinician=clinician.id, account=link.account_id
    )
    clinic_tools_changed(clinic)
    return True


def remove_route(route: AccountRoute, actor: User) -> None:
    """The clinician's payments go to the clinic's default again."""
    clinic, clinician_id, account = route.clinic, route.clinician_id, route.link.account_id
    db.session.delete(route)
    db.session.flush()
    record_audit(
        "stripe.route_removed", clinic, actor=actor, clinician=clinician_id, account=account
    )
    clinic_tools_changed(clinic)

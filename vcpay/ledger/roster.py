"""Whom the clinician filter offers: the clinicians of the clinics whose every payment the
person sees (someone who sees only their own requests has nobody else to choose)."""

from sqlalchemy import select

from vcpay.extensions import db
from vcpay.ledger.filters import ClinicView
from vcpay.people.models import ClinicMembership, ClinicRole, User


def clinicians_of(views: list[ClinicView]) -> list[User]:
    clinic_ids = [view.clinic.id for view in views if view.own_of is None]
    if not clinic_ids:
        return []
    return list(
        db.session.scalars(
            select(User)
            .join(ClinicMembership, ClinicMembership.user_id == User.id)
            .where(
                ClinicMembership.clinic_id.in_(clinic_ids),
                ClinicMembership.role == ClinicRole.CLINICIAN.value,
            )
            .distinct()
            .order_by(User.name, User.id)
        )
    )

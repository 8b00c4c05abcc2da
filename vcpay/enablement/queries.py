from sqlalchemy import select

from vcpay.enablement.models import EnablementRequest, RequestedClinic, RequestState
from vcpay.extensions import db
from vcpay.people.models import Clinic


def latest_request_by_clinic(clinics: list[Clinic]) -> dict[int, EnablementRequest]:
    """For each clinic, the newest request naming it that was not withdrawn."""
    if not clinics:
        return {}
    rows = db.session.execute(
        select(RequestedClinic.clinic_id, EnablementRequest)
        .join(EnablementRequest)
        .where(
            RequestedClinic.clinic_id.in_([c.id for c in clinics]),
            EnablementRequest.state != RequestState.WITHDRAWN.value,
        )
        .order_by(EnablementRequest.id)
    )
    return {clinic_id: request for clinic_id, request in rows}

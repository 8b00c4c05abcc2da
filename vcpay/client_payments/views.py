from flask import Blueprint, render_template
from flask_login import current_user, login_required

from vcpay.enablement.queries import latest_request_by_clinic
from vcpay.enablement.services import requestable_clinics
from vcpay.extensions import db
from vcpay.people.models import Clinic
from vcpay.people.permissions import Permission, clinics_where, require

blueprint = Blueprint("client_payments", __name__, url_prefix="/client-payments")


@blueprint.route("/")
@login_required
def index():
    clinics = clinics_where(current_user, Permission.MANAGE_CLIENT_PAYMENTS)
    organisations = sorted({c.organisation for c in clinics}, key=lambda o: o.name)
    return render_template(
        "client_payments/index.html",
        clinics=clinics,
        organisations=organisations,
        requests=latest_request_by_clinic(clinics),
        requestable={o.id: bool(requestable_clinics(current_user, o)) for o in organisations},
    )


@blueprint.route("/clinics/<int:clinic_id>")
@login_required
def clinic(clinic_id: int):
    clinic = db.session.get(Clinic, clinic_id)
    require(Permission.MANAGE_CLIENT_PAYMENTS, clinic)
    return render_template(
        "client_payments/clinic.html",
        clinic=clinic,
        enablement=latest_request_by_clinic([clinic]).get(clinic.id),
        can_request=clinic in requestable_clinics(current_user, clinic.organisation),
    )

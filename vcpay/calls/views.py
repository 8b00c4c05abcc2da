from flask import Blueprint, render_template
from flask_login import current_user, login_required

from vcpay.people.permissions import Permission, clinics_where

blueprint = Blueprint("calls", __name__, url_prefix="/calls")


@blueprint.route("/")
@login_required
def index():
    clinics = clinics_where(current_user, Permission.START_CALL)
    return render_template("calls/index.html", clinics=clinics)

"""The clinician's side of a call: start or reopen it, the call screen with its apps, end it."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vcpay.auth.sessions import current_sign_in_session
from vcpay.calls.access import call_for_clinician
from vcpay.calls.apps import (
    CallNotPrepared,
    call_apps,
    keep_start_form,
    take_start_form,
    take_tool_state,
)
from vcpay.calls.events import STAFF_AUDIENCES, latest_event_id
from vcpay.calls.forms import StartCallForm
from vcpay.calls.models import Call
from vcpay.calls.services import calls_of, end_call, patients, start_call
from vcpay.calls.stream import stream_response
from vcpay.extensions import db, limiter
from vcpay.forms import ConfirmForm
from vcpay.inputs import parse_id
from vcpay.people.models import Clinic, User
from vcpay.people.permissions import Permission, can, clinics_where, require
from vcpay.people.services import sign_in_session_is_live
from vcpay.public_urls import public_url_for

blueprint = Blueprint("calls", __name__, url_prefix="/calls")


@blueprint.route("/")
@login_required
def index():
    clinics = clinics_where(current_user, Permission.START_CALL)
    kept = take_start_form()  # a form an app refused: shown again as it was sent, once

    def kept_for(clinic: Clinic) -> dict:
        return kept if kept.get("clinic") == clinic.id else {}

    return render_template(
        "calls/index.html",
        clinics=clinics,
        calls=calls_of(clinics),
        forms={
            c.id: StartCallForm(clinic_id=c.id, title=kept_for(c).get("values", {}).get("title"))
            for c in clinics
        },
        app_fields={c.id: call_apps().start_fields(c, current_user, kept_for(c)) for c in clinics},
    )


@blueprint.route("/start", methods=["POST"])
@login_required
@limiter.limit("30 per minute")
def start():
    form = StartCallForm()
    clinic_id = parse_id(form.clinic_id.data)
    clinic = db.session.get(Clinic, clinic_id) if clinic_id is not None else None
    require(Permission.START_CALL, clinic)
    if not form.validate_on_submit():
        flash(_first_error(form), "error")
        return redirect(url_for("calls.index"), code=303)
    call = start_call(clinic, current_user, form.title.data or "")
    try:
        call_apps().prepare(call, current_user, request.form)
    except CallNotPrepared as refused:  # nothing of the call is kept
        db.session.rollback()
        keep_start_form(clinic, request.form, refused)
        flash(refused.message, "error")
        return redirect(url_for("calls.index"), code=303)
    db.session.commit()
    return redirect(url_for("calls.screen", call_id=call.id), code=303)


def _first_error(form: StartCallForm) -> str:
    errors = form.title.errors or form.errors.get("csrf_token") or []
    return str(errors[0]) if errors else _("The form expired; please try again.")


@blueprint.route("/<int:call_id>")
@login_required
def screen(call_id: int):
    call = call_for_clinician(call_id)
    # An app's view that refused something redirected here with what to show again.
    state = take_tool_state(call)
    return call_screen(call, state, tools_open=state is not None)


def call_screen(call: Call, state: dict[str, dict] | None = None, tools_open: bool = False):
    """The clinician's call screen with its apps. An app's view that refused something shows
    it again with ``state`` for its tool (by app key), and ``tools_open``."""
    return render_template(
        "calls/call.html",
        call=call,
        guest_link=public_url_for("guest.join", token=call.guest_token),
        apps=call_apps().for_staff(call, current_user._get_current_object(), state),
        tools_open=tools_open,
        patients=patients(call),
        last_event_id=latest_event_id(call.id),
    )


@blueprint.route("/<int:call_id>/panel")
@login_required
def panel(call_id: int):
    """The live parts of the screen, re-rendered when an event arrives."""
    call = call_for_clinician(call_id)
    return render_template(
        "calls/_staff_panel.html",
        call=call,
        apps=call_apps().for_staff(call, current_user._get_current_object(), tools=False),
        patients=patients(call),
    )


@blueprint.route("/<int:call_id>/tools")
@login_required
def tools(call_id: int):
    """The apps' tools, shown again when what they offer changed (a Stripe link made)."""
    call = call_for_clinician(call_id)
    return render_template(
        "calls/_tools.html",
        call=call,
        apps=call_apps().for_staff(call, current_user._get_current_object()),
    )


@blueprint.route("/<int:call_id>/events")
@login_required
def events(call_id: int):
    call = call_for_clinician(call_id)
    user_id, sign_in_id = current_user.id, current_sign_in_session().id
    return stream_response(
        call,
        STAFF_AUDIENCES,
        lambda c: _still_clinician(c, user_id, sign_in_id),
        viewer=f"person:{user_id}",
        access=f"sign-in:{sign_in_id}",  # the check depends on the sign-in (and its person)
    )


def _still_clinician(call: Call, user_id: int, sign_in_id: int) -> bool:
    """Still signed in (not signed out, nor their password changed) and still a clinician here."""
    if not sign_in_session_is_live(sign_in_id):
        return False
    user = db.session.get(User, user_id)
    return user is not None and user.is_active and can(user, Permission.START_CALL, call)


@blueprint.route("/<int:call_id>/end", methods=["POST"])
@login_required
def end(call_id: int):
    call = call_for_clinician(call_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    end_call(call)
    db.session.commit()
    flash(_("The call has ended. The patient's link stops working shortly."), "success")
    return redirect(url_for("calls.index"), code=303)
